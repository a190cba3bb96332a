//! authgate beside an Auth.js app: sessions written by the real `@auth/core`
//! are accepted, and authgate's decode with `@auth/core`. Plus the upstream
//! failure pages through the whole gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions};
use common::*;
use serde_json::{Value, json};

const SECRET: &str = "test-secret-at-least-32-chars-long!!";

#[tokio::test]
async fn a_session_written_by_authjs_is_accepted_and_ours_decodes_in_authjs() {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
        ..Default::default()
    })
    .await;
    let (upstream, _task) = echo_upstream().await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace(
        "http://127.0.0.1:9",
        upstream.as_str().trim_end_matches('/'),
    );
    let gw = start(reserved, &toml).await;
    let base = gw.url.as_str().trim_end_matches('/').to_owned();

    // An Auth.js app's session cookie, made by @auth/core itself.
    let made = authjs_batch(json!([{
        "op": "encode", "lib": "authjs", "secret": SECRET, "salt": "authjs.session-token",
        "maxAge": 3600,
        "token": {"sub": "next-user-7", "name": "Ada Next", "email": "ada@next.example", "picture": "https://img.example/a.png"}
    }]))
    .await;
    let cookie = made[0]["token"].as_str().unwrap().to_owned();
    let mut b = Browser::new();
    b.cookies.insert("authjs.session-token".into(), cookie);
    let session: Value = b
        .get(&format!("{base}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["id"], "next-user-7");
    assert_eq!(session["user"]["email"], "ada@next.example");
    assert_eq!(session["user"]["image"], "https://img.example/a.png");
    let r = b.get(&format!("{base}/protected/from-next")).await;
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view["headers"]["x-auth-request-email"][0],
        "ada@next.example"
    );

    // A session authgate wrote after a real sign-in decodes in @auth/core.
    let (b, _) = sign_in_with_peer(&gw.url, "henry", "/").await;
    let ours = b.cookies.get("authjs.session-token").unwrap().clone();
    let decoded = authjs_batch(json!([{
        "op": "decode", "lib": "authjs", "secret": SECRET, "salt": "authjs.session-token", "token": ours
    }]))
    .await;
    assert_eq!(decoded[0]["ok"], true, "{decoded:?}");
    let claims = &decoded[0]["claims"];
    assert_eq!(claims["email"], "henry@example.test");
    assert_eq!(claims["name"], "Henry");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["authgate"]["ate"].as_i64().is_some());
    assert!(
        !claims.to_string().contains("refresh"),
        "no token material in the cookie: {claims}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502_and_a_slow_one_504() {
    let reserved = reserve().await;
    let peer = OidcProviderPeer::start(PeerOptions::default()).await;
    // The default config's upstream, 127.0.0.1:9, has nobody listening.
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    );
    let gw = start(reserved, &toml).await;
    let mut b = Browser::new();
    let r = b.get(&format!("{}public/x", gw.url)).await;
    assert_eq!(r.status(), 502);

    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}", slow.local_addr().unwrap());
    let slow_app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        "late"
    });
    let _slow_task = tokio::spawn(async move {
        let _ = axum::serve(slow, slow_app).await;
    });
    let reserved = reserve().await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace(
        "http://127.0.0.1:9\"",
        &format!("{slow_url}\"\nupstream_timeout = \"1s\""),
    );
    let gw = start(reserved, &toml).await;
    let started = std::time::Instant::now();
    let r = b
        .client
        .get(format!("{}public/x", gw.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn every_request_id_reaches_the_upstream_and_comes_back_on_the_response() {
    let reserved = reserve().await;
    let peer = OidcProviderPeer::start(PeerOptions::default()).await;
    let (upstream, _task) = echo_upstream().await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    )
    .replace(
        "http://127.0.0.1:9",
        upstream.as_str().trim_end_matches('/'),
    );
    let gw = start(reserved, &toml).await;
    let b = Browser::new();
    // An untrusted client's own id is replaced.
    let r = b
        .client
        .get(format!("{}public/id", gw.url))
        .header("x-request-id", "client-chosen")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "client-chosen");
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["headers"]["x-request-id"], json!([id]));
}
