//! How imgopt fails: broken Dockerfiles, no engine, unknown variants,
//! Ctrl-C. Each failure must say what happened and exit with the code the
//! conventions give it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{docker, imgopt, project_build_arg, run, runtime};

/// A one-variant project whose Dockerfile is `dockerfile`, on the small
/// stand-in (or real) alpine image.
fn tiny_project(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let base = project_build_arg("ALPINE_IMAGE");
    std::fs::write(
        dir.path().join("imgopt.toml"),
        format!(
            "[build_args]\nBASE = \"{base}\"\n\n[[variant]]\nname = \"tiny\"\n\
             dockerfile = \"Dockerfile\"\ntag = \"imgopt-test:tiny\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("ARG BASE\nFROM ${{BASE}}\n{dockerfile}"),
    )
    .unwrap();
    dir
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_failing_step_exits_one_and_shows_the_step_and_its_log() {
    let dir =
        tiny_project("RUN echo preparing\nRUN echo about to fail && exit 3\n");

    let output = run(imgopt(dir.path()).arg("build"));

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("build of 'tiny' failed"), "{err}");
    assert!(err.contains("Step 4/4 : RUN echo about to fail"), "{err}");
    assert!(err.contains("| about to fail"), "{err}");
    assert!(err.contains("non-zero code: 3"), "{err}");
}

#[test]
fn a_dockerfile_syntax_error_exits_one_with_the_engine_message() {
    let dir = tiny_project("RUNN echo typo\n");

    let output = run(imgopt(dir.path()).arg("build"));

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown instruction"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreachable_engine_exits_two_naming_the_address_and_a_fix() {
    let dir = tiny_project("");

    let output = run(imgopt(dir.path())
        .arg("build")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"));

    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
    assert!(err.contains("DOCKER_HOST"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn an_unknown_variant_exits_two_and_lists_the_known_ones() {
    let dir = tiny_project("");

    let output = run(imgopt(dir.path()).args(["measure", "huge"]));

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("known variants: tiny"));
}

#[test]
fn a_missing_config_exits_two_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();

    let output = run(imgopt(dir.path()).arg("build"));

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("imgopt.toml"));
}

/// Containers whose command mentions `marker`, running or not.
fn containers_with(marker: &str) -> Vec<String> {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let docker = docker();
    let all = runtime()
        .block_on(docker.list_containers(Some(
            ListContainersOptionsBuilder::new().all(true).build(),
        )))
        .unwrap();
    all.into_iter()
        .filter(|c| c.command.as_deref().unwrap_or_default().contains(marker))
        .filter_map(|c| c.id)
        .collect()
}

#[test]
fn ctrl_c_during_a_build_exits_130_and_leaves_no_container() {
    let marker = format!("imgopt-sigint-{}", std::process::id());
    let dir = tiny_project(&format!("RUN sleep 60 && echo {marker}\n"));
    let mut child = imgopt(dir.path())
        .args(["build", "--no-cache"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until the RUN step's container exists, then interrupt.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("Step 3/3"));
    assert!(started, "the build never reached its RUN step");
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "no build container appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    interrupt(child.id());
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(130));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !containers_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "build containers left behind: {:?}",
            containers_with(&marker)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn interrupt(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_empty_dockerfile_fails_the_build_before_the_upload() {
    let dir = tiny_project("");
    std::fs::write(dir.path().join("Dockerfile"), "\n  \n").unwrap();

    let output = run(imgopt(dir.path()).arg("build"));

    // The engine's own message would be "cannot be empty"; imgopt's
    // refusal comes before the context is uploaded.
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is empty"), "{}", stderr(&output));
}

#[test]
fn an_invalid_tag_is_a_configuration_error_before_any_build() {
    let dir = tiny_project("");
    let config = dir.path().join("imgopt.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("imgopt-test:tiny", "Tiny:1"))
        .unwrap();

    let output = run(imgopt(dir.path()).arg("build"));

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("not a valid image reference"));
}

#[test]
fn a_full_stderr_does_not_crash_a_build() {
    let dir = tiny_project("RUN echo quiet\n");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");

    let output =
        imgopt(dir.path()).arg("build").stderr(full).output().unwrap();

    assert_eq!(output.status.code(), Some(0));
}
