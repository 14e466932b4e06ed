//! `imgopt report` and the rendering of `imgopt compare`, from committed
//! results and baseline files: snapshots of every format, and the README
//! rewrite run through the real binary. None of this needs an engine.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{imgopt, repo_root, run};
use imgopt::baseline::Baseline;
use imgopt::compare::{self, Inputs};
use imgopt::config::Config;
use imgopt::markers::{END, START};
use imgopt::measure::Measurement;
use imgopt::report::{self, Report};
use imgopt::results::Results;
use imgopt::stats::Summary;

fn fixture_dir() -> PathBuf {
    repo_root().join("tests/fixtures/report")
}

fn fixture() -> (Config, Results) {
    let config = Config::load(&fixture_dir().join("imgopt.toml")).unwrap();
    let results = Results::load(&config.results).unwrap();
    (config, results)
}

fn fixture_report() -> Report {
    let (config, results) = fixture();
    Report::from_results(&config, &results)
}

/// A copy of the fixture project to run the binary in, with a README.
fn project(readme: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["imgopt.toml", "results.json", "imgopt-baseline.json"] {
        std::fs::copy(fixture_dir().join(name), dir.path().join(name))
            .unwrap();
    }
    std::fs::write(dir.path().join("README.md"), readme).unwrap();
    dir
}

/// `imgopt report` with no engine reachable, to prove it needs none.
fn report(dir: &Path, args: &[&str]) -> Output {
    run(imgopt(dir)
        .arg("report")
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"))
}

fn readme_with_markers() -> String {
    format!(
        "# Service\r\n\nIntro with a | pipe and trailing spaces   \n\n\
         ## Sizes\n{START}\nstale table\n{END}\n\nLessons.\n"
    )
}

#[test]
fn the_table_lists_measured_variants_in_config_order() {
    insta::assert_snapshot!(report::render_table(&fixture_report()));
}

#[test]
fn the_markdown_table_is_aligned_escaped_and_marks_the_baseline() {
    insta::assert_snapshot!(report::render_markdown(&fixture_report()));
}

#[test]
fn the_json_report_carries_every_figure() {
    insta::assert_snapshot!(report::render_json(&fixture_report()));
}

fn comparison() -> compare::Comparison {
    let (config, results) = fixture();
    let measured: Vec<Measurement> = config
        .variants
        .iter()
        .filter_map(|v| results.records.get(&v.name)?.measurement.clone())
        .collect();
    let baseline = Baseline::load(&config.baseline_file).unwrap().unwrap();
    let builds =
        [("week2", vec![61.0, 62.5, 60.25]), ("multi-stage", vec![48.5])]
            .into_iter()
            .map(|(n, s)| (n.to_string(), Summary::of(&s).unwrap()))
            .collect();
    let startups = Default::default();
    compare::compare(
        &measured,
        &Inputs {
            baseline_variant: Some("week2"),
            baseline_file: Some(&baseline),
            growth_unchecked: None,
            budgets: &config.budgets,
            builds: &builds,
            startups: &startups,
        },
    )
}

#[test]
fn compare_shows_growth_a_changed_base_and_each_budget() {
    insta::assert_snapshot!(compare::render_table(
        &comparison(),
        "imgopt-baseline.json"
    ));
}

#[test]
fn compare_json_says_which_budgets_failed() {
    let c = comparison();

    insta::assert_snapshot!(compare::render_json(&c));
    assert!(!c.passed);
}

#[test]
fn each_failed_budget_gets_a_line_naming_variant_and_budget() {
    let lines = compare::failure_lines(&comparison());

    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("'multi-stage': max_growth_percent")));
    assert!(lines
        .iter()
        .any(|l| l.contains("'multi-stage': max_growth_bytes")));
    assert!(lines.iter().any(|l| l.contains("'custom|base': max_layers")));
    assert!(lines.iter().any(|l| l.contains("'week2': max_growth_bytes")
        && l.contains("the base image changed")));
}

#[test]
fn report_needs_no_engine_and_prints_markdown() {
    let dir = project("");

    let output = report(dir.path(), &["--format", "markdown"]);

    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("| Version "), "{text}");
    assert!(text.contains(r"custom\|base"), "{text}");
}

