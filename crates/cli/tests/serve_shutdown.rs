//! `authgate serve` as a supervisor sees it: `authgate health` (the image's
//! HEALTHCHECK) reports whether it serves, and SIGTERM drains in-flight
//! requests, then exits 0 — at the latest after `app::drain_timeout`, even
//! when a response stream would never end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// A bound on waiting for a child process: a hung process fails the test
/// instead of hanging it. Not a performance expectation.
const PATIENCE: Duration = Duration::from_secs(90);

fn authgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgate"));
    command
        .env_remove("AUTHGATE_CONFIG")
        .env("AUTHGATE_LOG", "info")
        .kill_on_drop(true);
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration file for a gateway on `port` in front of `upstream`, with
/// SQLite in `dir` and the development provider at `issuer`.
fn write_config(dir: &Path, port: u16, upstream: &str, issuer: &str) -> PathBuf {
    let db = dir.join("authgate.db");
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
upstream = "{upstream}"
upstream_timeout = "1s"

[session]
secret = ["test-secret-at-least-32-chars-long!!"]

[refresh]
timeout = "1s"

[store]
url = "sqlite://{db}"

[[providers]]
id = "dev"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"

[[routes]]
path = "/**"
access = "public"
"#,
        db = db.display()
    );
    let path = dir.join("authgate.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

async fn dev_provider() -> DevIdp {
    DevIdp::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DevIdpConfig::default().with_client(DevClient::new("test", "test-secret")),
    )
    .await
    .unwrap()
}

/// Starts `authgate serve` and waits until `/healthz` answers.
async fn serve(config: &Path, port: u16) -> Child {
    let mut child = authgate()
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..300 {
        if let Ok(Some(status)) = child.try_wait() {
            let output = child.wait_with_output().await.unwrap();
            panic!("authgate serve exited early ({status}): {}", log(&output));
        }
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("authgate serve did not answer {url}");
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("the child is running");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Everything the process wrote (its log lines go to stdout, errors to stderr).
fn log(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn exit(child: Child) -> Output {
    tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("authgate serve exits after SIGTERM")
        .unwrap()
}

/// An upstream that answers one request: it reports when the request has
/// arrived, then either answers after `delay`, or sends the headers and the
/// first chunk of a body it never finishes.
async fn one_shot_upstream(finish_after: Option<Duration>) -> (String, oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (arrived, arrival) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buffer[..n]);
        }
        let _ = arrived.send(());
        match finish_after {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                let body = "finished after the signal";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
            None => {
                let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                socket.write_all(head.as_bytes()).await.unwrap();
                // Never finish; hold the connection until the test ends.
                std::future::pending::<()>().await;
            }
        }
    });
    (url, arrival)
}

#[tokio::test]
async fn health_exits_0_while_the_gateway_serves_and_1_once_it_is_gone() {
    let idp = dev_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "http://127.0.0.1:9", idp.issuer_str());
    let child = serve(&config, port).await;

    let healthy = authgate()
        .arg("health")
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&healthy.stdout);
    assert_eq!(healthy.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{port}/healthz answered 200")),
        "{stdout}"
    );

    sigterm(&child);
    assert_eq!(exit(child).await.status.code(), Some(0));

    let gone = authgate()
        .arg("health")
        .arg("--config")
        .arg(&config)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("unhealthy: "), "{stderr}");

    // A configuration it cannot load is unhealthy too: 1, never Docker's
    // reserved 2.
    let broken = authgate()
        .arg("health")
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let idp = dev_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (upstream, arrival) = one_shot_upstream(Some(Duration::from_millis(500))).await;
    let config = write_config(dir.path(), port, &upstream, idp.issuer_str());
    let child = serve(&config, port).await;

    let request = tokio::spawn(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/slow"))
            .send(),
    );
    arrival.await.unwrap();
    sigterm(&child);

    let response = request
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished after the signal");
    let output = exit(child).await;
    let log = log(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains("shutting down: draining in-flight requests"),
        "{log}"
    );
    assert!(!log.contains("drain deadline"), "{log}");
}

#[tokio::test]
async fn a_response_that_never_ends_does_not_keep_the_process_past_the_drain_deadline() {
    let idp = dev_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (upstream, arrival) = one_shot_upstream(None).await;
    let config = write_config(dir.path(), port, &upstream, idp.issuer_str());
    let child = serve(&config, port).await;

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    arrival.await.unwrap();
    sigterm(&child);

    // The drain deadline of this configuration is 4 × 1 s + 5 s.
    let output = exit(child).await;
    let log = log(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains("requests still in flight after the drain deadline are cut"),
        "{log}"
    );
    // The client sees the stream end without its terminating chunk.
    assert!(response.text().await.is_err());
}
