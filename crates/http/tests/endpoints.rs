//! The JSON endpoints and sign-out, through real HTTP: `GET /session`,
//! `GET /csrf`, `GET /providers`, `POST /refresh`, `POST /signout`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::time::{Clock as _, SystemClock};
use authgate_http::{RefreshMode, SessionStrategy};
use common::{Browser, Options, SESSION_COOKIE, json, location, sign_in, start};

#[tokio::test]
async fn session_is_null_without_a_cookie_and_the_user_after_sign_in() {
    let h = start(Options::default()).await;
    let mut anonymous = Browser::new(&h);
    let r = anonymous.get("/auth/session").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(json(r).await, serde_json::Value::Null);

    let mut b = sign_in(&h, "ann").await;
    let body = json(b.get("/auth/session").await).await;
    assert_eq!(body["provider"], "dev");
    assert!(body["user"]["id"].is_string());
    assert!(body["accessTokenExpiresAt"].as_i64().unwrap() > SystemClock.now().as_secs());
    assert!(body["error"].is_null());
}

#[tokio::test]
async fn session_refreshes_a_stale_token_once_per_request_in_both_strategies() {
    for strategy in [SessionStrategy::Jwt, SessionStrategy::Database] {
        let h = start(Options {
            strategy,
            ..Options::default().always_stale()
        })
        .await;
        let mut b = sign_in(&h, "ann").await;
        let before = h.idp.stats().refresh_grants;
        let r = b.get("/auth/session").await;
        assert_eq!(r.status(), 200);
        assert!(json(r).await["error"].is_null());
        assert_eq!(h.idp.stats().refresh_grants, before + 1, "{strategy:?}");
    }
}

#[tokio::test]
async fn lazy_mode_session_reports_without_refreshing_and_post_refresh_refreshes() {
    let h = start(Options {
        refresh_mode: RefreshMode::Lazy,
        ..Options::default().always_stale()
    })
    .await;
    let mut b = sign_in(&h, "ann").await;
    let grants = h.idp.stats().refresh_grants;
    assert_eq!(b.get("/auth/session").await.status(), 200);
    assert_eq!(h.idp.stats().refresh_grants, grants, "lazy: no refresh");

    // Cross-site without a token: refused.
    let r = b
        .post_form("/auth/refresh", &[], &[("origin", "http://evil.example")])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["error"], "MissingCSRF");

    // Same origin: refreshed, and the cookie carries the new expiry.
    let origin = h.url.as_str().trim_end_matches('/').to_owned();
    let r = b
        .post_form("/auth/refresh", &[], &[("origin", origin.as_str())])
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with(SESSION_COOKIE))
    );
    assert!(json(r).await["accessTokenExpiresAt"].is_i64());
    assert_eq!(h.idp.stats().refresh_grants, grants + 1);
}

#[tokio::test]
async fn refresh_without_a_session_is_401_session_required() {
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let token = b.csrf().await;
    let r = b
        .post_form("/auth/refresh", &[("csrfToken", &token)], &[])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "SessionRequired");
}

#[tokio::test]
async fn csrf_mints_a_token_once_and_keeps_it_while_the_cookie_lives() {
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let r = b.get("/auth/csrf").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("set-cookie"));
    b.absorb(&r);
    let first = json(r).await["csrfToken"].as_str().unwrap().to_owned();
    let r = b.get("/auth/csrf").await;
    assert!(!r.headers().contains_key("set-cookie"), "cookie reused");
    assert_eq!(json(r).await["csrfToken"], first.as_str());
}

#[tokio::test]
async fn providers_lists_each_provider_with_its_urls() {
    let h = start(Options::default()).await;
    let body = json(Browser::new(&h).get("/auth/providers").await).await;
    let dev = &body["dev"];
    assert_eq!(dev["id"], "dev");
    assert_eq!(dev["type"], "oidc");
    assert_eq!(
        dev["callbackUrl"],
        h.url.join("/auth/callback/dev").unwrap().as_str()
    );
    assert_eq!(
        dev["signinUrl"],
        h.url.join("/auth/signin/dev").unwrap().as_str()
    );
}

#[tokio::test]
async fn signout_needs_csrf_then_revokes_the_grant_and_expires_the_cookies() {
    for strategy in [SessionStrategy::Jwt, SessionStrategy::Database] {
        let h = start(Options {
            strategy,
            ..Options::default()
        })
        .await;
        let mut b = sign_in(&h, "ann").await;
        let r = b.post_form("/auth/signout", &[], &[]).await;
        assert_eq!(r.status(), 403, "{strategy:?}");
        assert!(b.cookies.contains_key(SESSION_COOKIE));

        let token = b.csrf().await;
        let revocations = h.idp.stats().revocations;
        let r = b
            .post_form(
                "/auth/signout",
                &[("csrfToken", &token), ("callbackUrl", "/bye")],
                &[],
            )
            .await;
        assert_eq!(r.status(), 302);
        assert_eq!(location(&r), "/bye");
        assert!(!b.cookies.contains_key(SESSION_COOKIE), "{strategy:?}");
        assert_eq!(h.idp.stats().revocations, revocations + 1);
        assert_eq!(
            json(b.get("/auth/session").await).await,
            serde_json::Value::Null
        );
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_is_503_with_the_store_retry_policy() {
    let h = start(Options {
        strategy: SessionStrategy::Database,
        broken_store: true,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&h);
    b.cookies
        .insert(SESSION_COOKIE.to_owned(), "opaque-session-token".to_owned());
    let r = b.get("/auth/session").await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers()["retry-after"],
        authgate_http::error::STORE_RETRY_AFTER
            .as_secs()
            .to_string()
            .as_str()
    );
    assert_eq!(json(r).await["error"], "StoreUnavailable");
}
