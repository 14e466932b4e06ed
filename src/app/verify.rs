//! `imgopt verify`: start each image with real Postgres and Redis, check
//! that it works as a production service should, and time its startup.
//!
//! Per image: a private network, Postgres and Redis on it (each published
//! on a loopback port so imgopt can tell when it really accepts TCP
//! connections), then the app with `DATABASE_URL` and `REDIS_URL` pointing
//! at them and its own port published on loopback. Startup is timed from
//! the start request to the first `/health` that says both services are
//! up, and to the engine's `healthy`.
//!
//! Nothing may be left behind: everything carries the run's labels and is
//! removed by label when an image is done, when the run fails or times out,
//! and on Ctrl-C. This command handles Ctrl-C itself (not `app::run`), so
//! the cleanup always runs before it returns; a second Ctrl-C stops the
//! cleanup and says what may be left.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{print, Session};
use crate::cli::{ExternalServices, Format, VerifyOptions};
use crate::config::Config;
use crate::engine::{ContainerSpec, Engine, Healthcheck, Kind, Labelled};
use crate::error::{ExitCode, Interrupted};
use crate::progress::Reporter;
use crate::stats::Summary;
use crate::verify::{
    self as report, millis, HealthBody, VariantReport, Verdict,
    CHECK_CONNECTS, CHECK_COUNTS, CHECK_HEALTHCHECK, CHECK_HEALTHY,
    CHECK_NODE_ENV, CHECK_NON_ROOT, LABEL_HOST, LABEL_PID, LABEL_ROLE,
    LABEL_RUN,
};

/// How often `/health` is asked while the app starts: fine enough to
/// resolve 50 ms.
const HTTP_POLL: Duration = Duration::from_millis(20);

/// How often the engine is asked for a container's state while waiting.
const STATE_POLL: Duration = Duration::from_millis(50);

/// How long one probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the app gets to stop between runs before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Log lines shown when a container fails.
const LOG_LINES: usize = 20;

/// The database, user and password verify gives its Postgres.
const PG_USER: &str = "imgopt";
const PG_DB: &str = "imgopt";
const PG_PORT: u16 = 5432;
const REDIS_PORT: u16 = 6379;

/// A variant failed; the message says why, with probes and log lines.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

/// One image to verify.
struct Target {
    name: String,
    image: String,
    baseline: bool,
}

/// The labels and names of one run.
struct Run {
    id: String,
    host: String,
    pid: u32,
}

impl Run {
    fn new() -> Run {
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        Run {
            id: format!("{pid}-{:06x}", nanos & 0xff_ffff),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid,
        }
    }

    fn labels(&self, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.into(), self.id.clone()),
            (LABEL_HOST.into(), self.host.clone()),
            (LABEL_PID.into(), self.pid.to_string()),
            (LABEL_ROLE.into(), role.into()),
        ])
    }

    fn name(&self, index: usize, role: &str) -> String {
        format!("imgopt-verify-{}-{index}-{role}", self.id)
    }

    fn filter(&self) -> String {
        format!("{LABEL_RUN}={}", self.id)
    }
}

