//! `imgopt verify` against the real engine, with the Postgres and Redis
//! images the project configures (stand-ins from scripts/standins.sh on a
//! machine without Docker Hub): every variant starts and connects, the
//! production checks hold, failures name their cause, and nothing a run
//! creates outlives it, Ctrl-C included.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    StopContainerOptionsBuilder,
};
use common::{docker, imgopt, project_build_arg, project_copy, run, runtime};

/// A project copy with every variant built once for this test binary.
fn built_project() -> &'static Path {
    static BUILT: OnceLock<tempfile::TempDir> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = project_copy();
            let output = run(imgopt(dir.path()).arg("build"));
            assert!(output.status.success(), "imgopt build failed");
            dir
        })
        .path()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Containers and networks labelled with this imgopt process id.
fn left_by(pid: u32) -> Vec<String> {
    let docker = docker();
    let label = format!("imgopt.pid={pid}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    runtime().block_on(async {
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .unwrap();
        containers
            .into_iter()
            .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
            .chain(networks.into_iter().filter_map(|n| n.name))
            .collect()
    })
}

fn assert_nothing_left(pid: u32) {
    let left = left_by(pid);
    assert!(left.is_empty(), "the run left {left:?} behind");
}

/// The first container of a running verify with this role.
fn container_of(pid: u32, role: &str) -> Option<String> {
    let docker = docker();
    let pid_label = format!("imgopt.pid={pid}");
    let role_label = format!("imgopt.role={role}");
    let filters = HashMap::from([(
        "label",
        vec![pid_label.as_str(), role_label.as_str()],
    )]);
    runtime()
        .block_on(
            docker.list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            )),
        )
        .unwrap()
        .into_iter()
        .find_map(|c| c.id)
}

/// Spawns `imgopt verify ARGS` with stderr piped.
fn spawn_verify(dir: &Path, args: &[&str]) -> Child {
    imgopt(dir)
        .arg("verify")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads stderr lines until one contains `marker`; returns the reader for
/// the rest and every line read.
fn read_until(
    lines: &mut impl Iterator<Item = String>,
    marker: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        eprintln!("{line}");
        let found = line.contains(marker);
        seen.push(line);
        if found {
            return seen;
        }
    }
    panic!("imgopt ended before printing {marker:?}: {seen:#?}");
}

#[test]
fn every_variant_starts_and_connects_and_the_optimized_ones_pass_all_checks() {
    let dir = built_project();

    let mut child = spawn_verify(dir, &["--no-build", "--format", "json"]);
    let pid = child.id();
    let output = {
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let err =
            std::thread::spawn(move || std::io::read_to_string(err).unwrap());
        let stdout = std::io::read_to_string(out).unwrap();
        let status = child.wait().unwrap();
        let stderr = err.join().unwrap();
        eprintln!("{stderr}");
        (status, stdout)
    };

    assert_eq!(output.0.code(), Some(0), "{}", output.1);
    let json: serde_json::Value = serde_json::from_str(&output.1).unwrap();
    assert_eq!(json["format_version"], 1);
    let images = json["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for image in images {
        let name = image["name"].as_str().unwrap();
        let verdict = |check: &str| {
            image["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == check)
                .map(|c| c["verdict"].as_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{name} has no {check} check"))
        };
        assert_eq!(verdict("connects"), "pass", "{name}");
        assert_eq!(verdict("counts"), "pass", "{name}");
        assert!(image["startup"]["mean"].as_f64().unwrap() > 0.0);
        assert!(image["memory_bytes"].as_u64().unwrap() > 1_000_000);
        let production = ["healthcheck", "healthy", "non-root", "NODE_ENV"];
        let expected = if name == "week2" { "expected" } else { "pass" };
        for check in production {
            assert_eq!(verdict(check), expected, "{name}: {check}");
        }
        if name != "week2" {
            assert!(image["healthy"]["mean"].as_f64().unwrap() > 0.0);
            assert_eq!(image["health_interval_ms"], 250);
        }
    }
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".imgopt/results.json")).unwrap(),
    )
    .unwrap();
    for name in ["week2", "multi-stage", "custom-base"] {
        assert!(
            results["records"][name]["startup"]["mean"].is_f64(),
            "no startup saved for {name}"
        );
    }
    assert_nothing_left(pid);
}

