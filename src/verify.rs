//! What `imgopt verify` concludes, as plain data: checks and their
//! verdicts, the figures measured, and how they are shown.
//!
//! The command runner (`app::verify`) starts containers and fills a
//! [`VariantReport`]; everything here is synchronous and needs no engine:
//! which verdict a shortfall earns (the baseline's are expected, not
//! failures), what counts as a healthy `/health` answer, which leftovers
//! of earlier runs may be swept, and the table and JSON document.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{EngineInfo, Labelled};
use crate::render::human_size;
use crate::stats::Summary;

/// The version of the `verify --format json` document.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// The label that names the run a container or network belongs to.
pub const LABEL_RUN: &str = "imgopt.run";
/// The label with the host name of the machine that ran imgopt.
pub const LABEL_HOST: &str = "imgopt.host";
/// The label with the process id of the imgopt that created it.
pub const LABEL_PID: &str = "imgopt.pid";
/// The label that says what a container is for: app, postgres, redis.
pub const LABEL_ROLE: &str = "imgopt.role";

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed, and so does the variant.
    Fail,
    /// The check failed on the baseline, which is expected to fall short.
    Expected,
    /// The check could not run (an earlier step failed).
    Skipped,
}

impl Verdict {
    /// A production check's verdict: a shortfall fails a variant unless it
    /// is the baseline.
    pub fn production(ok: bool, baseline: bool) -> Verdict {
        match (ok, baseline) {
            (true, _) => Verdict::Pass,
            (false, true) => Verdict::Expected,
            (false, false) => Verdict::Fail,
        }
    }

    /// A functional check's verdict: no variant is excused.
    pub fn functional(ok: bool) -> Verdict {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

/// The checks every variant gets, in the order they are shown.
pub const CHECKS: [&str; 6] = [
    CHECK_CONNECTS,
    CHECK_COUNTS,
    CHECK_HEALTHCHECK,
    CHECK_HEALTHY,
    CHECK_NON_ROOT,
    CHECK_NODE_ENV,
];
/// Starts and answers `/health` with both services up.
pub const CHECK_CONNECTS: &str = "connects";
/// `GET /` twice shows both counts increasing.
pub const CHECK_COUNTS: &str = "counts";
/// The image declares a `HEALTHCHECK`.
pub const CHECK_HEALTHCHECK: &str = "healthcheck";
/// The engine reports the container healthy.
pub const CHECK_HEALTHY: &str = "healthy";
/// No process in the container runs as root.
pub const CHECK_NON_ROOT: &str = "non-root";
/// `NODE_ENV` is `production`.
pub const CHECK_NODE_ENV: &str = "NODE_ENV";

/// One check's outcome, with what was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// One of [`CHECKS`].
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was seen, e.g. `uid 1000` or `NODE_ENV unset`.
    pub detail: String,
}

/// Everything `verify` found out about one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantReport {
    /// The variant name, or the image reference with `--image`.
    pub name: String,
    /// The image reference that ran.
    pub image: String,
    /// The image ID.
    pub image_id: String,
    /// Whether its production shortfalls are expected.
    pub baseline: bool,
    /// The checks, in [`CHECKS`] order once all ran.
    pub checks: Vec<Check>,
    /// Seconds from the start request to a `/health` that says both
    /// services are up, over every run.
    pub startup: Option<Summary>,
    /// Seconds from the start request to the engine's `healthy`.
    pub healthy: Option<Summary>,
    /// The healthcheck interval used while measuring, when imgopt
    /// shortened the image's.
    pub health_interval_ms: Option<u64>,
    /// The image's own healthcheck interval.
    pub image_health_interval_ms: Option<u64>,
    /// Memory in use after startup, bytes.
    pub memory_bytes: Option<u64>,
    /// The container's writable layer after startup, bytes.
    pub writable_layer_bytes: Option<u64>,
    /// The image size, bytes.
    pub image_bytes: u64,
    /// Why the variant failed, with probe outputs and log lines.
    pub failure: Option<String>,
}

