//! `POST /auth/token` through real HTTP: service-client credentials (Basic,
//! and Bearer with `X-Service-Client`), browsers refused, permissions, each
//! error code, the rate limit, the audit line, and no refresh token in any
//! answer or log line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::client_secret::SecretHash;
use authgate_core::token::TokenSet;
use authgate_devidp::{DevIdp, DevIdpConfig};
use authgate_http::{RefreshMode, ServiceClient, ServicePermission, SessionStrategy};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{
    Browser, Harness, Options, PROVIDER, SESSION_COOKIE, captured_logs, json, revoke_at_provider,
    sign_in, start, stored_tokens, user_id,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The app server's secret (`token`).
const NEXT_SECRET: &str = "Yq3m9xKfV2pL7sT0wR4nB8cJ6hD1gZ5eA-uNoPiQ_Mk";
/// The nightly job's secret (`token:offline`).
const JOB_SECRET: &str = "Xf7Lk2Qw9Rt4Yp1Zs8Vb3Nm6Cj0Hd5Ga_EuTiOoPl-K";

fn client(id: &str, secret: &str, allow: Vec<ServicePermission>, rate: &str) -> ServiceClient {
    ServiceClient {
        id: id.to_owned(),
        secret_hash: SecretHash::new(secret.as_bytes(), &mut rand::rngs::OsRng),
        allow,
        rate_limit: rate.parse().unwrap(),
    }
}

fn with_clients(options: Options) -> Options {
    Options {
        service_clients: vec![
            client(
                "next-server",
                NEXT_SECRET,
                vec![ServicePermission::Token],
                "600/min",
            ),
            client(
                "nightly-job",
                JOB_SECRET,
                vec![ServicePermission::TokenOffline],
                "600/min",
            ),
            client(
                "limited",
                NEXT_SECRET,
                vec![ServicePermission::Token],
                "2/min",
            ),
        ],
        ..options
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// `POST /auth/token` with `headers` and `body`, as a server sends it.
async fn post_token(h: &Harness, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .post(h.url.join("/auth/token").unwrap())
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The app server's call for the user of browser `b`.
async fn as_app_server(h: &Harness, b: &Browser) -> reqwest::Response {
    let auth = basic("next-server", NEXT_SECRET);
    let cookie = b.cookie_header();
    post_token(h, &[("authorization", &auth), ("cookie", &cookie)], "{}").await
}

/// The nightly job's call for `user`.
async fn as_job(h: &Harness, user: &str, provider: &str) -> reqwest::Response {
    let auth = basic("nightly-job", JOB_SECRET);
    let body = json!({"user_id": user, "provider": provider}).to_string();
    post_token(h, &[("authorization", &auth)], &body).await
}

async fn error_of(r: reqwest::Response) -> String {
    json(r).await["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_app_server_gets_the_users_fresh_token_with_basic_or_bearer_in_both_strategies() {
    for strategy in [SessionStrategy::Jwt, SessionStrategy::Database] {
        let h = start(with_clients(Options {
            strategy,
            ..Options::default()
        }))
        .await;
        let mut b = sign_in(&h, "ann").await;
        let user = user_id(&mut b).await;
        let stored = stored_tokens(&h, &user).await.unwrap();
        let grants = h.idp.stats().refresh_grants;
        let cookie = b.cookie_header();
        let basic = basic("next-server", NEXT_SECRET);
        let bearer = format!("Bearer {NEXT_SECRET}");
        let forms: [Vec<(&str, &str)>; 2] = [
            vec![("authorization", &basic), ("cookie", &cookie)],
            vec![
                ("authorization", &bearer),
                ("x-service-client", "next-server"),
                ("cookie", &cookie),
            ],
        ];
        for headers in &forms {
            for body in ["{}", ""] {
                let r = post_token(&h, headers, body).await;
                assert_eq!(r.status(), 200, "{strategy:?} {headers:?}");
                assert_eq!(r.headers()["cache-control"], "no-store");
                assert!(r.headers().get("set-cookie").is_none());
                let answer = json(r).await;
                assert_eq!(answer["access_token"], stored.access_token.expose());
                assert_eq!(
                    answer["token_type"],
                    stored.token_type.as_deref().unwrap_or("Bearer")
                );
                assert_eq!(
                    answer["expires_at"],
                    stored.expires_at.unwrap().as_secs(),
                    "{answer}"
                );
                assert_eq!(answer["scope"], json!(stored.scope));
                assert_eq!(answer.as_object().unwrap().len(), 4, "{answer}");
            }
        }
        assert_eq!(
            h.idp.stats().refresh_grants,
            grants,
            "a fresh token is served from the cache, not refreshed"
        );
    }
}

#[tokio::test]
async fn a_stale_token_is_refreshed_once_through_the_refresh_service_in_any_mode() {
    for (strategy, mode) in [
        (SessionStrategy::Jwt, RefreshMode::Inline),
        (SessionStrategy::Database, RefreshMode::Inline),
        (SessionStrategy::Jwt, RefreshMode::Lazy),
    ] {
        let h = start(with_clients(Options {
            strategy,
            refresh_mode: mode,
            ..Options::default().always_stale()
        }))
        .await;
        let mut b = sign_in(&h, "ann").await;
        let user = user_id(&mut b).await;
        let before = stored_tokens(&h, &user).await.unwrap();
        let grants = h.idp.stats().refresh_grants;
        let r = as_app_server(&h, &b).await;
        assert_eq!(r.status(), 200, "{strategy:?} {mode:?}");
        let answer = json(r).await;
        assert_eq!(
            h.idp.stats().refresh_grants,
            grants + 1,
            "{strategy:?} {mode:?}"
        );
        let after = stored_tokens(&h, &user).await.unwrap();
        assert_ne!(after.access_token, before.access_token);
        assert_eq!(answer["access_token"], after.access_token.expose());
    }
}

#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_get_the_same_401() {
    let h = start(with_clients(Options::default())).await;
    let b = sign_in(&h, "ann").await;
    let cookie = b.cookie_header();
    let mut answers = Vec::new();
    for auth in [
        basic("next-server", "a-wrong-secret-of-the-usual-length-0123456"),
        basic("next-server", JOB_SECRET),
        basic("someone-else", NEXT_SECRET),
        format!("Bearer {NEXT_SECRET}"),
    ] {
        let r = post_token(&h, &[("authorization", &auth), ("cookie", &cookie)], "{}").await;
        assert_eq!(r.status(), 401, "{auth}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        answers.push((challenge, json(r).await));
    }
    assert_eq!(answers[0].1["error"], "invalid_client");
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "indistinguishable: {answers:?}"
    );
}

#[tokio::test]
async fn a_valid_session_cookie_without_client_credentials_gets_401() {
    let h = start(with_clients(Options::default())).await;
    let b = sign_in(&h, "ann").await;
    let cookie = b.cookie_header();
    for headers in [
        vec![("cookie", cookie.as_str())],
        vec![
            ("cookie", cookie.as_str()),
            ("x-service-client", "next-server"),
        ],
    ] {
        let r = post_token(&h, &headers, "{}").await;
        assert_eq!(r.status(), 401);
        assert_eq!(error_of(r).await, "invalid_client");
    }
    // The browser itself, with its cookie, gets nothing either.
    let mut browser = b;
    let r = browser.post_form("/auth/token", &[], &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_of(r).await, "invalid_client");
}

#[tokio::test]
async fn browser_looking_requests_are_refused_even_with_valid_credentials() {
    let h = start(with_clients(Options::default())).await;
    let b = sign_in(&h, "ann").await;
    let auth = basic("next-server", NEXT_SECRET);
    let cookie = b.cookie_header();
    let origin = h.url.as_str().trim_end_matches('/').to_owned();
    for mark in [
        ("origin", origin.as_str()),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-dest", "empty"),
        ("sec-fetch-user", "?1"),
        ("sec-ch-ua-mobile", "?0"),
    ] {
        let r = post_token(
            &h,
            &[("authorization", &auth), ("cookie", &cookie), mark],
            "{}",
        )
        .await;
        assert_eq!(r.status(), 403, "{mark:?}");
        let answer = json(r).await;
        assert_eq!(answer["error"], "access_denied");
        assert!(answer.get("access_token").is_none());
    }
    // Node's fetch sends `Sec-Fetch-Mode: cors` on every request: not a browser.
    let r = post_token(
        &h,
        &[
            ("authorization", &auth),
            ("cookie", &cookie),
            ("sec-fetch-mode", "cors"),
        ],
        "{}",
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn offline_access_names_the_user_by_id_and_needs_its_own_permission() {
    let h = start(with_clients(Options::default())).await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    let stored = stored_tokens(&h, &user).await.unwrap();

    let r = as_job(&h, &user, PROVIDER).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(json(r).await["access_token"], stored.access_token.expose());

    // The app server may act for the cookie's user only.
    let auth = basic("next-server", NEXT_SECRET);
    let by_id = json!({"user_id": user, "provider": PROVIDER}).to_string();
    let r = post_token(&h, &[("authorization", &auth)], &by_id).await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_of(r).await, "access_denied");
    // The job may act by id only.
    let job = basic("nightly-job", JOB_SECRET);
    let cookie = b.cookie_header();
    let r = post_token(&h, &[("authorization", &job), ("cookie", &cookie)], "{}").await;
    assert_eq!(r.status(), 403);
    assert_eq!(error_of(r).await, "access_denied");

    let r = as_job(&h, "no-such-user", PROVIDER).await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_of(r).await, "AccountNotFound");
    let r = as_job(&h, &user, "google").await;
    assert_eq!(r.status(), 400);
    let answer = json(r).await;
    assert_eq!(answer["error"], "invalid_request");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("\"google\""),
        "{answer}"
    );
    // Naming the user twice is ambiguous.
    let r = post_token(&h, &[("authorization", &job), ("cookie", &cookie)], &by_id).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_of(r).await, "invalid_request");
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_clear_error() {
    let h = start(with_clients(Options::default())).await;
    let auth = basic("nightly-job", JOB_SECRET);
    let long = format!(
        "{{\"user_id\": \"{}\", \"provider\": \"dev\"}}",
        "x".repeat(5000)
    );
    let cases = [
        ("not json", "expected"),
        ("[]", "invalid type: sequence, expected a map"),
        (
            r#"["ann", "dev"]"#,
            "invalid type: sequence, expected a map",
        ),
        (r#"{"user": "ann"}"#, "unknown field `user`"),
        (
            r#"{"user_id": "ann", "provider": "dev", "scope": "x"}"#,
            "unknown field `scope`",
        ),
        (r#"{"user_id": 5, "provider": "dev"}"#, "invalid type"),
        (r#"{"user_id": "ann"}"#, "go together"),
        (r#"{"user_id": "", "provider": "dev"}"#, "1 to 255 bytes"),
        (
            r#"{"user_id": "a\nb", "provider": "dev"}"#,
            "control characters",
        ),
        (long.as_str(), "at most 4096 bytes"),
    ];
    for (body, hint) in cases {
        let r = post_token(&h, &[("authorization", &auth)], body).await;
        assert_eq!(r.status(), 400, "{body:.60}");
        let answer = json(r).await;
        assert_eq!(answer["error"], "invalid_request", "{body:.60}");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(hint), "{body:.60}: {description}");
    }
}

#[tokio::test]
async fn without_a_session_the_app_server_gets_401_session_required() {
    let h = start(with_clients(Options::default())).await;
    let auth = basic("next-server", NEXT_SECRET);
    let stale = format!("{SESSION_COOKIE}=not-a-session");
    for headers in [
        vec![("authorization", auth.as_str())],
        vec![("authorization", auth.as_str()), ("cookie", stale.as_str())],
    ] {
        let r = post_token(&h, &headers, "{}").await;
        assert_eq!(r.status(), 401);
        assert_eq!(error_of(r).await, "SessionRequired");
    }
}

/// Revokes `token` at the development provider, as the user would at the
/// provider's account page.
#[tokio::test]
async fn a_grant_revoked_at_the_provider_is_401_refresh_token_error() {
    let h = start(with_clients(Options::default().always_stale())).await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    let stored = stored_tokens(&h, &user).await.unwrap();
    revoke_at_provider(&h, stored.refresh_token.as_ref().unwrap().expose()).await;

    let r = as_app_server(&h, &b).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_of(r).await, "RefreshTokenError");
    assert!(stored_tokens(&h, &user).await.is_none(), "the grant ended");
    let r = as_job(&h, &user, PROVIDER).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_of(r).await, "RefreshTokenError");
}

#[tokio::test]
async fn an_unreachable_provider_is_503_with_retry_after_and_the_grant_survives() {
    let mut h = start(with_clients(Options::default().always_stale())).await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    let before = stored_tokens(&h, &user).await.unwrap();
    // Take the provider away: the gateway still points at its address.
    let elsewhere = DevIdp::bind(([127, 0, 0, 1], 0).into(), DevIdpConfig::default())
        .await
        .unwrap();
    let gone = std::mem::replace(&mut h.idp, Arc::new(elsewhere));
    Arc::try_unwrap(gone).ok().unwrap().shutdown().await;

    for r in [
        as_app_server(&h, &b).await,
        as_job(&h, &user, PROVIDER).await,
    ] {
        assert_eq!(r.status(), 503);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1);
        assert_eq!(error_of(r).await, "RefreshUnavailable");
    }
    assert_eq!(stored_tokens(&h, &user).await, Some(before), "nothing lost");
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after() {
    let h = start(with_clients(Options {
        strategy: SessionStrategy::Database,
        broken_store: true,
        ..Options::default()
    }))
    .await;
    let auth = basic("next-server", NEXT_SECRET);
    let cookie = format!("{SESSION_COOKIE}=opaque-session-token");
    let by_cookie = post_token(&h, &[("authorization", &auth), ("cookie", &cookie)], "{}").await;
    for r in [by_cookie, as_job(&h, "some-user", PROVIDER).await] {
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers()["retry-after"],
            authgate_http::error::STORE_RETRY_AFTER
                .as_secs()
                .to_string()
                .as_str()
        );
        assert_eq!(error_of(r).await, "StoreUnavailable");
    }
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let h = start(with_clients(Options::default())).await;
    let b = sign_in(&h, "ann").await;
    let auth = basic("limited", NEXT_SECRET);
    let cookie = b.cookie_header();
    let headers = [
        ("authorization", auth.as_str()),
        ("cookie", cookie.as_str()),
    ];
    for _ in 0..2 {
        assert_eq!(post_token(&h, &headers, "{}").await.status(), 200);
    }
    let r = post_token(&h, &headers, "{}").await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=30).contains(&retry),
        "2/min: one call every 30 s, got {retry}"
    );
    assert_eq!(error_of(r).await, "rate_limited");
    // Each client has its own budget.
    assert_eq!(as_app_server(&h, &b).await.status(), 200);
}

#[tokio::test]
async fn no_refresh_token_in_any_answer_or_log_line_and_one_audit_line_per_call() {
    let logs = captured_logs();
    let h = start(with_clients(Options::default().always_stale())).await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    let mut refresh_tokens = Vec::new();
    let mut answers = Vec::new();
    let mut remember = |stored: Option<TokenSet>| {
        if let Some(rt) = stored.and_then(|t| t.refresh_token) {
            refresh_tokens.push(rt.expose().to_owned());
        }
    };
    remember(stored_tokens(&h, &user).await);
    let auth = basic("next-server", NEXT_SECRET);
    let cookie = b.cookie_header();
    let origin = h.url.as_str().trim_end_matches('/').to_owned();
    let wrong_secret = basic("next-server", "wrong-wrong-wrong-wrong-wrong-wrong-wrong");
    // (client, outcome, answer)
    let calls = vec![
        ("next-server", "ok", as_app_server(&h, &b).await),
        ("nightly-job", "ok", as_job(&h, &user, PROVIDER).await),
        (
            "next-server",
            "invalid_client",
            post_token(
                &h,
                &[("authorization", &wrong_secret), ("cookie", &cookie)],
                "{}",
            )
            .await,
        ),
        (
            "next-server",
            "browser_refused",
            post_token(
                &h,
                &[
                    ("authorization", &auth),
                    ("cookie", &cookie),
                    ("origin", &origin),
                ],
                "{}",
            )
            .await,
        ),
        (
            "nightly-job",
            "account_not_found",
            as_job(&h, "nobody", PROVIDER).await,
        ),
    ];
    remember(stored_tokens(&h, &user).await);
    assert_eq!(refresh_tokens.len(), 2);
    assert_ne!(
        refresh_tokens[0], refresh_tokens[1],
        "two refreshes rotated it"
    );
    for (client, outcome, r) in calls {
        let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        let headers = format!("{:?}", r.headers());
        let body = r.text().await.unwrap();
        answers.push((client, outcome, request_id, format!("{headers}\n{body}")));
    }
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    for rt in &refresh_tokens {
        for (.., answer) in &answers {
            assert!(
                !answer.contains(rt.as_str()),
                "an answer leaks the refresh token"
            );
        }
        assert!(
            !text.contains(rt.as_str()),
            "a log line leaks the refresh token"
        );
    }
    let audit: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "authgate::audit")
        .collect();
    for (client, outcome, request_id, _) in &answers {
        let lines: Vec<&Value> = audit
            .iter()
            .filter(|l| l["fields"]["request_id"] == request_id.as_str())
            .collect();
        assert_eq!(lines.len(), 1, "one audit line for {request_id}");
        let fields = &lines[0]["fields"];
        assert_eq!(fields["message"], "token_endpoint");
        assert_eq!(fields["outcome"], *outcome, "{fields}");
        assert_eq!(fields["client"], *client, "{fields}");
        if *outcome == "ok" {
            assert_eq!(fields["user"], user.as_str());
            assert_eq!(fields["provider"], PROVIDER);
        }
    }
    let wrong = audit
        .iter()
        .find(|l| l["fields"]["outcome"] == "invalid_client")
        .unwrap();
    assert_eq!(wrong["fields"]["reason"], "wrong_secret");
}
