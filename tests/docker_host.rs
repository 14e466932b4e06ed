//! `DOCKER_HOST` is honoured: imgopt reaches an engine over tcp on
//! loopback, here through a small proxy to the engine's unix socket (the
//! same bytes an engine's tcp listener would carry).

mod common;

use common::{imgopt, project_build_arg, run, runtime};
use tokio::net::{TcpListener, UnixStream};

/// The engine's unix socket, from `DOCKER_HOST` or the default path.
fn engine_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => {
            host.trim_start_matches("unix://").to_string()
        }
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// Starts a loopback tcp proxy to the engine and returns its address.
fn start_proxy() -> String {
    let socket = engine_socket();
    let listener = runtime()
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("binding a loopback port");
    let address = listener.local_addr().unwrap();
    runtime().spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix)
                        .await;
                }
            });
        }
    });
    format!("tcp://{address}")
}

#[test]
fn measure_image_works_with_docker_host_over_tcp() {
    let image = project_build_arg("ALPINE_IMAGE");
    let host = start_proxy();
    let dir = common::project_copy();

    let output = run(imgopt(dir.path())
        .args(["measure", "--image", &image, "--format", "json"])
        .env("DOCKER_HOST", &host));

    assert!(output.status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["engine"]["host"], host);
    let measured = &json["images"][0];
    let engine =
        runtime().block_on(common::docker().inspect_image(&image)).unwrap();
    assert_eq!(measured["size_bytes"].as_i64(), engine.size);
    assert_eq!(measured["image_id"].as_str(), engine.id.as_deref());
}