impl VariantReport {
    /// A report with nothing measured yet.
    pub fn new(
        name: &str,
        image: &str,
        image_id: &str,
        baseline: bool,
    ) -> VariantReport {
        VariantReport {
            name: name.into(),
            image: image.into(),
            image_id: image_id.into(),
            baseline,
            checks: Vec::new(),
            startup: None,
            healthy: None,
            health_interval_ms: None,
            image_health_interval_ms: None,
            memory_bytes: None,
            writable_layer_bytes: None,
            image_bytes: 0,
            failure: None,
        }
    }

    /// Records a check, replacing an earlier one of the same name.
    pub fn check(
        &mut self,
        name: &'static str,
        verdict: Verdict,
        detail: &str,
    ) {
        self.checks.retain(|c| c.name != name);
        self.checks.push(Check { name, verdict, detail: detail.into() });
        let order = |c: &Check| CHECKS.iter().position(|n| *n == c.name);
        self.checks.sort_by_key(order);
    }

    /// Whether the variant passed: it did not fail, and no check did.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
            && self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The verdict of a check, `Skipped` when it did not run.
    pub fn verdict(&self, name: &str) -> Verdict {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map_or(Verdict::Skipped, |c| c.verdict)
    }
}

/// What `/health` said about the services, from its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthBody {
    /// Whether Postgres is reported `up`.
    pub postgres_up: bool,
    /// Whether Redis is reported `up`.
    pub redis_up: bool,
}

impl HealthBody {
    /// Reads the service's `/health` body; `None` when it is not the JSON
    /// object the service writes.
    pub fn parse(body: &str) -> Option<HealthBody> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let up = |key: &str| value.get(key)?.as_str().map(|s| s == "up");
        Some(HealthBody {
            postgres_up: up("postgres")?,
            redis_up: up("redis")?,
        })
    }

    /// Both services up.
    pub fn all_up(&self) -> bool {
        self.postgres_up && self.redis_up
    }

    /// The services reported down, by name.
    pub fn down(&self) -> Vec<&'static str> {
        let mut down = Vec::new();
        if !self.postgres_up {
            down.push("postgres");
        }
        if !self.redis_up {
            down.push("redis");
        }
        down
    }
}

/// The counts `GET /` returns: visits (Postgres) and hits (Redis).
pub fn parse_counts(body: &str) -> Option<(i64, i64)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    Some((value.get("visits")?.as_i64()?, value.get("hits")?.as_i64()?))
}

/// The value of `NODE_ENV` in a `KEY=value` environment.
pub fn node_env(env: &[String]) -> Option<&str> {
    env.iter().find_map(|e| e.strip_prefix("NODE_ENV="))
}

/// The leftovers of earlier runs that may be swept: created on this host
/// by an imgopt process that no longer runs. Anything from another host,
/// or without readable labels, is left alone.
pub fn stale<'a>(
    found: &'a [Labelled],
    host: &str,
    alive: impl Fn(u32) -> bool,
) -> Vec<&'a Labelled> {
    found
        .iter()
        .filter(|thing| {
            let labels: &HashMap<String, String> = &thing.labels;
            let pid = labels.get(LABEL_PID).and_then(|p| p.parse().ok());
            labels.get(LABEL_HOST).map(String::as_str) == Some(host)
                && pid.is_some_and(|pid| !alive(pid))
        })
        .collect()
}

/// Milliseconds, for the JSON document and notes.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn summary_cell(summary: Option<&Summary>) -> String {
    summary.map(Summary::display).unwrap_or_else(|| "-".into())
}

/// The spread of repeated timings, for a note under the table (the cells
/// keep mean ± σ only, so the table fits a terminal).
fn ranges(r: &VariantReport) -> Option<String> {
    let range = |what: &str, s: &Summary| {
        format!("{what} {:.3}–{:.3} s", s.min, s.max)
    };
    let startup = r.startup.as_ref().filter(|s| s.runs > 1)?;
    let mut text = range("startup", startup);
    if let Some(healthy) = r.healthy.as_ref().filter(|s| s.runs > 1) {
        text.push_str(&format!(", {}", range("healthy", healthy)));
    }
    Some(format!("{text} over {} runs", startup.runs))
}

