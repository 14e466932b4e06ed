//! Shared setup for the integration tests: the real `imgopt` binary, a
//! copy of the project to run it in, and a direct line to the engine that
//! does not go through imgopt's own engine code, to check its figures.
//!
//! These tests need a Docker engine. They fail, loudly, when none answers:
//! run `scripts/setup.sh` first (CI does).

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use bollard::Docker;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built `imgopt` binary.
pub fn imgopt_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_imgopt"))
}

/// A command running `imgopt` in `dir`, with plain progress and no colour.
pub fn imgopt(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(imgopt_bin());
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("IMGOPT_CONFIG");
    cmd
}

/// Runs a command and returns its output, echoing stderr for the test log.
pub fn run(cmd: &mut std::process::Command) -> Output {
    let output = cmd.output().expect("failed to start imgopt");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A tokio runtime for talking to the engine from tests.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A bollard client, independent of imgopt's engine module. Panics with
/// what to do when no engine answers: these tests never skip.
pub fn docker() -> Docker {
    runtime().block_on(async {
        let docker = Docker::connect_with_defaults()
            .expect("DOCKER_HOST is not usable");
        docker.negotiate_version().await.unwrap_or_else(|e| {
            panic!(
                "integration tests need a running Docker engine \
                 (run scripts/setup.sh, or set DOCKER_HOST): {e}"
            )
        })
    })
}

/// The build arguments the project uses on this machine: the committed
/// configuration with the local stand-in override merged in.
pub fn project_build_arg(name: &str) -> String {
    let config =
        imgopt::config::Config::load(&repo_root().join("imgopt.toml"))
            .expect("the project configuration loads");
    config
        .local_build_args
        .get(name)
        .or(config.build_args.get(name))
        .unwrap_or_else(|| panic!("no build argument {name} configured"))
        .clone()
}

/// A copy of the project (its config, Dockerfiles, app and base image) in
/// a temporary directory, so tests never write into the checkout.
pub fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    for entry in [
        "imgopt.toml",
        "imgopt.local.toml",
        ".dockerignore",
        "app",
        "dockerfiles",
        "custom-base-image",
    ] {
        let from = root.join(entry);
        if from.exists() {
            copy_tree(&from, &dir.path().join(entry));
        }
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == "node_modules" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// The project copy after `imgopt measure --format json` ran in it once
/// for this test binary, with the JSON it printed.
pub fn measured_project() -> &'static (tempfile::TempDir, serde_json::Value) {
    static MEASURED: OnceLock<(tempfile::TempDir, serde_json::Value)> =
        OnceLock::new();
    MEASURED.get_or_init(|| {
        let dir = project_copy();
        let output =
            run(imgopt(dir.path()).args(["measure", "--format", "json"]));
        assert!(output.status.success(), "imgopt measure failed");
        let json = serde_json::from_slice(&output.stdout)
            .expect("measure prints a JSON document");
        (dir, json)
    })
}

/// The measured image entry for a variant.
pub fn measured(variant: &str) -> &'static serde_json::Value {
    let (_, json) = measured_project();
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == variant)
        .unwrap_or_else(|| panic!("no measurement for {variant}"))
}

/// Runs `cmd` in a fresh container of `image` (its entrypoint and working
/// directory kept) and returns the exit code and the combined output. The
/// container is removed afterwards.
pub fn run_in_image(image: &str, cmd: &[&str]) -> (i64, String) {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        LogsOptionsBuilder, RemoveContainerOptionsBuilder,
        WaitContainerOptions,
    };
    use futures_util::StreamExt;

    let docker = docker();
    runtime().block_on(async {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let id = docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .unwrap()
            .id;
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .unwrap();
        let mut wait =
            docker.wait_container(&id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError {
                code,
                ..
            })) => code,
            other => panic!("waiting for the container failed: {other:?}"),
        };
        let mut logs = docker.logs(
            &id,
            Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
            .unwrap();
        (code, text)
    })
}
