//! `imgopt base build` and `imgopt base push`: the custom base image's
//! commands.
//!
//! `base build` reuses the variants' build path (the same context packing,
//! build arguments and progress), then measures the base like a variant,
//! reads the packages manifest its Dockerfile writes, and compares its
//! layers with each variant's. `base push` finds a login the way the docker
//! CLI does, tags the image for the registry, pushes it with progress on
//! stderr and prints the digest on stdout; every failure says which
//! registry and what to do, and a push is reported only once the registry
//! gave its digest. It never overwrites a registry name the user had, and
//! removes one it made when the push fails or is interrupted; for that it
//! races its own work against Ctrl-C, SIGTERM and SIGHUP.

use std::time::Duration;

use anyhow::Context;

use super::{print, Session, Spec};
use crate::base::{
    parse_packages, BaseReport, PushPlan, PushProgress, PushStep, TagAction,
    VariantShare, JSON_FORMAT_VERSION, PACKAGES_FILE,
};
use crate::cli::{BaseBuildOptions, BasePushOptions, Format};
use crate::config::{check_tag, BaseImage, Config};
use crate::credentials::{self, Credential, Found};
use crate::engine::{
    Engine, ImageNotFound, RegistryLogin, TransferEvent, TransferFailed,
};
use crate::error::{ExitCode, Interrupted};
use crate::measure::Measurement;
use crate::progress::Reporter;

/// `imgopt base build`.
pub(super) async fn run_build(
    config: &Config,
    options: &BaseBuildOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let base = configured_base(config)?;
    let tag = options.tag.as_deref().unwrap_or(&base.tag);
    check_tag(tag).context("--tag")?;
    let session = Session::open(config, reporter).await?;
    session.engine.sweep_file_readers().await?;

    let args = config.base_build_args(base, &options.build.build_args);
    let spec = Spec {
        name: "base",
        tag,
        context: &base.context,
        dockerfile: &base.dockerfile,
        target: None,
    };
    session.build_one(&spec, &args, &options.build).await?;

    reporter.start(&format!("measuring {tag}"));
    let report = measure_base(config, &session.engine, tag).await?;
    reporter.clear();
    print(&match options.format {
        Format::Table => crate::base::report_table(&report),
        Format::Json => crate::base::report_json(&report),
    })?;
    Ok(ExitCode::Success)
}

async fn measure_base(
    config: &Config,
    engine: &Engine,
    tag: &str,
) -> anyhow::Result<BaseReport> {
    let facts = engine.inspect(tag).await?;
    let base = Measurement::from_facts("base", tag, &facts);
    let packages = engine
        .read_file(tag, PACKAGES_FILE)
        .await?
        .map(|bytes| parse_packages(&String::from_utf8_lossy(&bytes)));

    let mut variants = Vec::new();
    for variant in &config.variants {
        let image = match engine.inspect(&variant.tag).await {
            Ok(image) => Some(image),
            Err(e) if e.is::<ImageNotFound>() => None,
            Err(e) => return Err(e),
        };
        variants.push(VariantShare::new(
            &variant.name,
            &variant.tag,
            image.as_ref().map(|i| (&i.layers[..], i.size)),
            (&facts.layers, facts.size),
        ));
    }
    Ok(BaseReport {
        format_version: JSON_FORMAT_VERSION,
        base,
        packages,
        variants,
    })
}

