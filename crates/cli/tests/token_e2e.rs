//! `POST /auth/token` end to end, against the strict-rotation `oidc-provider`
//! peer: ten concurrent token requests for one user after expiry cost
//! exactly one grant (both session strategies; and with two gateway
//! instances on PostgreSQL and Redis), the offline form hands out the same
//! fresh token, Node's own `fetch` is a welcome caller, and every call is
//! counted per client in `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::client_secret::SecretHash;
use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, require_url};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use std::time::Duration;
use url::Url;

/// The app server's secret.
const NEXT_SECRET: &str = "Yq3m9xKfV2pL7sT0wR4nB8cJ6hD1gZ5eA-uNoPiQ_Mk";

fn authorization() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("next-server:{NEXT_SECRET}"))
    )
}

/// A `[[service_clients]]` entry for the app server, hashed as
/// `authgate secret --hash` would.
fn service_client_toml() -> String {
    let hash = SecretHash::new(NEXT_SECRET.as_bytes(), &mut rand::rngs::OsRng);
    format!(
        "\n[[service_clients]]\nid = \"next-server\"\nsecret_hash = \"{hash}\"\nallow = [\"token\", \"token:offline\"]\n"
    )
}

/// The peer (client `test`, redirecting to the first gateway) and gateways
/// on `reserved` sharing `store_url` and `cache_url`: tokens live 15 s and
/// count as stale 14 s early.
async fn stack(
    reserved: Vec<Reserved>,
    store_url: &str,
    cache_url: &str,
    session_extra: &str,
) -> (OidcProviderPeer, Vec<Gateway>) {
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{}auth/callback/op", reserved[0].url),
        )],
        access_token_ttl_secs: 15,
        ..Default::default()
    })
    .await;
    let mut gateways = Vec::new();
    for r in reserved {
        let toml = config_toml(
            &r.url,
            peer.issuer().as_str().trim_end_matches('/'),
            store_url,
            session_extra,
            "inline",
        )
        .replace("skew = \"2s\"", "skew = \"14s\"")
        .replace("url = \"memory://\"", &format!("url = \"{cache_url}\""))
            + &service_client_toml();
        gateways.push(start(r, &toml).await);
    }
    (peer, gateways)
}

/// Signs `login` in at the first gateway, then lets the sign-in's token go
/// stale while new tokens live 60 s.
async fn signed_in_then_stale(peer: &OidcProviderPeer, gw: &Gateway, login: &str) -> Browser {
    let (b, _) = sign_in_with_peer(&gw.url, login, "/").await;
    peer.set_access_token_ttl(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b
}

/// `POST {gw}/auth/token` as the app server: with the user's cookie, or
/// naming the user by id.
async fn token_request(gw: &Url, cookie: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(gw.join("/auth/token").unwrap())
        .header("authorization", authorization())
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Ten concurrent token requests spread over `gateways`, for the cookie's
/// user or by id: every one gets the same token.
async fn ten_concurrent(gateways: &[&Url], cookie: Option<&str>, body: &str) -> String {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let url = gateways[i % gateways.len()].clone();
        let (cookie, body) = (cookie.map(str::to_owned), body.to_owned());
        tasks.push(tokio::spawn(async move {
            token_request(&url, cookie.as_deref(), &body).await
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("refresh_token").is_none() && answer.get("id_token").is_none());
        tokens.push(answer["access_token"].as_str().unwrap().to_owned());
    }
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "one refresh, one token"
    );
    tokens.swap_remove(0)
}

async fn user_of(b: &mut Browser, gw: &Url) -> String {
    let session: serde_json::Value = b
        .get(gw.join("/auth/session").unwrap().as_str())
        .await
        .json()
        .await
        .unwrap();
    session["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ten_concurrent_token_requests_after_expiry_cost_one_grant_in_both_strategies() {
    for session_extra in ["", "strategy = \"database\""] {
        let (peer, gateways) =
            stack(vec![reserve().await], "{db}", "memory://", session_extra).await;
        let gw = &gateways[0];
        let mut b = signed_in_then_stale(&peer, gw, "dave").await;
        let cookie = b.cookie_header();
        let before = peer.stats().await;
        assert_eq!(before.refresh_grants, 0);

        let token = ten_concurrent(&[&gw.url], Some(&cookie), "{}").await;
        let stats = peer.stats().await;
        assert_eq!(stats.refresh_grants, 1, "{session_extra:?}: {stats:?}");
        assert_eq!(stats.refresh_errors("invalid_grant"), 0);

        // The job's form names the same user: the same fresh token, no grant.
        let user = user_of(&mut b, &gw.url).await;
        let by_id = serde_json::json!({"user_id": user, "provider": "op"}).to_string();
        assert_eq!(ten_concurrent(&[&gw.url], None, &by_id).await, token);
        assert_eq!(peer.stats().await.refresh_grants, 1);

        // Node's fetch (undici) sends `Sec-Fetch-Mode: cors` and is still a server.
        let answer = node_fetch(&gw.url, &cookie).await;
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["body"]["access_token"], token.as_str());
        assert_eq!(answer["sec_fetch_mode_sent"], true, "{answer}");

        let metrics = b
            .get(gw.url.join("/metrics").unwrap().as_str())
            .await
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("authgate_token_requests_total{")
                    && l.contains("client=\"next-server\"")
                    && l.contains("outcome=\"ok\"")),
            "{metrics}"
        );
    }
}

