//! `imgopt base build` and `imgopt base push` against a real registry that
//! requires a login: Debian's `docker-registry` on loopback, started here
//! with its own config and htpasswd file, and stopped again whatever the
//! outcome. The engine allows `127.0.0.1:PORT` registries without TLS.
//!
//! Needs the `docker-registry` and `apache2-utils` packages (installed by
//! scripts/setup.sh) and a Docker engine; fails with what to do otherwise.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{docker, imgopt, project_copy, run, run_in_image, runtime};

/// The user and password the test registry accepts.
const USER: &str = "imgopt-test";
const PASSWORD: &str = "pw-9f3c1e-not-elsewhere";

/// Image names this binary creates, so it never touches the project's.
const BASE_TAG: &str = "imgopt-test-registry/node-base:1.0";
const APP_PREFIX: &str = "imgopt-test-registry/app";

/// A `docker-registry` process with htpasswd auth and storage in a
/// temporary directory. Stop it with [`Registry::stop`]; dropping it stops
/// it too, so a failed assertion does not leave it running.
struct Registry {
    child: Option<Child>,
    host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-B", "-b", "-c"])
            .arg(&htpasswd)
            .args([USER, PASSWORD])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need `htpasswd` (package apache2-utils; \
                     run scripts/setup.sh): {e}"
                )
            });
        assert!(out.status.success(), "htpasswd failed: {out:?}");

        let host = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    \
                 realm: imgopt-test\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need `docker-registry` (Debian package \
                     docker-registry; run scripts/setup.sh): {e}"
                )
            });
        let registry = Registry { child: Some(child), host, _dir: dir };
        registry.wait_until_up();
        registry
    }

    /// Polls `/v2/` until the registry answers (401 without a login).
    fn wait_until_up(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(response) =
                agent().get(format!("http://{}/v2/", self.host)).call()
            {
                assert_eq!(response.status(), 401, "the registry needs auth");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry did not answer on {} in 20 s", self.host);
    }

    /// The tags the registry holds for a repository, asked with a login.
    fn tags(&self, repository: &str) -> Vec<String> {
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{USER}:{PASSWORD}"));
        let mut response = agent()
            .get(format!("http://{}/v2/{repository}/tags/list", self.host))
            .header("Authorization", format!("Basic {auth}"))
            .call()
            .unwrap();
        assert_eq!(response.status(), 200);
        let json: serde_json::Value = serde_json::from_str(
            &response.body_mut().read_to_string().unwrap(),
        )
        .unwrap();
        json["tags"]
            .as_array()
            .map(|tags| {
                tags.iter().map(|t| t.as_str().unwrap().to_string()).collect()
            })
            .unwrap_or_default()
    }

    /// Kills the registry and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP client that never goes through a proxy and treats every status
/// as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// A Docker config directory whose `config.json` holds `password` for
/// `host` as a base64 `auth` entry, as `docker login` writes it.
fn docker_config(host: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{USER}:{password}"));
    let json = serde_json::json!({ "auths": { host: { "auth": auth } } });
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    dir
}

/// A project copy whose base and variants have this binary's own names.
fn test_project() -> tempfile::TempDir {
    let dir = project_copy();
    let path = dir.path().join("imgopt.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("namespace = \"yourname\"\n", "")
        .replace("name = \"node-base\"\n", "")
        .replace("version = \"1.0\"\n", &format!("tag = \"{BASE_TAG}\"\n"))
        .replace("\"imgopt-app:", &format!("\"{APP_PREFIX}:"));
    assert!(text.contains(BASE_TAG), "the [base] table changed shape");
    std::fs::write(&path, text).unwrap();
    dir
}

/// The project copy after `imgopt base build --format json` ran once for
/// this binary, with the report it printed.
fn built_base() -> &'static (tempfile::TempDir, serde_json::Value) {
    static BUILT: OnceLock<(tempfile::TempDir, serde_json::Value)> =
        OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = test_project();
        let output = run(
            imgopt(dir.path()).args(["base", "build", "--format", "json"])
        );
        assert!(output.status.success(), "imgopt base build failed");
        let json = serde_json::from_slice(&output.stdout).unwrap();
        (dir, json)
    })
}