/// `imgopt base push`.
///
/// It races its own work against an interrupt (Ctrl-C, SIGTERM, SIGHUP)
/// so that a registry name it made is removed before it exits 130.
pub(super) async fn run_push(
    config: &Config,
    options: &BasePushOptions,
    reporter: &Reporter,
) -> anyhow::Result<ExitCode> {
    let source = match &options.tag {
        Some(tag) => {
            check_tag(tag).context("--tag")?;
            tag.clone()
        }
        None => configured_base(config)?.tag.clone(),
    };
    let plan = PushPlan::new(&source, options.registry.as_deref())?;
    let login = find_login(&plan, options).await?;

    let engine = Engine::connect().await?;
    let facts = engine.inspect(&plan.source).await.map_err(|e| {
        if e.is::<ImageNotFound>() {
            e.context(format!(
                "the base image '{0}' is not built yet: run `imgopt base \
                 build --tag {0}` first",
                plan.source
            ))
        } else {
            e
        }
    })?;
    let existing = if plan.needs_tag() {
        engine.image_id(&plan.target).await?
    } else {
        None
    };
    let action = plan.tag_action(existing.as_deref(), &facts.id)?;

    if options.dry_run {
        print(&dry_run(&plan, action, &facts, login.as_ref()))?;
        return Ok(ExitCode::Success);
    }

    let made = match action {
        TagAction::Create => {
            engine.tag(&plan.source, &plan.repository, &plan.tag).await?;
            MadeTag::new(&plan.target)
        }
        TagAction::Keep => MadeTag::none(),
    };
    let pushed = tokio::select! {
        pushed = push(&engine, &plan, login.as_ref(), reporter) => {
            Some(pushed)
        }
        () = super::interrupted() => None,
    };
    let digest = match pushed {
        Some(Ok(digest)) => {
            made.keep();
            digest
        }
        Some(Err(error)) => {
            made.remove(&engine, reporter).await;
            return Err(error);
        }
        None => {
            reporter.clear();
            made.remove(&engine, reporter).await;
            return Err(Interrupted.into());
        }
    };

    reporter.done(&format!("pushed {} to {}", plan.target, plan.registry));
    reporter.clear();
    print(&format!("{digest}\n"))?;
    Ok(ExitCode::Success)
}

/// A registry name that this run made for its push. Unless the push
/// succeeded and [`MadeTag::keep`] was called, it is removed again: by
/// [`MadeTag::remove`] after a failure or an interrupt, else when it is
/// dropped, since the command runner drops a command mid-way on Ctrl-C.
struct MadeTag {
    target: Option<String>,
}

impl MadeTag {
    fn new(target: &str) -> MadeTag {
        MadeTag { target: Some(target.to_string()) }
    }

    /// Nothing was made, so nothing is removed.
    fn none() -> MadeTag {
        MadeTag { target: None }
    }

    /// The push succeeded: the name stays.
    fn keep(mut self) {
        self.target = None;
    }

    /// Removes the name; a failure is a warning, since the error that
    /// led here is the one to report.
    async fn remove(mut self, engine: &Engine, reporter: &Reporter) {
        let Some(target) = &self.target else {
            return;
        };
        tracing::debug!(target, "removing the push's name");
        // The name stays set while the removal runs, so a drop mid-way
        // still removes it.
        let removed = engine.untag(target).await;
        if let Err(error) = removed {
            reporter.warn(&leftover(target, &error));
        }
        self.target = None;
    }
}

impl Drop for MadeTag {
    fn drop(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        tracing::debug!(target, "removing the push's name on drop");
        // A drop cannot await, and the runtime it ran on may be shutting
        // down: remove the name on a thread of its own, with a runtime
        // and engine connection of its own, and wait for it (bounded).
        let removal = std::thread::spawn({
            let target = target.clone();
            move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let engine = Engine::connect().await?;
                    tokio::time::timeout(
                        Duration::from_secs(10),
                        engine.untag(&target),
                    )
                    .await
                    .context("the engine did not answer in 10 s")?
                })
            }
        });
        let outcome = removal
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the removal panicked")));
        if let Err(error) = outcome {
            eprintln!("warning: {}", leftover(&target, &error));
        }
    }
}

fn leftover(target: &str, error: &anyhow::Error) -> String {
    format!(
        "could not remove '{target}', which this push made: {error:#}; \
         remove it with `docker rmi {target}`"
    )
}