/// Calls the token endpoint with Node's global `fetch`, the way a Next.js
/// server does, and reports the answer and whether Node sent
/// `Sec-Fetch-Mode` (echoed by a one-off Node server).
async fn node_fetch(gw: &Url, cookie: &str) -> serde_json::Value {
    let script = r#"
        import http from 'node:http';
        const echo = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
        await new Promise((ok) => echo.listen(0, '127.0.0.1', ok));
        const seen = await (await fetch(`http://127.0.0.1:${echo.address().port}/`)).json();
        echo.close();
        const r = await fetch(process.env.TOKEN_URL, {
            method: 'POST',
            headers: { authorization: process.env.AUTHORIZATION, cookie: process.env.COOKIE, 'content-type': 'application/json' },
            body: '{}',
        });
        console.log(JSON.stringify({ status: r.status, body: await r.json(), sec_fetch_mode_sent: 'sec-fetch-mode' in seen }));
    "#;
    let out = tokio::process::Command::new("node")
        .args(["--input-type=module", "-e", script])
        .env("TOKEN_URL", gw.join("/auth/token").unwrap().as_str())
        .env("AUTHORIZATION", authorization())
        .env("COOKIE", cookie)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A PostgreSQL schema of its own for one test, dropped at the end.
struct PgSchema {
    base_url: String,
    name: String,
}

impl PgSchema {
    async fn create(base_url: &str) -> Self {
        use sqlx::Connection as _;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("authgate_token_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(base_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            base_url: base_url.to_owned(),
            name,
        }
    }

    fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options%5Bsearch_path%5D={}",
            self.base_url, self.name
        )
    }

    async fn drop_now(self) {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.base_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn two_instances_on_postgres_and_redis_hand_ten_token_requests_one_grant() {
    let (Some(pg), Some(redis)) = (
        require_url("AUTHGATE_TEST_POSTGRES_URL"),
        require_url("AUTHGATE_TEST_REDIS_URL"),
    ) else {
        return;
    };
    let schema = PgSchema::create(&pg).await;
    let (peer, gateways) = stack(
        vec![reserve().await, reserve().await],
        &schema.url(),
        &redis,
        "",
    )
    .await;
    let b = signed_in_then_stale(&peer, &gateways[0], "erin").await;
    let urls: Vec<&Url> = gateways.iter().map(|g| &g.url).collect();
    ten_concurrent(&urls, Some(&b.cookie_header()), "{}").await;
    let stats = peer.stats().await;
    assert_eq!(stats.refresh_grants, 1, "{stats:?}");
    assert_eq!(stats.refresh_errors("invalid_grant"), 0);
    drop(gateways);
    schema.drop_now().await;
}