fn project_dir() -> PathBuf {
    built_base().0.path().to_path_buf()
}

/// Runs `imgopt base push` with a Docker config directory, returning
/// (exit code, stdout, stderr).
fn push(
    dir: &Path,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = imgopt(dir);
    cmd.args(["base", "push"]).args(args).env("DOCKER_CONFIG", config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = run(&mut cmd);
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Removes an image name this binary made; a missing one is fine.
fn remove_tag(reference: &str) {
    let _ = runtime().block_on(docker().remove_image(
        reference,
        None::<bollard::query_parameters::RemoveImageOptions>,
        None,
    ));
}

fn image_exists(reference: &str) -> bool {
    runtime().block_on(docker().inspect_image(reference)).is_ok()
}

#[test]
fn base_build_measures_the_base_and_lists_its_packages() {
    let (_, json) = built_base();
    let base = &json["base"];
    let image = runtime().block_on(docker().inspect_image(BASE_TAG)).unwrap();

    assert_eq!(json["format_version"], 1);
    assert_eq!(base["size_bytes"].as_i64(), image.size);
    assert_eq!(base["user"], "1000:1000");
    let packages: Vec<&str> = json["packages"]
        .as_array()
        .expect("the base carries its packages manifest")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(packages.contains(&"nodejs"), "no nodejs package in {packages:?}");
    assert_eq!(json["variants"].as_array().unwrap().len(), 3);
}

#[test]
fn a_push_with_a_login_from_config_json_lands_and_pulls_back_the_same() {
    let dir = project_dir();
    let mut registry = Registry::start();
    let config = docker_config(&registry.host, PASSWORD);
    let target = format!("{}/{BASE_TAG}", registry.host);

    // Trace logging of everything, bollard's HTTP layer included.
    let (code, stdout, stderr) = push(
        &dir,
        config.path(),
        &["--registry", &registry.host, "-vv"],
        &[("IMGOPT_LOG", "trace")],
    );

    assert_eq!(code, 0, "{stderr}");
    let digest = stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "stdout: {stdout}");
    assert!(stderr.contains("layer 1/"), "no per-layer progress: {stderr}");
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, auth.as_str()] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    assert!(!stderr.contains("X-Registry-Auth"));
    // The check above means something only if tracing was on.
    assert!(
        stderr.contains("DEBUG imgopt") || stderr.contains("TRACE imgopt"),
        "trace logging was off: {stderr}"
    );

    // It landed: the registry lists the tag.
    let repository = BASE_TAG.split(':').next().unwrap();
    assert_eq!(registry.tags(repository), ["1.0"]);

    // Remove the local name, pull it back, and compare digests.
    remove_tag(&target);
    assert!(!image_exists(&target));
    let (code, _, stderr) = pull(&registry.host, &target);
    assert_eq!(code, 0, "{stderr}");
    let pulled = runtime().block_on(docker().inspect_image(&target)).unwrap();
    let digests = pulled.repo_digests.unwrap_or_default();
    assert!(
        digests
            .contains(&format!("{}/{}@{digest}", registry.host, repository)),
        "{digests:?} lacks {digest}"
    );

    // The custom-base variant builds on the pulled base and passes the
    // same checks as the other variants.
    custom_base_variant_on(&dir, &target);

    registry.stop();
    remove_tag(&target);
    remove_tag(&format!("{APP_PREFIX}:custom-base"));
}