fn configured_base(config: &Config) -> anyhow::Result<&BaseImage> {
    config.base.as_ref().context(
        "the configuration has no [base] table naming the custom base image",
    )
}

/// The login for the plan's registry: `--username` with the password on
/// stdin, else Docker's config.json; `None` when there is none.
///
/// Reading stdin and running a credential helper block, so both run off
/// the runtime and race an interrupt; a helper also gets a time limit.
async fn find_login(
    plan: &PushPlan,
    options: &BasePushOptions,
) -> anyhow::Result<Option<Found>> {
    let server = credentials::server_key(
        (!plan.is_docker_hub()).then_some(plan.registry.as_str()),
    );
    if let Some(username) = &options.username {
        let username = username.clone();
        let credential = off_runtime(move || {
            credentials::from_password_stdin(&username, std::io::stdin())
        })
        .await??;
        return Ok(Some(Found {
            credential,
            source: "--username and --password-stdin".into(),
        }));
    }
    let Some(dir) = credentials::docker_config_dir() else {
        return Ok(None);
    };
    let Some(lookup) = credentials::Lookup::prepare(&dir, &server)? else {
        return Ok(None);
    };
    let wait = credentials::helper_timeout()?;
    let timed_out = lookup.timed_out(wait);
    // Known limit: after a time-out or an interrupt the helper process
    // runs on until it exits by itself; the docker_credential crate keeps
    // its handle, so it cannot be killed from here.
    match tokio::time::timeout(wait, off_runtime(move || lookup.run())).await {
        Ok(found) => found?,
        Err(_) => Err(timed_out),
    }
}

/// Runs blocking `work` on tokio's blocking pool, raced against an
/// interrupt, so neither the runtime nor Ctrl-C waits for it.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::select! {
        done = tokio::task::spawn_blocking(work) => {
            done.context("the credential lookup panicked")
        }
        () = super::interrupted() => Err(Interrupted.into()),
    }
}

async fn push(
    engine: &Engine,
    plan: &PushPlan,
    login: Option<&Found>,
    reporter: &Reporter,
) -> anyhow::Result<String> {
    let server = credentials::server_key(
        (!plan.is_docker_hub()).then_some(plan.registry.as_str()),
    );
    reporter.start(&format!("pushing {} to {}", plan.target, plan.registry));
    let mut progress = PushProgress::default();
    let on_event = |event: TransferEvent<'_>| match progress
        .apply(event.status, event.progress)
    {
        PushStep::LayerDone(line) => reporter.line(&line),
        PushStep::Moved => reporter.status(&format!(
            "pushing {}: {}",
            plan.target,
            progress.summary()
        )),
        PushStep::Quiet => {}
    };
    let registry_login = login.map(|found| RegistryLogin {
        credential: &found.credential,
        server: &server,
    });
    engine
        .push(&plan.repository, &plan.tag, registry_login, on_event)
        .await
        .map_err(|e| explain_push(e, plan, login))
}

/// Turns a failed push into a message that names the registry, says why
/// in plain words, and says what to do. The registry's own words follow.
fn explain_push(
    error: anyhow::Error,
    plan: &PushPlan,
    login: Option<&Found>,
) -> anyhow::Error {
    let Some(failed) = error.downcast_ref::<TransferFailed>() else {
        return error.context(format!(
            "the push of '{}' to registry {} did not complete",
            plan.target, plan.registry
        ));
    };
    let said = failed.message.to_lowercase();
    let registry = &plan.registry;
    let login_hint = format!(
        "run `docker login {registry}`, or pass --username and \
         --password-stdin"
    );
    let what = if is_auth_refusal(&said) {
        match login {
            Some(found) => format!(
                "registry {registry} refused the login of {} (from {}): \
                 check the user name and password; {login_hint}",
                found.credential, found.source
            ),
            None => format!(
                "registry {registry} requires a login and none was found \
                 for it (looked in {}): {login_hint}",
                config_file_hint()
            ),
        }
    } else if said.contains("no such host")
        || said.contains("server misbehaving")
        || said.contains("name resolution")
    {
        format!(
            "registry {registry} is unknown: its name does not resolve; \
             check the --registry host"
        )
    } else if said.contains("connection refused")
        || said.contains("i/o timeout")
        || said.contains("network is unreachable")
        || said.contains("connection reset")
        || said.contains("dial tcp")
        || said.contains("eof")
    {
        format!(
            "cannot reach registry {registry} (network failure): check that \
             it is running and that host and port are right, then retry"
        )
    } else if said.contains("does not exist") && said.contains("image") {
        format!(
            "the engine has no image '{}' to push: run `imgopt base build`",
            plan.target
        )
    } else {
        format!(
            "registry {registry} did not take '{}'; the push is not \
             complete, so nothing was published",
            plan.target
        )
    };
    error.context(what)
}