#[test]
fn with_redis_stopped_health_turns_503_and_verify_names_redis() {
    let dir = built_project();
    let mut child = spawn_verify(
        dir,
        &["multi-stage", "--no-build", "--runs", "100", "--timeout", "40s"],
    );
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    read_until(&mut lines, "run 1/100: /health ready");

    let redis = container_of(pid, "redis").expect("a redis container");
    let docker = docker();
    runtime()
        .block_on(docker.stop_container(
            &redis,
            Some(StopContainerOptionsBuilder::new().t(0).build()),
        ))
        .unwrap();

    // The app's own /health says so, on whichever port it has now.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_503 = false;
    while !saw_503 && Instant::now() < deadline {
        if let Some(port) = container_of(pid, "app").and_then(|id| {
            let c = runtime().block_on(docker.inspect_container(&id, None));
            c.ok()?
                .network_settings?
                .ports?
                .remove("3000/tcp")??
                .first()?
                .host_port
                .clone()
        }) {
            saw_503 = http_status(&format!("127.0.0.1:{port}"), "/health")
                == Some(503);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    let err = rest.join("\n");
    eprintln!("{err}");

    assert!(saw_503, "/health never answered 503 with redis stopped");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("down: redis"), "{err}");
    assert!(err.contains("service redis is not running"), "{err}");
    assert!(err.contains("engine health status: unhealthy"), "{err}");
    assert_nothing_left(pid);
}

/// A minimal HTTP/1.0 GET; the status code, if anything answered.
fn http_status(address: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// A project whose only variant's app crashes at start.
fn crashing_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config =
        imgopt::config::Config::load(&common::repo_root().join("imgopt.toml"))
            .unwrap();
    std::fs::write(
        dir.path().join("imgopt.toml"),
        format!(
            "[build_args]\nBASE = \"{}\"\n\n[verify]\npostgres_image = \
             \"{}\"\nredis_image = \"{}\"\ntimeout = \"30s\"\n\n\
             [[variant]]\nname = \"crash\"\ndockerfile = \"Dockerfile\"\n\
             tag = \"imgopt-test-verify:crash\"\n",
            project_build_arg("NODE_ALPINE_IMAGE"),
            config.verify.postgres_image,
            config.verify.redis_image,
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCMD [\"node\", \"-e\", \"console.error(\
         'crash-marker: config missing'); process.exit(3)\"]\n",
    )
    .unwrap();
    dir
}

/// A network labelled as if a run of `pid` on `host` had made it.
fn fake_leftover(name: &str, host: &str, pid: u32) -> String {
    let docker = docker();
    let labels = HashMap::from([
        ("imgopt.run".to_string(), format!("stale-{pid}")),
        ("imgopt.host".to_string(), host.to_string()),
        ("imgopt.pid".to_string(), pid.to_string()),
    ]);
    runtime()
        .block_on(docker.create_network(NetworkCreateRequest {
            name: name.into(),
            labels: Some(labels),
            ..Default::default()
        }))
        .unwrap()
        .id
}

fn network_exists(id: &str) -> bool {
    runtime().block_on(docker().inspect_network(id, None)).is_ok()
}

#[test]
fn a_crashing_app_fails_with_its_logs_and_dead_runs_are_swept() {
    let dir = crashing_project();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    // A pid that surely ran no imgopt: a process that already ended.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait_with_output().unwrap();
    let tag = std::process::id();
    let stale = fake_leftover(
        &format!("imgopt-test-verify-stale-{tag}"),
        &host,
        dead_pid,
    );
    let foreign = fake_leftover(
        &format!("imgopt-test-verify-foreign-{tag}"),
        "some-other-host",
        dead_pid,
    );

    let child = spawn_verify(dir.path(), &[]);
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    eprintln!("{err}");
    let foreign_kept = network_exists(&foreign);
    runtime().block_on(docker().remove_network(&foreign)).unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("| crash-marker: config missing"), "{err}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("FAIL"), "{table}");
    assert!(!network_exists(&stale), "the dead run's network was kept");
    assert!(foreign_kept, "another host's network was swept");
    assert_nothing_left(pid);
}

#[test]
fn ctrl_c_during_verify_exits_130_and_removes_everything() {
    interrupt_verify_with("INT");
}

#[test]
fn sigterm_and_sighup_clean_up_like_ctrl_c() {
    // `timeout`, a cancelled CI job and a closed terminal send these.
    interrupt_verify_with("TERM");
    interrupt_verify_with("HUP");
}

fn interrupt_verify_with(signal: &str) {
    let dir = built_project();
    let mut child =
        spawn_verify(dir, &["custom-base", "--no-build", "--runs", "100"]);
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    read_until(&mut lines, "waiting for /health");
    assert!(!left_by(pid).is_empty(), "nothing was created yet");

    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.collect();
    let status = child.wait().unwrap();
    eprintln!("{}", rest.join("\n"));

    assert_eq!(status.code(), Some(130), "after SIG{signal}");
    assert_nothing_left(pid);
}