/// Runs `imgopt verify`, cleaning up whatever happens.
pub(super) async fn run(
    config: &Config,
    options: &VerifyOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let targets = targets(config, options)?;
    let run = Run::new();
    let work = async {
        let mut session = Session::open(config, reporter).await?;
        sweep(&session.engine, &run, reporter).await?;
        if options.build_first && options.images.is_empty() {
            let variants = config.select(&options.build.variants)?;
            session.build_all(&variants, &options.build).await?;
        }
        verify_all(&mut session, &run, &targets, options).await
    };
    let outcome = tokio::select! {
        result = work => Some(result),
        () = super::interrupted() => None,
    };
    reporter.clear();

    // A fresh connection: the work's was dropped with it.
    match Engine::connect().await {
        Ok(engine) => cleanup(&engine, &run, reporter).await?,
        Err(e) if outcome.is_none() => {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not clean up ({e:#}); remove what is left \
                 with: docker rm -f $(docker ps -aq --filter label={0}); \
                 docker network prune --filter label={0}",
                run.filter()
            );
        }
        Err(_) => {}
    }

    let Some(result) = outcome else {
        return Err(Interrupted.into());
    };
    let (session_info, reports) = result?;
    print(&match options.format {
        Format::Table => report::table(&reports, options.external.is_some()),
        Format::Json => report::json(
            &run.id,
            &session_info,
            options.external.is_some(),
            &reports,
        ),
    })?;
    Ok(if reports.iter().all(VariantReport::passed) {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}

fn targets(
    config: &Config,
    options: &VerifyOptions,
) -> anyhow::Result<Vec<Target>> {
    if !options.images.is_empty() {
        return Ok(options
            .images
            .iter()
            .map(|image| Target {
                name: image.clone(),
                image: image.clone(),
                baseline: false,
            })
            .collect());
    }
    Ok(config
        .select(&options.build.variants)?
        .into_iter()
        .map(|v| Target {
            name: v.name.clone(),
            image: v.tag.clone(),
            baseline: v.baseline,
        })
        .collect())
}

async fn verify_all(
    session: &mut Session<'_>,
    run: &Run,
    targets: &[Target],
    options: &VerifyOptions,
) -> anyhow::Result<(crate::engine::EngineInfo, Vec<VariantReport>)> {
    let info = session.engine.info().await?;
    let timeout = options.timeout.unwrap_or(session.config.verify.timeout);
    let mut reports = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let mut report = start_report(&session.engine, target).await?;
        let result = verify_one(
            session,
            run,
            index,
            target,
            options,
            timeout,
            &mut report,
        )
        .await;
        // Each image's containers go before the next one starts.
        remove_run(&session.engine, run).await?;
        match result {
            Ok(()) => {}
            Err(e) => match e.downcast::<Failed>() {
                Ok(Failed(why)) => {
                    session
                        .reporter
                        .line(&format!("{}: FAILED: {why}", target.name));
                    report.failure = Some(why);
                    if report.verdict(CHECK_CONNECTS) == Verdict::Skipped {
                        report.check(
                            CHECK_CONNECTS,
                            Verdict::Fail,
                            "did not start and connect",
                        );
                    }
                }
                Err(e) => return Err(e),
            },
        }
        if let Some(startup) = &report.startup {
            let record = session.results.record_mut(
                &target.name,
                &report.image_id,
                &session.provenance,
            );
            record.startup = Some(startup.clone());
            session.save()?;
        }
        session.reporter.done(&format!(
            "{}: {}",
            target.name,
            if report.passed() { "passed" } else { "failed" }
        ));
        reports.push(report);
    }
    Ok((info, reports))
}

async fn start_report(
    engine: &Engine,
    target: &Target,
) -> anyhow::Result<VariantReport> {
    let facts = engine.inspect(&target.image).await.map_err(|e| {
        // A variant can be built by imgopt; an --image reference cannot.
        let hint = if target.name == target.image {
            "pull or build it first"
        } else {
            "build it first (or drop --no-build)"
        };
        e.context(format!("cannot verify '{}': {hint}", target.name))
    })?;
    let mut report = VariantReport::new(
        &target.name,
        &target.image,
        &facts.id,
        target.baseline,
    );
    report.image_bytes = facts.size;
    Ok(report)
}

/// Everything for one image; a [`Failed`] error fails the image only.
async fn verify_one(
    session: &Session<'_>,
    run: &Run,
    index: usize,
    target: &Target,
    options: &VerifyOptions,
    timeout: Duration,
    report: &mut VariantReport,
) -> anyhow::Result<()> {
    let engine = &session.engine;
    let settings = &session.config.verify;
    let reporter = session.reporter;

    let image_check = engine.image_healthcheck(&target.image).await?;
    report.check(
        CHECK_HEALTHCHECK,
        Verdict::production(image_check.is_some(), target.baseline),
        match &image_check {
            Some(h) => format!("{:?}", h.test),
            None => "the image declares no HEALTHCHECK".into(),
        }
        .as_str(),
    );
    let healthcheck = image_check.as_ref().map(|h| Healthcheck {
        test: h.test.clone(),
        interval: settings.health_interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
    });
    if let Some(h) = &image_check {
        report.health_interval_ms = Some(millis(settings.health_interval));
        report.image_health_interval_ms =
            Some(millis(h.interval.unwrap_or(Duration::from_secs(30))));
    }

    // Known limit: in --external mode the app joins the engine's default
    // bridge network, so the URLs must name addresses reachable from
    // there (not the host's localhost); there is no --network option yet.
    let (env, network) = match &options.external {
        Some(ExternalServices { database_url, redis_url }) => (
            vec![
                format!("DATABASE_URL={database_url}"),
                format!("REDIS_URL={redis_url}"),
            ],
            None,
        ),
        None => {
            reporter.start(&format!(
                "{}: starting postgres and redis",
                target.name
            ));
            let network =
                start_services(engine, run, index, settings, timeout).await?;
            (network.app_env, Some((network.name, Vec::new())))
        }
    };

    let app = ContainerSpec {
        name: run.name(index, "app"),
        image: target.image.clone(),
        env,
        labels: run.labels("app"),
        network,
        publish: Some(settings.app_port),
        healthcheck,
    };
    let id = engine.create_container(&app).await?;
    let client = http_client()?;
    let mut startups = Vec::new();
    let mut healthies = Vec::new();
    for i in 0..options.runs {
        reporter.start(&format!(
            "{}: run {}/{}: waiting for /health",
            target.name,
            i + 1,
            options.runs
        ));
        if i > 0 {
            engine.stop_container(&id, STOP_GRACE).await?;
        }
        let started = Instant::now();
        engine.start_container(&id).await?;
        let port = engine.published_port(&id, settings.app_port).await?;
        let base = format!("http://127.0.0.1:{port}");
        let ready =
            wait_for_health(engine, &client, &id, &base, started, timeout)
                .await;
        let ready = match ready {
            Ok(seconds) => seconds,
            Err(e) => return Err(with_service_states(engine, run, e).await),
        };
        startups.push(ready);
        report.startup = Summary::of(&startups);
        if image_check.is_some() {
            let healthy =
                wait_for_healthy(engine, &id, started, timeout).await;
            match healthy {
                Ok(seconds) => healthies.push(seconds),
                Err(e) => {
                    report.check(
                        CHECK_HEALTHY,
                        Verdict::Fail,
                        "never healthy",
                    );
                    return Err(with_service_states(engine, run, e).await);
                }
            }
            report.healthy = Summary::of(&healthies);
        }
        reporter.line(&format!(
            "{}: run {}/{}: /health ready in {:.3} s{}",
            target.name,
            i + 1,
            options.runs,
            ready,
            healthies
                .last()
                .filter(|_| healthies.len() == startups.len())
                .map(|h| format!(", healthy in {h:.3} s"))
                .unwrap_or_default()
        ));
    }
    report.check(
        CHECK_CONNECTS,
        Verdict::Pass,
        "/health answered 200 with postgres and redis up",
    );
    report.check(
        CHECK_HEALTHY,
        Verdict::production(image_check.is_some(), target.baseline),
        if image_check.is_some() {
            "the engine reported healthy"
        } else {
            "no healthcheck to turn healthy"
        },
    );

    let port = engine.published_port(&id, settings.app_port).await?;
    let base = format!("http://127.0.0.1:{port}");
    check_counts(&client, &base, report).await;
    let facts = engine.container_facts(&id).await?;
    report.writable_layer_bytes = Some(facts.size_rw);
    report.memory_bytes = Some(engine.memory_in_use(&id).await?);
    let node_env = report::node_env(&facts.env).unwrap_or("");
    report.check(
        CHECK_NODE_ENV,
        Verdict::production(node_env == "production", target.baseline),
        &if node_env.is_empty() {
            "NODE_ENV is not set".to_string()
        } else {
            format!("NODE_ENV={node_env}")
        },
    );
    // Known limit: with user-namespace remapping the engine's host sees
    // shifted IDs, so a remapped root would count as non-root here.
    let uids = engine.process_uids(&id).await?;
    let root = uids.is_empty() || uids.contains(&0);
    report.check(
        CHECK_NON_ROOT,
        Verdict::production(!root, target.baseline),
        &format!(
            "process uids {:?} (configured user: {})",
            uids,
            if facts.user.is_empty() { "root" } else { &facts.user }
        ),
    );
    Ok(())
}

/// The network and what the app needs to reach the services on it.
struct Services {
    name: String,
    app_env: Vec<String>,
}

async fn start_services(
    engine: &Engine,
    run: &Run,
    index: usize,
    settings: &crate::config::VerifySettings,
    timeout: Duration,
) -> anyhow::Result<Services> {
    let network = format!("imgopt-verify-{}-{index}", run.id);
    engine.create_network(&network, &run.labels("network")).await?;
    // Not a secret: the database lives as long as this run, on a private
    // network and a loopback port.
    let password = format!("imgopt-{}", run.id);
    let postgres = ContainerSpec {
        name: run.name(index, "postgres"),
        image: settings.postgres_image.clone(),
        env: vec![
            format!("POSTGRES_USER={PG_USER}"),
            format!("POSTGRES_PASSWORD={password}"),
            format!("POSTGRES_DB={PG_DB}"),
        ],
        labels: run.labels("postgres"),
        network: Some((network.clone(), vec!["postgres".into()])),
        publish: Some(PG_PORT),
        healthcheck: None,
    };
    let redis = ContainerSpec {
        name: run.name(index, "redis"),
        image: settings.redis_image.clone(),
        labels: run.labels("redis"),
        network: Some((network.clone(), vec!["redis".into()])),
        publish: Some(REDIS_PORT),
        ..ContainerSpec::default()
    };
    let pg_id = engine.create_container(&postgres).await?;
    let redis_id = engine.create_container(&redis).await?;
    engine.start_container(&pg_id).await?;
    engine.start_container(&redis_id).await?;

    let pg_port = engine.published_port(&pg_id, PG_PORT).await?;
    let redis_port = engine.published_port(&redis_id, REDIS_PORT).await?;
    let pg_probe = |_: ()| {
        let password = password.clone();
        async move { probe_postgres(pg_port, &password).await }
    };
    let redis_probe = |_: ()| async move { probe_redis(redis_port).await };
    let (pg, redis) = tokio::join!(
        wait_for_service(engine, "postgres", &pg_id, timeout, pg_probe),
        wait_for_service(engine, "redis", &redis_id, timeout, redis_probe),
    );
    pg?;
    redis?;
    Ok(Services {
        name: network,
        app_env: vec![
            format!(
                "DATABASE_URL=postgres://{PG_USER}:{password}@postgres:\
                 {PG_PORT}/{PG_DB}"
            ),
            format!("REDIS_URL=redis://redis:{REDIS_PORT}"),
        ],
    })
}

/// Waits until a service answers its protocol over TCP, or fails with
/// the last probe error and its logs.
async fn wait_for_service<F, Fut>(
    engine: &Engine,
    what: &str,
    id: &str,
    timeout: Duration,
    probe: F,
) -> anyhow::Result<()>
where
    F: Fn(()) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    loop {
        let last = match probe(()).await {
            Ok(()) => {
                tracing::debug!("{what} ready after {:?}", started.elapsed());
                return Ok(());
            }
            Err(e) => format!("{e:#}"),
        };
        let status = engine.container_status(id).await?;
        if !status.running || started.elapsed() > timeout {
            let why = if status.running {
                format!("{what} did not accept connections within {timeout:?}")
            } else {
                format!(
                    "{what} exited (code {})",
                    status.exit_code.unwrap_or(-1)
                )
            };
            return Err(Failed(format!(
                "{why}; last probe: {last}{}",
                log_tail(engine, id).await
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe_postgres(port: u16, password: &str) -> anyhow::Result<()> {
    let config = format!(
        "host=127.0.0.1 port={port} user={PG_USER} password={password} \
         dbname={PG_DB} connect_timeout=2"
    );
    let (client, connection) =
        tokio_postgres::connect(&config, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let result = tokio::time::timeout(
        PROBE_TIMEOUT * 2,
        client.simple_query("SELECT 1"),
    )
    .await;
    drop(client);
    connection.abort();
    result.context("no answer to SELECT 1")??;
    Ok(())
}

async fn probe_redis(port: u16) -> anyhow::Result<()> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let work = async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        let pong: String =
            redis::cmd("PING").query_async(&mut connection).await?;
        anyhow::ensure!(pong == "PONG", "PING answered {pong:?}");
        Ok(())
    };
    tokio::time::timeout(PROBE_TIMEOUT * 2, work)
        .await
        .context("no answer to PING")?
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    // No proxy: the app is on loopback, whatever HTTP_PROXY says.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PROBE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .context("failed to set up the HTTP client")
}

/// Polls `/health` until it answers 200 with both services up; returns
/// the seconds since `started`. Fails when the container exits, turns
/// unhealthy, or the timeout passes, with the last answers and logs.
async fn wait_for_health(
    engine: &Engine,
    client: &reqwest::Client,
    id: &str,
    base: &str,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let url = format!("{base}/health");
    let mut state_checked = Instant::now();
    loop {
        let last = match client.get(&url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                let health = HealthBody::parse(&body);
                if status == 200 && health.as_ref().is_some_and(|h| h.all_up())
                {
                    return Ok(started.elapsed().as_secs_f64());
                }
                match health {
                    Some(h) if !h.all_up() => format!(
                        "{status} {} (down: {})",
                        body.trim(),
                        h.down().join(", ")
                    ),
                    _ => format!("{status} {}", body.trim()),
                }
            }
            Err(e) => describe_http_error(&e),
        };
        if state_checked.elapsed() >= STATE_POLL {
            state_checked = Instant::now();
            let status = engine.container_status(id).await?;
            let problem = if !status.running {
                Some(format!(
                    "the app exited with code {}{}",
                    status.exit_code.unwrap_or(-1),
                    if status.oom_killed { " (out of memory)" } else { "" }
                ))
            } else if status.health.as_deref() == Some("unhealthy") {
                Some("the engine reports the app unhealthy".to_string())
            } else if started.elapsed() > timeout {
                Some(format!("/health not ready within {timeout:?}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(failure(engine, id, &problem, &last).await);
            }
        }
        tokio::time::sleep(HTTP_POLL).await;
    }
}

/// Polls the engine until it reports the app healthy.
async fn wait_for_healthy(
    engine: &Engine,
    id: &str,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<f64> {
    loop {
        let status = engine.container_status(id).await?;
        match status.health.as_deref() {
            Some("healthy") => return Ok(started.elapsed().as_secs_f64()),
            Some("unhealthy") => {
                return Err(failure(
                    engine,
                    id,
                    "the engine reports the app unhealthy",
                    "",
                )
                .await);
            }
            _ => {}
        }
        if !status.running || started.elapsed() > timeout {
            let problem = if status.running {
                format!("not healthy within {timeout:?}")
            } else {
                format!("the app exited with code {:?}", status.exit_code)
            };
            return Err(failure(engine, id, &problem, "").await);
        }
        tokio::time::sleep(STATE_POLL).await;
    }
}

fn describe_http_error(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A [`Failed`] error with the last `/health` answer, the engine's last
/// healthcheck probes and the container's last log lines.
async fn failure(
    engine: &Engine,
    id: &str,
    problem: &str,
    last_answer: &str,
) -> anyhow::Error {
    let mut text = problem.to_string();
    if !last_answer.is_empty() {
        text.push_str(&format!("\nlast /health answer: {last_answer}"));
    }
    if let Ok(status) = engine.container_status(id).await {
        if let Some(health) = &status.health {
            text.push_str(&format!("\nengine health status: {health}"));
        }
        if !status.probes.is_empty() {
            text.push_str("\nlast healthcheck probes:");
            for (code, output) in status.probes.iter().rev().take(3).rev() {
                let output = output.replace('\n', " ");
                text.push_str(&format!("\n  exit {code}: {output}"));
            }
        }
    }
    text.push_str(&log_tail(engine, id).await);
    Failed(text).into()
}

/// Adds the state of the service containers to a failure, so it says
/// which service is gone.
async fn with_service_states(
    engine: &Engine,
    run: &Run,
    error: anyhow::Error,
) -> anyhow::Error {
    let Some(Failed(text)) = error.downcast_ref::<Failed>() else {
        return error;
    };
    let mut text = text.clone();
    if let Ok(found) = engine.list_labelled(&run.filter()).await {
        for thing in found.iter().filter(|t| t.kind == Kind::Container) {
            let role = thing.labels.get(LABEL_ROLE).map(String::as_str);
            if !matches!(role, Some("postgres" | "redis")) {
                continue;
            }
            if let Ok(status) = engine.container_status(&thing.id).await {
                if !status.running {
                    text.push_str(&format!(
                        "\nservice {} is not running ({}, exit code {})",
                        role.unwrap_or_default(),
                        status.state,
                        status.exit_code.unwrap_or(-1)
                    ));
                }
            }
        }
    }
    Failed(text).into()
}

async fn log_tail(engine: &Engine, id: &str) -> String {
    // imgopt's own /health polling would fill the tail: fetch more and
    // leave those request lines out.
    let lines = engine.container_log_tail(id, LOG_LINES * 20).await;
    match lines {
        Ok(lines) => {
            let kept: Vec<&String> = lines
                .iter()
                .filter(|l| !l.contains(" GET /health "))
                .collect();
            let kept = &kept[kept.len().saturating_sub(LOG_LINES)..];
            if kept.is_empty() {
                return "\n(no log output besides /health requests)".into();
            }
            let mut text = format!(
                "\nlast {} log lines (without /health requests):",
                kept.len()
            );
            for line in kept {
                text.push_str(&format!("\n  | {line}"));
            }
            text
        }
        Err(e) => format!("\n(logs unavailable: {e:#})"),
    }
}

/// `GET /` twice: both counts must grow, or Postgres or Redis was not
/// really used.
async fn check_counts(
    client: &reqwest::Client,
    base: &str,
    report: &mut VariantReport,
) {
    let url = format!("{base}/");
    let get = || async {
        let response = client.get(&url).send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        anyhow::Ok((status, body))
    };
    let (first, second) = (get().await, get().await);
    let (verdict, detail) = match (first, second) {
        (Ok((200, a)), Ok((200, b))) => {
            match (report::parse_counts(&a), report::parse_counts(&b)) {
                (Some((v1, h1)), Some((v2, h2))) => (
                    Verdict::functional(v2 > v1 && h2 > h1),
                    format!("visits {v1}→{v2}, hits {h1}→{h2}"),
                ),
                _ => (Verdict::Fail, format!("unexpected bodies {a} / {b}")),
            }
        }
        (Ok((s, a)), Ok((t, b))) => {
            (Verdict::Fail, format!("GET / answered {s} {a} then {t} {b}"))
        }
        (Err(e), _) | (_, Err(e)) => {
            (Verdict::Fail, format!("GET / failed: {e:#}"))
        }
    };
    report.check(CHECK_COUNTS, verdict, &detail);
}

/// Removes everything labelled with this run's id. Listed again after
/// removal, since a create request cut off by Ctrl-C may finish late.
async fn remove_run(engine: &Engine, run: &Run) -> anyhow::Result<()> {
    for _ in 0..3 {
        let found = engine.list_labelled(&run.filter()).await?;
        if found.is_empty() {
            return Ok(());
        }
        let failed = engine.remove_all(&found).await;
        if let Some((thing, why)) = failed.first() {
            anyhow::bail!(
                "failed to remove {} '{}' of run {}: {why}",
                kind_name(thing),
                thing.name,
                run.id
            );
        }
    }
    Ok(())
}

/// Removes the run's things until two listings a moment apart find
/// nothing. A create request that was cut off (by Ctrl-C or a timeout)
/// can still complete in the engine after the first empty listing.
async fn remove_settled(engine: &Engine, run: &Run) -> anyhow::Result<()> {
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);
    for _ in 0..5 {
        remove_run(engine, run).await?;
        tokio::time::sleep(SETTLE).await;
        if engine.list_labelled(&run.filter()).await?.is_empty() {
            return Ok(());
        }
    }
    remove_run(engine, run).await
}

/// The run's last cleanup, on every way out. A second Ctrl-C stops it at
/// once and says what may be left.
async fn cleanup(
    engine: &Engine,
    run: &Run,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    tokio::select! {
        result = remove_settled(engine, run) => result,
        () = super::interrupted() => {
            reporter.clear();
            let _ = writeln!(
                std::io::stderr(),
                "interrupted again: stopped cleaning up; containers and \
                 networks labelled {0} may be left: docker rm -f $(docker \
                 ps -aq --filter label={0}); docker network prune --force \
                 --filter label={0}",
                run.filter()
            );
            Err(Interrupted.into())
        }
    }
}

fn kind_name(thing: &Labelled) -> &'static str {
    match thing.kind {
        Kind::Container => "container",
        Kind::Network => "network",
    }
}

/// Removes what earlier runs on this host left when they were killed:
/// only runs whose imgopt process is gone, so parallel runs are safe.
async fn sweep(
    engine: &Engine,
    run: &Run,
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let found = engine.list_labelled(LABEL_RUN).await?;
    let stale: Vec<Labelled> = report::stale(&found, &run.host, |pid| {
        pid == run.pid || process_alive(pid)
    })
    .into_iter()
    .cloned()
    .collect();
    if stale.is_empty() {
        return Ok(());
    }
    reporter.line(&format!(
        "removing {} leftover container(s) and network(s) of earlier \
         interrupted runs",
        stale.len()
    ));
    if let Some((thing, why)) = engine.remove_all(&stale).await.first() {
        reporter.warn(&format!(
            "could not remove leftover {} '{}': {why}",
            kind_name(thing),
            thing.name
        ));
    }
    Ok(())
}

/// Whether an imgopt process with this pid runs on this machine.
fn process_alive(pid: u32) -> bool {
    // Known limit: this reads /proc, so on a machine without it (macOS
    // talking to Docker Desktop) every run counts as alive and nothing is
    // swept. Checking the name guards against a reused pid.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
    match comm {
        Ok(name) => name.trim().starts_with("imgopt"),
        Err(_) => !std::path::Path::new("/proc/self").exists(),
    }
}