/// Pulls `target` with the registry login, through the engine directly.
fn pull(host: &str, target: &str) -> (i32, String, String) {
    use futures_util::StreamExt;
    let (repository, tag) = target.rsplit_once(':').unwrap();
    let credentials = bollard::auth::DockerCredentials {
        username: Some(USER.into()),
        password: Some(PASSWORD.into()),
        serveraddress: Some(host.into()),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateImageOptionsBuilder::new()
        .from_image(repository)
        .tag(tag)
        .build();
    let docker = docker();
    let result: Result<Vec<_>, _> = runtime().block_on(async {
        docker
            .create_image(Some(options), None, Some(credentials))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    });
    match result {
        Ok(_) => (0, String::new(), String::new()),
        Err(e) => (1, String::new(), e.to_string()),
    }
}

fn custom_base_variant_on(dir: &Path, base: &str) {
    let app = format!("{APP_PREFIX}:custom-base");
    let arg = format!("BASE_IMAGE={base}");
    let output = run(imgopt(dir).args([
        "measure",
        "custom-base",
        "--build-arg",
        &arg,
        "--format",
        "json",
    ]));
    assert!(output.status.success(), "custom-base on the pulled base");
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    let m = &json["images"][0];

    assert_eq!(m["base_image"], base);
    assert_eq!(m["node_env"], "production");
    assert_eq!(m["healthcheck"], true);
    let (code, out) = run_in_image(
        &app,
        &["node", "-e", "console.log(process.getuid(), process.env.NODE_ENV)"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1000", "production"]
    );

    // Its size: the base plus the app, a fraction of the baseline's.
    let base_size = built_base().1["base"]["size_bytes"].as_u64().unwrap();
    let size = m["size_bytes"].as_u64().unwrap();
    assert!(size > base_size && size < base_size + 20_000_000, "{size}");

    // And `base build` now finds the whole base inside it.
    let output = run(imgopt(dir).args(["base", "build", "--format", "json"]));
    assert!(output.status.success());
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    let share = report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "custom-base")
        .unwrap();
    assert_eq!(share["share"], "whole");
    assert_eq!(share["base_bytes"].as_u64(), Some(base_size));
}

#[test]
fn a_push_with_a_wrong_password_exits_2_and_explains_the_refusal() {
    let dir = project_dir();
    let mut registry = Registry::start();
    let config = docker_config(&registry.host, "not-the-password");
    let target = format!("{}/{BASE_TAG}", registry.host);

    let (code, stdout, stderr) =
        push(&dir, config.path(), &["--registry", &registry.host], &[]);

    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "a failed push printed {stdout}");
    assert!(
        stderr.contains(&format!(
            "registry {} refused the login",
            registry.host
        )),
        "{stderr}"
    );
    assert!(stderr.contains("docker login"), "{stderr}");
    assert!(!stderr.contains("not-the-password"));
    // The name made for the push is gone again.
    assert!(!image_exists(&target));
    registry.stop();
}

#[test]
fn a_push_without_any_login_exits_2_and_says_to_log_in() {
    let dir = project_dir();
    let mut registry = Registry::start();
    let empty = tempfile::tempdir().unwrap();

    let (code, stdout, stderr) =
        push(&dir, empty.path(), &["--registry", &registry.host], &[]);

    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("requires a login and none was found"),
        "{stderr}"
    );
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    registry.stop();
}

#[test]
fn a_login_on_stdin_is_taken_like_docker_login_takes_it() {
    let dir = project_dir();
    let mut registry = Registry::start();
    let empty = tempfile::tempdir().unwrap();
    let target = format!("{}/{BASE_TAG}", registry.host);

    let mut child = imgopt(&dir)
        .args(["base", "push", "--registry", &registry.host])
        .args(["--username", USER, "--password-stdin"])
        .env("DOCKER_CONFIG", empty.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));

    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("sha256:"));
    assert_eq!(registry.tags(BASE_TAG.split(':').next().unwrap()), ["1.0"]);
    registry.stop();
    remove_tag(&target);
}

#[test]
fn a_registry_that_is_not_running_is_a_network_failure_exit_2() {
    let dir = project_dir();
    let empty = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1:{}", free_port());

    let (code, _, stderr) =
        push(&dir, empty.path(), &["--registry", &host], &[]);

    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach registry {host}")),
        "{stderr}"
    );
    assert!(!image_exists(&format!("{host}/{BASE_TAG}")));
}