#[test]
fn update_rewrites_only_the_block_and_a_rerun_changes_nothing() {
    let original = readme_with_markers();
    let dir = project(&original);
    let readme = dir.path().join("README.md");

    let first = report(dir.path(), &["--update", "README.md"]);
    let once = std::fs::read_to_string(&readme).unwrap();
    let chart = std::fs::read(dir.path().join("docs/sizes.svg")).unwrap();
    let second = report(dir.path(), &["--update", "README.md"]);

    assert_eq!(first.status.code(), Some(0));
    assert_eq!(second.status.code(), Some(0));
    assert!(first.stdout.is_empty());
    let head = original.split_inclusive(START).next().unwrap();
    let tail = &original[original.find(END).unwrap()..];
    assert!(once.starts_with(head), "{once}");
    assert!(once.ends_with(tail), "{once}");
    assert!(!once.contains("stale table"));
    assert!(once.contains("| week2 (baseline) |"), "{once}");
    assert!(once.contains("](docs/sizes.svg)"), "{once}");
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), once);
    assert_eq!(
        std::fs::read(dir.path().join("docs/sizes.svg")).unwrap(),
        chart
    );
}

#[test]
fn bad_markers_exit_two_and_write_nothing() {
    let cases = [
        ("no markers at all\n".to_string(), "not found"),
        (format!("{START}\n{END}\n{START}\n{END}\n"), "occurs 2 times"),
        (format!("{END}\nx\n{START}\n"), "comes before"),
        (format!("{START}\nonly the start\n"), "not found"),
    ];
    for (text, expected) in cases {
        let dir = project(&text);

        let output = report(dir.path(), &["--update", "README.md"]);

        assert_eq!(output.status.code(), Some(2), "{text:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(err.contains("left unchanged"), "{err}");
        let now = std::fs::read_to_string(dir.path().join("README.md"));
        assert_eq!(now.unwrap(), text);
        assert!(!dir.path().join("docs").exists(), "chart written");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }
}

#[test]
fn the_chart_names_every_variant_and_is_the_same_every_time() {
    let r = fixture_report();

    let svg = imgopt::chart::sizes_svg(&r).unwrap();

    assert!(svg.starts_with("<svg"), "{svg}");
    for name in ["week2", "multi-stage", "custom|base"] {
        assert!(svg.contains(name), "{name}");
    }
    assert!(svg.contains("Base image layers"));
    assert!(svg.contains("Not split"), "custom|base has no split");
    assert_eq!(imgopt::chart::sizes_svg(&r).unwrap(), svg);
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap();
}

#[cfg(unix)]
#[test]
fn update_writes_through_a_symlinked_readme_and_keeps_the_link() {
    let dir = project("");
    let real = dir.path().join("docs/real.md");
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(&real, readme_with_markers()).unwrap();
    std::fs::remove_file(dir.path().join("README.md")).unwrap();
    std::os::unix::fs::symlink("docs/real.md", dir.path().join("README.md"))
        .unwrap();

    let output = report(dir.path(), &["--update", "README.md"]);

    assert_eq!(output.status.code(), Some(0));
    let link = dir.path().join("README.md").symlink_metadata().unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.contains("| week2 (baseline) |"), "{text}");
}

#[cfg(unix)]
#[test]
fn a_readme_that_cannot_be_written_leaves_the_chart_unwritten_too() {
    let original = readme_with_markers();
    let dir = project(&original);
    let readme = dir.path().join("README.md");
    set_mode(&readme, 0o444);

    let output = report(
        dir.path(),
        &["--update", "README.md", "--chart", "rw/sizes.svg"],
    );

    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(
            "'README.md' is read-only; make it writable to update it"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), original);
    assert!(!dir.path().join("rw/sizes.svg").exists(), "chart written");
    let leftovers = std::fs::read_dir(dir.path().join("rw"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "a temporary file was left behind");
}

#[cfg(unix)]
#[test]
fn a_device_fifo_or_directory_as_target_is_refused_without_reading_it() {
    let dir = project(&readme_with_markers());
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo failed");
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let cases: [&[&str]; 6] = [
        &["--update", "README.md", "--chart", "/dev/full"],
        &["--update", "README.md", "--chart", "/dev/zero"],
        &["--update", "README.md", "--chart", "fifo"],
        &["--update", "/dev/zero"],
        &["--update", "fifo"],
        &["--update", "folder"],
    ];
    for args in cases {
        let started = std::time::Instant::now();

        let output = report(dir.path(), args);

        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        let named = args.last().unwrap();
        assert!(err.contains(&format!("'{named}' is not a regular")), "{err}");
        assert!(started.elapsed().as_secs() < 10, "{args:?} took long");
    }
    let text = std::fs::read_to_string(dir.path().join("README.md"));
    assert_eq!(text.unwrap(), readme_with_markers());
}