fn is_auth_refusal(said: &str) -> bool {
    ["unauthorized", "authentication required", "no basic auth", "denied"]
        .iter()
        .any(|s| said.contains(s))
}

fn config_file_hint() -> String {
    credentials::docker_config_dir()
        .map(|d| d.join("config.json").display().to_string())
        .unwrap_or_else(|| "$DOCKER_CONFIG/config.json".into())
}

/// What a push would do, without doing it.
fn dry_run(
    plan: &PushPlan,
    action: TagAction,
    facts: &crate::engine::ImageFacts,
    login: Option<&Found>,
) -> String {
    let mut out = String::from("dry run: nothing is tagged or pushed\n");
    if action == TagAction::Create {
        out.push_str(&format!(
            "would tag  {} as {}\n",
            plan.source, plan.target
        ));
    }
    out.push_str(&format!(
        "would push {} ({}, {} layer{}, {}) to registry {}\n",
        plan.target,
        facts.id.trim_start_matches("sha256:").get(..12).unwrap_or("?"),
        facts.layers.len(),
        if facts.layers.len() == 1 { "" } else { "s" },
        crate::render::human_size(facts.size),
        plan.registry
    ));
    out.push_str(&match login {
        Some(Found { credential, source }) => {
            let who = match credential {
                Credential::Password { .. } => credential.to_string(),
                Credential::IdentityToken(_) => "an identity token".into(),
            };
            format!("login      {who} from {source}\n")
        }
        None => format!(
            "login      none found for {} (looked in {})\n",
            plan.registry,
            config_file_hint()
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PushPlan {
        PushPlan::new("yourname/node-base:1.0", Some("127.0.0.1:5000"))
            .unwrap()
    }

    fn explained(said: &str, login: Option<&Found>) -> String {
        let error =
            anyhow::Error::new(TransferFailed { message: said.into() });
        format!("{:#}", explain_push(error, &plan(), login))
    }

    #[test]
    fn each_push_failure_names_the_registry_and_what_to_do() {
        let found = Found {
            credential: Credential::Password {
                username: "alice".into(),
                password: "pw".into(),
            },
            source: "auths in config.json".into(),
        };
        let cases = [
            (
                "unauthorized: authentication required",
                Some(&found),
                "refused the login of user 'alice'",
            ),
            (
                "no basic auth credentials",
                None,
                "requires a login and none was found",
            ),
            (
                "dial tcp 127.0.0.1:5000: connect: connection refused",
                None,
                "cannot reach registry 127.0.0.1:5000",
            ),
            (
                "dial tcp: lookup nosuch.invalid: no such host",
                None,
                "registry 127.0.0.1:5000 is unknown",
            ),
            ("manifest invalid", None, "nothing was published"),
        ];

        for (said, login, expected) in cases {
            let text = explained(said, login);
            assert!(text.contains(expected), "{said}: {text}");
            assert!(text.contains("127.0.0.1:5000"), "{said}: {text}");
            assert!(text.ends_with(said), "the registry's words: {text}");
            assert!(!text.contains("pw"), "{text}");
        }
    }
}