/// The checks in one cell: how many passed, and the others by kind, e.g.
/// `2 pass, 4 expected`; each one that did not pass gets a note below.
fn checks_cell(r: &VariantReport) -> String {
    let count =
        |v: Verdict| r.checks.iter().filter(|c| c.verdict == v).count();
    let parts: Vec<String> = [
        (Verdict::Pass, "pass"),
        (Verdict::Fail, "FAIL"),
        (Verdict::Expected, "expected"),
        (Verdict::Skipped, "skipped"),
    ]
    .into_iter()
    .filter(|(v, _)| count(*v) > 0)
    .map(|(v, name)| format!("{} {name}", count(v)))
    .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn size_cell(bytes: Option<u64>) -> String {
    bytes.map(human_size).unwrap_or_else(|| "-".into())
}

/// The verify table: one row per image, then notes on how it was
/// measured.
pub fn table(reports: &[VariantReport], external: bool) -> String {
    let mut table = crate::render::new_table(&[
        "Variant",
        "Result",
        "Startup (/health)",
        "Healthy (engine)",
        "Memory",
        "Writable layer",
        "Image",
        "Checks",
    ]);
    for r in reports {
        table.add_row([
            r.name.clone(),
            if r.passed() { "pass" } else { "FAIL" }.to_string(),
            summary_cell(r.startup.as_ref()),
            summary_cell(r.healthy.as_ref()),
            size_cell(r.memory_bytes),
            size_cell(r.writable_layer_bytes),
            human_size(r.image_bytes),
            checks_cell(r),
        ]);
    }
    let table = crate::render::finish_table(table, &[2, 3, 4, 5, 6], &[0]);

    let mut text = table;
    for r in reports {
        if let Some(range) = ranges(r) {
            text.push_str(&format!("{}: {range}\n", r.name));
        }
    }
    for r in reports {
        for c in r.checks.iter().filter(|c| c.verdict != Verdict::Pass) {
            let how = match c.verdict {
                Verdict::Expected => "expected on the baseline",
                Verdict::Skipped => "skipped",
                _ => "failed",
            };
            text.push_str(&format!(
                "{}: {} {how}: {}\n",
                r.name, c.name, c.detail
            ));
        }
        if let Some(failure) = &r.failure {
            let first = failure.lines().next().unwrap_or_default();
            text.push_str(&format!("{}: failed: {first}\n", r.name));
        }
        if let (Some(used), Some(image)) =
            (r.health_interval_ms, r.image_health_interval_ms)
        {
            text.push_str(&format!(
                "{}: healthcheck interval shortened from {image} ms to \
                 {used} ms for the measurement (its test command kept)\n",
                r.name
            ));
        }
    }
    if external {
        text.push_str(
            "external services: only the app containers were started\n",
        );
    }
    text
}

/// The `verify --format json` document.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// Always [`JSON_FORMAT_VERSION`].
    pub format_version: u32,
    /// The run id that labelled every container and network.
    pub run_id: &'a str,
    /// The engine that ran the containers.
    pub engine: &'a EngineInfo,
    /// Whether Postgres and Redis were the user's (`--external`).
    pub external: bool,
    /// Whether every image passed.
    pub passed: bool,
    /// One entry per image.
    pub images: &'a [VariantReport],
}

