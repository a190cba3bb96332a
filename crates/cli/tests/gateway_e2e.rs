//! The gateway end to end: route rules, identity headers, header spoofing,
//! refresh through the proxy, and the refresh storm — against the real
//! `oidc-provider` peer with strict refresh-token rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::header::COOKIE;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn setup(access_ttl: u64, skew: &str, mode: &str) -> Stack {
    Stack::start(access_ttl, skew, mode, "").await
}

async fn upstream_view(b: &mut Browser, url: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut req = b.client.get(url).header(COOKIE, b.cookie_header());
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    b.absorb(&r);
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn header<'a>(view: &'a Value, name: &str) -> Vec<&'a str> {
    view["headers"][name]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn routes_are_enforced_identity_reaches_the_upstream_and_spoofed_headers_never_do() {
    let s = setup(3600, "2s", "inline").await;
    let base = s.gw.url.as_str().trim_end_matches('/').to_owned();
    let mut anon = Browser::new();

    let r = anon.get(&format!("{base}/protected/x?y=1")).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "/auth/signin?callbackUrl=%2Fprotected%2Fx%3Fy%3D1"
    );
    for sneaky in ["/public/../protected/x", "/%70rotected/x", "//protected//x"] {
        let r = anon.get(&format!("{base}{sneaky}")).await;
        assert_eq!(r.status(), 302, "{sneaky} must be protected");
    }
    let r = anon
        .client
        .get(format!("{base}/api/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "SessionRequired");

    let spoof = [
        ("X-Auth-Request-User", "admin"),
        ("x_auth_request_email", "admin@evil.example"),
        ("X-AUTH-REQUEST-NAME", "Admin"),
        ("X-Forwarded-Access-Token", "forged"),
    ];
    let (status, view) = upstream_view(&mut anon, &format!("{base}/public/page"), &spoof).await;
    assert_eq!(status, 200);
    assert_eq!(view["path"], "/public/page");
    for name in [
        "x-auth-request-user",
        "x-auth-request-email",
        "x_auth_request_email",
        "x-auth-request-name",
        "x-forwarded-access-token",
    ] {
        assert!(header(&view, name).is_empty(), "{name} leaked: {view}");
    }

    let (mut b, _) = sign_in_with_peer(&s.gw.url, "carol", "/protected/home").await;
    let (status, view) =
        upstream_view(&mut b, &format!("{base}/public/../protected/home"), &spoof).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["path"], "/protected/home");
    assert_eq!(
        header(&view, "x-auth-request-email"),
        ["carol@example.test"]
    );
    assert_eq!(header(&view, "x-auth-request-name"), ["Carol"]);
    assert_eq!(header(&view, "x-auth-request-user").len(), 1);
    assert_ne!(header(&view, "x-auth-request-user"), ["admin"]);
    assert!(header(&view, "x_auth_request_email").is_empty());
    assert!(
        header(&view, "x-forwarded-access-token").is_empty(),
        "not opted in"
    );
    let (status, _) = upstream_view(&mut b, &format!("{base}/api/data"), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_stale_token_is_refreshed_once_through_the_proxy_and_the_cookie_carries_the_new_expiry() {
    // Tokens live 15 s and count as stale 14 s early: after a 1.5 s wait the
    // sign-in's token is stale, a refreshed one is fresh again.
    let s = setup(15, "14s", "inline").await;
    let base = s.gw.url.as_str().trim_end_matches('/').to_owned();
    let (mut b, _) = sign_in_with_peer(&s.gw.url, "dave", "/").await;
    s.peer.set_access_token_ttl(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cookie = b.cookie_header();
    let client = b.client.clone();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (client, cookie, url) = (
            client.clone(),
            cookie.clone(),
            format!("{base}/protected/x"),
        );
        tasks.push(tokio::spawn(async move {
            client.get(url).header(COOKIE, cookie).send().await.unwrap()
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers().get("set-cookie").is_some(),
            "the new expiry is written back"
        );
        b.absorb(&r);
    }
    let stats = s.peer.stats().await;
    assert_eq!(stats.refresh_grants, 1, "{stats:?}");
    assert_eq!(stats.refresh_errors("invalid_grant"), 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let after: Value = b
        .get(&format!("{base}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        after["accessTokenExpiresAt"].as_i64().unwrap() > now + 40,
        "{after}"
    );
    assert_eq!(
        s.peer.stats().await.refresh_grants,
        1,
        "the rewritten cookie is fresh"
    );
}

/// Signs in `n` users concurrently (in batches) and returns their browsers.
async fn sign_in_many(gw: &url::Url, n: usize) -> Vec<Browser> {
    let mut browsers = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut tasks = Vec::new();
        for i in batch {
            let gw = gw.clone();
            let login = format!("user{i}");
            tasks.push(tokio::spawn(async move {
                sign_in_with_peer(&gw, &login, "/").await.0
            }));
        }
        for t in tasks {
            browsers.push(t.await.unwrap());
        }
    }
    browsers
}

/// 10 concurrent requests per browser, all at once; returns statuses and
/// per-request latencies, and keeps each browser's newest cookie.
async fn storm(base: &str, browsers: &mut [Browser]) -> (Vec<u16>, Vec<Duration>) {
    let mut tasks = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        for _ in 0..10 {
            let (client, cookie, url) = (
                b.client.clone(),
                b.cookie_header(),
                format!("{base}/protected/storm"),
            );
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let r = client.get(url).header(COOKIE, cookie).send().await.unwrap();
                (i, r, started.elapsed())
            }));
        }
    }
    let mut statuses = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        let (i, r, took) = t.await.unwrap();
        browsers[i].absorb(&r);
        statuses.push(r.status().as_u16());
        latencies.push(took);
    }
    (statuses, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn a_storm_of_a_thousand_requests_over_a_hundred_stale_sessions_costs_exactly_a_hundred_grants()
 {
    let s = setup(11, "10s", "inline").await;
    let base = s.gw.url.as_str().trim_end_matches('/').to_owned();
    let mut browsers = sign_in_many(&s.gw.url, 100).await;
    // Refreshed tokens live 20 s: fresh for 10 s after each storm.
    s.peer.set_access_token_ttl(20).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.peer.reset_stats().await;

    for round in 1..=2 {
        let (statuses, mut latencies) = storm(&base, &mut browsers).await;
        let stats = s.peer.stats().await;
        assert!(
            statuses.iter().all(|&st| st == 200),
            "round {round}: {statuses:?}"
        );
        assert_eq!(
            stats.refresh_grants,
            100 * round,
            "round {round}: {stats:?}"
        );
        assert_eq!(stats.refresh_errors("invalid_grant"), 0, "round {round}");
        latencies.sort();
        eprintln!(
            "storm round {round}: 1000 requests, grants per session {:.2}, p50 {:?}, p99 {:?}",
            (stats.refresh_grants / round) as f64 / 100.0,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        if round == 1 {
            // Wait until the refreshed tokens are stale again (10 s fresh).
            tokio::time::sleep(Duration::from_secs(11)).await;
        }
    }
}

/// The upstream's view of `path` and the gateway's own answer, as text.
async fn text(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_listen_serves_metrics_apart_and_leaves_the_path_to_the_upstream() {
    let s = Stack::start(3600, "2s", "inline", "").await;
    let base = s.base();
    let client = Browser::new().client;
    // Without metrics_listen, /metrics on server.listen is authgate's.
    let (status, body) = text(&client, &format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    assert!(!body.contains("\"path\""), "not the upstream's: {body}");
    assert!(s.gw.metrics_url.is_none());

    let reserved = reserve().await;
    let (upstream, _task) = echo_upstream().await;
    // The same provider (discovery only: nobody signs in here).
    let issuer = s.peer.issuer().as_str().trim_end_matches('/').to_owned();
    let toml = config_toml(&reserved.url, &issuer, "{db}", "", "inline").replace(
        "upstream = \"http://127.0.0.1:9\"\n",
        &format!(
            "upstream = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\n",
            upstream.as_str().trim_end_matches('/')
        ),
    );
    let gw = start(reserved, &toml).await;
    let base = gw.url.as_str().trim_end_matches('/');
    // On server.listen: /metrics is the upstream's path (a public route here),
    // /healthz and /readyz stay authgate's.
    let (status, body) = text(&client, &format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["path"], "/metrics");
    assert_eq!(
        text(&client, &format!("{base}/healthz")).await,
        (200, "ok".to_owned())
    );
    assert_eq!(text(&client, &format!("{base}/readyz")).await.0, 200);
    // On server.metrics_listen: /metrics, and nothing else.
    let metrics = gw.metrics_url.clone().unwrap();
    let (status, body) = text(&client, metrics.join("/metrics").unwrap().as_str()).await;
    assert_eq!(status, 200);
    assert!(body.contains("authgate_http_requests_total"), "{body}");
    for path in ["/auth/session", "/healthz", "/protected/x"] {
        let (status, _) = text(&client, metrics.join(path).unwrap().as_str()).await;
        assert_eq!(status, 404, "{path} on the metrics listener");
    }
}
