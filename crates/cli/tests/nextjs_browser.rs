//! The Next.js example (`examples/nextjs`) behind authgate, in headless
//! Chromium: unchanged `next-auth/react` client code (v5, and v4 with
//! `cookie_format = "next-auth-v4"`), identity and access token from request
//! headers in server components, server actions and route handlers,
//! Auth.js's `auth()` reading authgate's cookie, 5 tabs + 5 fetches after
//! expiry served by one refresh grant, a revoked grant, sign-out in every tab.
//!
//! This test owns every process: the development provider and two gateways
//! run in-process; `next start`, Chromium and the Node script that drives it
//! (`examples/nextjs/e2e/browser.mjs`, playwright-core over CDP) each run in
//! their own process group, which is killed when the test ends, however it
//! ends. The app is built by `examples/nextjs/build-if-changed.sh` (npm ci
//! and `next build` only when the lock file or a source changed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_devidp::{DevClient, DevIdp, DevIdpConfig, DevIdpState};
use authgate_store::Store;
use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use common::nextjs::{Deployment, Group, build_example, example_dir, free_port, start_next};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "nextjs-browser-test-secret-32-chars!!";
const CLIENT_ID: &str = "nextjs-e2e";
const CLIENT_SECRET: &str = "nextjs-e2e-secret";
/// Access tokens live 17 s and are stale 2 s early: the storm has 15 s of a
/// fresh token after its one refresh.
const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(17);
const SKEW_SECS: u64 = 2;
const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless Chromium with a fresh profile and a DevTools port of its own
/// choosing; returns the browser's DevTools WebSocket URL.
async fn start_chromium(dir: &Path) -> (Group, String) {
    let profile = dir.join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let mut chromium = Group::spawn(
        "chromium",
        Command::new(CHROMIUM).args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            &format!("--user-data-dir={}", profile.display()),
            "about:blank",
        ]),
        dir.join("chromium.log"),
    );
    let port_file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        chromium.assert_running();
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let [port, path, ..] = text.lines().collect::<Vec<_>>()[..]
        {
            return (chromium, format!("ws://127.0.0.1:{port}{path}"));
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not open its DevTools port within 30 s:\n{}",
            chromium.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gateway in front of the app at `/api/auth`, signing in at the
/// development provider as `op`, passing the access token upstream.
async fn start_gateway(next_port: u16, issuer: &str, cookie_format: &str) -> common::Gateway {
    let reserved = common::reserve().await;
    let public = reserved.url.as_str().trim_end_matches('/').to_owned();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public}"
upstream = "http://127.0.0.1:{next_port}"
base_path = "/api/auth"
pass_access_token = true
pass_auth_cookies = true

[session]
secret = ["{SECRET}"]
cookie_format = "{cookie_format}"

[refresh]
mode = "inline"
skew = "{SKEW_SECS}s"
timeout = "30s"

[store]
url = "{{db}}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "Local OP"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = ["openid", "email", "profile", "offline_access"]

[[routes]]
path = "/api/**"
access = "api"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
"#
    );
    common::start(reserved, &toml).await
}

/// What the browser script may ask of the test.
#[derive(Clone)]
struct Control {
    idp: Arc<DevIdpState>,
    store: Arc<dyn Store>,
    http: reqwest::Client,
}

async fn stats(State(c): State<Control>) -> Json<serde_json::Value> {
    let s = c.idp.stats();
    Json(serde_json::json!({
        "refresh_grants": s.refresh_grants,
        "code_grants": s.code_grants,
        "reuse_detections": s.reuse_detections,
        "revocations": s.revocations,
    }))
}

/// Revokes the user's grant at the provider, as an administrator (or the
/// user, in the provider's account settings) would: RFC 7009 with the
/// refresh token authgate holds for them.
async fn revoke(
    State(c): State<Control>,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let login = body["login"].as_str().unwrap();
    let account = c
        .store
        .find_account_by_provider("op", login)
        .await
        .unwrap()
        .expect("the user's account");
    let tokens = c.store.read_tokens(&account.id).await.unwrap().unwrap();
    let refresh_token = tokens.tokens.unwrap().refresh_token.unwrap();
    let response = c
        .http
        .post(format!("{}/revoke", c.idp.issuer_str()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "revocation: {response:?}");
    Json(serde_json::json!({ "revoked": true }))
}

async fn start_control(control: Control) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/stats", get(stats))
        .route("/revoke", post(revoke))
        .with_state(control);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_js_app_behind_authgate_works_end_to_end_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)"
    );
    build_example(Deployment::Behind);
    let dir = tempfile::Builder::new()
        .prefix("authgate-nextjs-e2e-")
        .tempdir()
        .unwrap();

    let idp = DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        DevIdpConfig {
            access_token_ttl: ACCESS_TOKEN_TTL,
            ..DevIdpConfig::default()
        }
        .with_client(DevClient::new(CLIENT_ID, CLIENT_SECRET).allow_any_loopback_redirect()),
    )
    .await
    .unwrap();
    let issuer = idp.issuer_str().to_owned();

    let next_port = free_port();
    let mut next = start_next(
        dir.path(),
        Deployment::Behind,
        next_port,
        &[("AUTH_SECRET", SECRET), ("OIDC_ISSUER", &issuer)],
    )
    .await;
    let gateway = start_gateway(next_port, &issuer, "authjs").await;
    let gateway_v4 = start_gateway(next_port, &issuer, "next-auth-v4").await;
    let (control_addr, control_task) = start_control(Control {
        idp: idp.state(),
        store: Arc::clone(&gateway.store),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    })
    .await;
    let (mut chromium, cdp_url) = start_chromium(dir.path()).await;

    let shots = dir.path().join("screenshots");
    let mut driver = Group::spawn(
        "the browser script",
        Command::new("node")
            .arg("e2e/browser.mjs")
            .current_dir(example_dir())
            .env("CDP_URL", &cdp_url)
            .env("APP_URL", gateway.url.as_str())
            .env("V4_URL", gateway_v4.url.as_str())
            .env("CONTROL_URL", format!("http://{control_addr}"))
            .env("SKEW_SECS", SKEW_SECS.to_string())
            .env("SHOT_DIR", &shots),
        dir.path().join("browser.log"),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = driver.child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(300) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let transcript = driver.output();
    eprintln!(
        "browser script ({:.1} s):\n{transcript}",
        started.elapsed().as_secs_f64()
    );
    if status.is_none_or(|s| !s.success()) {
        chromium.assert_running();
        next.assert_running();
        let kept = dir.keep();
        panic!(
            "the browser script {} — screenshots and logs (next.log, chromium.log, browser.log) kept in {}",
            match status {
                Some(s) => format!("failed ({s})"),
                None => "did not finish within 300 s".to_owned(),
            },
            kept.display()
        );
    }
    drop(driver);
    drop(chromium);
    drop(next);
    control_task.abort();
}