/// Renders the JSON document, pretty-printed, with a final newline.
pub fn json(
    run_id: &str,
    engine: &EngineInfo,
    external: bool,
    reports: &[VariantReport],
) -> String {
    let document = Document {
        format_version: JSON_FORMAT_VERSION,
        run_id,
        engine,
        external,
        passed: reports.iter().all(VariantReport::passed),
        images: reports,
    };
    crate::render::json_text(&document)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Kind;

    fn thing(host: &str, pid: &str) -> Labelled {
        Labelled {
            kind: Kind::Container,
            id: format!("{host}-{pid}"),
            name: "x".into(),
            labels: HashMap::from([
                (LABEL_RUN.into(), "r".into()),
                (LABEL_HOST.into(), host.into()),
                (LABEL_PID.into(), pid.into()),
            ]),
        }
    }

    #[test]
    fn only_this_hosts_leftovers_of_dead_processes_are_swept() {
        let found = [
            thing("here", "10"),
            thing("here", "20"),
            thing("there", "10"),
            thing("here", "not-a-pid"),
        ];

        let swept = stale(&found, "here", |pid| pid == 20);

        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].id, "here-10");
    }

    #[test]
    fn the_baseline_shortfalls_are_expected_and_others_fail() {
        assert_eq!(Verdict::production(false, true), Verdict::Expected);
        assert_eq!(Verdict::production(false, false), Verdict::Fail);
        assert_eq!(Verdict::production(true, true), Verdict::Pass);
        assert_eq!(Verdict::functional(false), Verdict::Fail);
    }

    #[test]
    fn a_health_body_says_which_service_is_down() {
        let body = r#"{"status":"degraded","postgres":"up","redis":"down"}"#;

        let health = HealthBody::parse(body).unwrap();

        assert!(!health.all_up());
        assert_eq!(health.down(), ["redis"]);
        assert_eq!(HealthBody::parse("<html>"), None);
    }

    #[test]
    fn counts_and_node_env_are_read_from_what_the_service_shows() {
        assert_eq!(parse_counts(r#"{"visits":3,"hits":7}"#), Some((3, 7)));
        assert_eq!(parse_counts(r#"{"error":"x"}"#), None);
        let env = ["PATH=/bin".to_string(), "NODE_ENV=production".into()];
        assert_eq!(node_env(&env), Some("production"));
    }

    fn sample() -> Vec<VariantReport> {
        let mut week2 =
            VariantReport::new("week2", "imgopt-app:week2", "sha256:a", true);
        week2.image_bytes = 973_000_000;
        week2.startup = Summary::of(&[0.9, 1.1, 1.0]);
        week2.memory_bytes = Some(61_200_000);
        week2.writable_layer_bytes = Some(0);
        week2.check(CHECK_CONNECTS, Verdict::Pass, "200");
        week2.check(CHECK_COUNTS, Verdict::Pass, "visits 1→2, hits 1→2");
        week2.check(CHECK_HEALTHCHECK, Verdict::Expected, "none declared");
        week2.check(CHECK_HEALTHY, Verdict::Expected, "no healthcheck");
        week2.check(CHECK_NON_ROOT, Verdict::Expected, "uid 0");
        week2.check(CHECK_NODE_ENV, Verdict::Expected, "unset");

        let mut multi = VariantReport::new(
            "multi-stage",
            "imgopt-app:multi-stage",
            "sha256:b",
            false,
        );
        multi.image_bytes = 189_000_000;
        multi.startup = Summary::of(&[0.5]);
        multi.failure =
            Some("the container exited with code 1\n  | boom".into());
        multi.check(CHECK_CONNECTS, Verdict::Fail, "exited");
        vec![week2, multi]
    }

    #[test]
    fn the_table_shows_verdicts_figures_and_expected_shortfalls() {
        insta::assert_snapshot!(table(&sample(), false));
    }

    #[test]
    fn the_json_document_has_a_version_and_every_check() {
        let engine = EngineInfo {
            host: "unix:///var/run/docker.sock".into(),
            version: "20.10.24".into(),
            api_version: "1.41".into(),
        };

        insta::assert_json_snapshot!(
            serde_json::from_str::<serde_json::Value>(&json(
                "run-1",
                &engine,
                false,
                &sample()
            ))
            .unwrap()
        );
    }
}
