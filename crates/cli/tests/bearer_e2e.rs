//! Bearer tokens for API clients through `authgate serve`'s configuration:
//! `[[providers]] bearer = { audiences = [...], algorithms = [...] }` and a
//! route's `bearer = true`, with JWT access tokens minted by the development
//! provider, an echo upstream behind the gateway, and `/auth/verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use common::*;
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};
use url::Url;

const AUDIENCE: &str = "https://api.example.test";

fn toml(public: &Url, upstream: &Url, issuer: &str, algorithms: &str) -> String {
    format!(
        r#"
[server]
public_url = "{public}"
upstream = "{upstream}"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
[store]
url = "{{db}}"
[[providers]]
id = "op"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
bearer = {{ audiences = ["{AUDIENCE}"], algorithms = [{algorithms}] }}
[[routes]]
path = "/api/deploy/**"
access = "api"
allow_groups = ["deployers"]
[[routes]]
path = "/api/**"
access = "api"
[[routes]]
path = "/hooks/**"
access = "protected"
bearer = true
[[routes]]
path = "/**"
access = "protected"
"#,
        public = public.as_str().trim_end_matches('/'),
        upstream = upstream.as_str().trim_end_matches('/'),
    )
}

async fn stack(algorithms: &str) -> (Gateway, DevIdp, tokio::task::JoinHandle<()>) {
    let idp = DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        DevIdpConfig::default()
            .with_client(DevClient::new("test", "test-secret").allow_any_loopback_redirect()),
    )
    .await
    .unwrap();
    let (upstream, task) = echo_upstream().await;
    let reserved = reserve().await;
    let config = toml(&reserved.url, &upstream, idp.issuer_str(), algorithms);
    (start(reserved, &config).await, idp, task)
}

fn token(idp: &DevIdp, groups: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    idp.mint_access_jwt(&json!({
        "iss": idp.issuer_str(),
        "sub": "ci-runner",
        "aud": AUDIENCE,
        "exp": now + 120,
        "iat": now,
        "groups": groups,
    }))
    .unwrap()
}

async fn get(gw: &Gateway, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(gw.url.join(path).unwrap())
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn configured_bearer_tokens_pass_api_and_opted_in_routes_with_their_groups() {
    let (gw, idp, _upstream) = stack("").await;
    let deployer = token(&idp, &["deployers"]);

    let r = get(&gw, "/api/deploy/now", &deployer).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-auth-request-user"][0], "ci-runner");
    assert_eq!(seen["headers"]["x-auth-request-groups"][0], "deployers");
    assert!(seen["headers"].get("x-auth-request-email").is_none());
    assert_eq!(
        seen["headers"]["authorization"][0],
        format!("Bearer {deployer}")
    );

    let other = token(&idp, &["readers"]);
    assert_eq!(get(&gw, "/api/deploy/now", &other).await.status(), 403);
    assert_eq!(get(&gw, "/api/read", &other).await.status(), 200);
    assert_eq!(get(&gw, "/hooks/build", &other).await.status(), 200);
    // Not opted in: the protected page still sends to sign-in.
    assert_eq!(get(&gw, "/page", &other).await.status(), 302);

    let r = get(&gw, "/api/read", "a.b.c").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    // No user or session row was created by any of it.
    assert!(
        gw.store
            .list_accounts_for_user(&authgate_store::UserId::new("ci-runner"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_configured_algorithm_list_narrows_what_verifies() {
    // The development provider signs with ES256; only RS256 is configured.
    let (gw, idp, _upstream) = stack("\"RS256\"").await;
    let r = get(&gw, "/api/read", &token(&idp, &[])).await;
    assert_eq!(r.status(), 401);
}