#[test]
fn dry_run_shows_the_tag_push_and_login_and_changes_nothing() {
    let dir = project_dir();
    let config = docker_config("127.0.0.1:5999", PASSWORD);

    let (code, stdout, stderr) = push(
        &dir,
        config.path(),
        &["--registry", "127.0.0.1:5999", "--dry-run"],
        &[],
    );

    assert_eq!(code, 0, "{stderr}");
    let target = format!("127.0.0.1:5999/{BASE_TAG}");
    assert!(stdout.contains(&format!("would tag  {BASE_TAG} as {target}")));
    assert!(stdout.contains(&format!("would push {target}")), "{stdout}");
    assert!(stdout.contains(&format!("user '{USER}' from auths in ")));
    assert!(!stdout.contains(PASSWORD));
    assert!(!image_exists(&target));
}

#[test]
fn pushing_a_base_that_is_not_built_exits_2_and_says_to_build_it() {
    let dir = project_dir();
    let empty = tempfile::tempdir().unwrap();

    let (code, _, stderr) = push(
        &dir,
        empty.path(),
        &[
            "--tag",
            "imgopt-test-registry/never-built:1",
            "--registry",
            "127.0.0.1:5999",
        ],
        &[],
    );

    assert_eq!(code, 2);
    assert!(stderr.contains("is not built yet"), "{stderr}");
    assert!(stderr.contains("imgopt base build"), "{stderr}");
}

#[test]
fn an_edited_base_is_rebuilt_before_the_variant_that_needs_it() {
    let dir = test_project();
    let config = dir.path().join("imgopt.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(BASE_TAG, "imgopt-test-registry/node-base:edited")
        .replace(
            &format!("{APP_PREFIX}:"),
            "imgopt-test-registry/app-edited:",
        );
    std::fs::write(&config, text).unwrap();
    // A change that only a rebuilt base can carry into the app image
    // (images inherit their base's labels), unique to this run.
    let mark = format!("{:?}", Instant::now());
    let dockerfile = dir.path().join("custom-base-image/Dockerfile");
    let mut text = std::fs::read_to_string(&dockerfile).unwrap();
    text.push_str(&format!("LABEL imgopt.test.edit=\"{mark}\"\n"));
    std::fs::write(&dockerfile, text).unwrap();

    let output = run(imgopt(dir.path()).args(["build", "custom-base"]));

    assert!(output.status.success());
    let app = runtime()
        .block_on(
            docker()
                .inspect_image("imgopt-test-registry/app-edited:custom-base"),
        )
        .unwrap();
    let labels = app.config.unwrap().labels.unwrap_or_default();
    assert_eq!(labels.get("imgopt.test.edit"), Some(&mark));
    remove_tag("imgopt-test-registry/app-edited:custom-base");
    remove_tag("imgopt-test-registry/node-base:edited");
}

/// The image id a reference names, or `None`.
fn image_id(reference: &str) -> Option<String> {
    runtime().block_on(docker().inspect_image(reference)).ok()?.id
}

/// Gives `source` the extra name `target`, through the engine directly.
fn add_tag(source: &str, target: &str) {
    let (repo, tag) = target.rsplit_once(':').unwrap();
    let options = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(repo)
        .tag(tag)
        .build();
    runtime().block_on(docker().tag_image(source, Some(options))).unwrap();
}

#[test]
fn a_registry_name_held_by_another_image_is_refused_and_kept() {
    let dir = project_dir();
    let empty = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1:{}", free_port());
    let target = format!("{host}/{BASE_TAG}");
    let other = common::project_build_arg("ALPINE_IMAGE");
    add_tag(&other, &target);
    let before = image_id(&target);

    let (code, stdout, stderr) =
        push(&dir, empty.path(), &["--registry", &host], &[]);

    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "'{target}' already exists and points at another image"
        )),
        "{stderr}"
    );
    assert_eq!(image_id(&target), before, "the user's name was changed");
    remove_tag(&target);
}

#[test]
fn a_registry_name_that_already_named_the_base_survives_a_failed_push() {
    let dir = project_dir();
    let empty = tempfile::tempdir().unwrap();
    // No registry listens there: the push fails after the tag step.
    let host = format!("127.0.0.1:{}", free_port());
    let target = format!("{host}/{BASE_TAG}");
    add_tag(BASE_TAG, &target);

    let (code, _, stderr) =
        push(&dir, empty.path(), &["--registry", &host], &[]);

    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot reach registry"), "{stderr}");
    assert_eq!(image_id(&target), image_id(BASE_TAG), "{stderr}");
    remove_tag(&target);
}

/// Starts a push to a fresh registry, sends `signal` once the push has
/// begun, and returns (exit code, stderr, the registry-qualified name).
fn interrupted_push(signal: &str) -> (i32, String, String) {
    use std::io::{BufRead, BufReader, Read};
    let dir = project_dir();
    let mut registry = Registry::start();
    let config = docker_config(&registry.host, PASSWORD);
    let target = format!("{}/{BASE_TAG}", registry.host);
    let mut child = imgopt(&dir)
        .args(["base", "push", "--registry", &registry.host])
        .env("DOCKER_CONFIG", config.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.starts_with("pushing ") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("pushing "), "the push never began: {seen}");
    assert!(image_exists(&target), "no name was made for the push");
    send(signal, child.id());
    let status = child.wait().unwrap();
    reader.read_to_string(&mut seen).unwrap();
    registry.stop();
    (status.code().unwrap_or(-1), seen, target)
}

fn send(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_interrupted_push_exits_130_and_removes_the_name_it_made() {
    for signal in ["INT", "TERM"] {
        let (code, stderr, target) = interrupted_push(signal);

        // A push that won the race would exit 0 and keep its name.
        assert_eq!(code, 130, "SIG{signal}: {stderr}");
        assert!(!image_exists(&target), "SIG{signal} left {target}");
        assert!(!stderr.contains("could not remove"), "{stderr}");
    }
}

/// The fixture credential helpers' directory, first on PATH.
fn path_with_fixture_helpers() -> String {
    let bin = common::repo_root().join("tests/fixtures/docker-config/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

fn hanging_helper_config() -> PathBuf {
    common::repo_root().join("tests/fixtures/docker-config/hanging-helper")
}

#[test]
fn a_credential_helper_that_never_answers_times_out_with_exit_2() {
    let dir = test_project();
    let path = path_with_fixture_helpers();
    let started = Instant::now();

    let (code, _, stderr) = push(
        dir.path(),
        &hanging_helper_config(),
        &["--registry", "127.0.0.1:5999", "--dry-run"],
        &[("PATH", &path), ("IMGOPT_CREDENTIAL_TIMEOUT", "1")],
    );

    assert_eq!(code, 2, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr.contains("docker-credential-imgopt-hang"), "{stderr}");
    assert!(stderr.contains("no answer in 1s"), "{stderr}");
    assert!(stderr.contains("IMGOPT_CREDENTIAL_TIMEOUT"), "{stderr}");
}

#[test]
fn an_interrupt_while_a_credential_helper_hangs_exits_130_at_once() {
    let dir = test_project();
    let path = path_with_fixture_helpers();

    for signal in ["INT", "TERM"] {
        let child = imgopt(dir.path())
            .args(["base", "push", "--registry", "127.0.0.1:5999"])
            .arg("--dry-run")
            .env("DOCKER_CONFIG", hanging_helper_config())
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Time to load the config and start the helper.
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Instant::now();
        send(signal, child.id());
        let output = child.wait_with_output().unwrap();

        assert_eq!(output.status.code(), Some(130), "SIG{signal}");
        assert!(sent.elapsed() < Duration::from_secs(5), "SIG{signal}");
    }
}

#[test]
fn an_invalid_tag_is_refused_before_any_build_or_push() {
    let dir = test_project();

    for command in ["build", "push"] {
        let output = run(imgopt(dir.path())
            .args(["base", command, "--tag", "Bad Tag"])
            .env("DOCKER_CONFIG", dir.path()));

        assert_eq!(output.status.code(), Some(2), "base {command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("not a valid image reference"), "{stderr}");
        assert!(stderr.contains("--tag"), "{stderr}");
    }
}
