//! Sign-out that copies of the cookie do not survive (JWT strategy): every
//! sign-in has its own session record, the cookie carries its id, and a
//! revoked record refuses every copy — at the next store check by default,
//! on every request with `revocation_check = Request`. Signing in again
//! creates a new record and never revives an older copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::cookie::{CookieFormat, SessionCodec};
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_http::{RevocationCheck, SessionStrategy};
use authgate_store::UserId;
use common::{
    Browser, Harness, Options, SECRET, SESSION_COOKIE, json, location, sign_in, sign_in_as, start,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

async fn sign_out(b: &mut Browser) {
    let token = b.csrf().await;
    let r = b
        .post_form("/auth/signout", &[("csrfToken", &token)], &[])
        .await;
    assert_eq!(r.status(), 302);
    assert!(!b.cookies.contains_key(SESSION_COOKIE));
}

/// Whether `r` expires the session cookie.
fn expires_session_cookie(r: &reqwest::Response) -> bool {
    r.headers().get_all("set-cookie").iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with(&format!("{SESSION_COOKIE}=")) && v.contains("Max-Age=0")
    })
}

/// The `sid` inside a JWT session cookie.
fn sid_of(b: &Browser) -> String {
    let claims = codec()
        .decode(&b.cookies[SESSION_COOKIE], UnixTime::from_secs(now_secs()))
        .unwrap();
    claims.extra["authgate"]["sid"].as_str().unwrap().to_owned()
}

fn codec() -> SessionCodec {
    SessionCodec::new(CookieFormat::AuthJs, &[Secret::new(SECRET)], false).unwrap()
}

fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// A browser holding `cookies` (a copy of another browser's jar).
fn holding(h: &Harness, cookies: &BTreeMap<String, String>) -> Browser {
    let mut b = Browser::new(h);
    b.cookies = cookies.clone();
    b
}

#[tokio::test]
async fn a_signed_out_copy_is_refused_at_the_next_store_check_and_signing_in_again_does_not_revive_it()
 {
    // Tokens are stale as soon as they are issued: every protected request
    // consults the store (a refresh), which is where the record is checked.
    let h = start(Options {
        upstream: true,
        ..Options::default().always_stale()
    })
    .await;
    let mut b = sign_in(&h, "ada").await;
    let user = json(b.get("/auth/session").await).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_sid = sid_of(&b);
    let stolen = b.cookies.clone();
    assert_eq!(
        holding(&h, &stolen).get("/protected/page").await.status(),
        200
    );

    sign_out(&mut b).await;
    let records = h
        .store
        .list_user_sessions(&UserId::new(&user))
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].id.as_str(), first_sid);
    assert!(
        records[0].revoked_at.is_some(),
        "sign-out revokes the record"
    );

    let r = holding(&h, &stolen).get("/protected/page").await;
    assert_eq!(r.status(), 302, "a signed-out copy passed");
    assert!(location(&r).starts_with("/auth/signin?callbackUrl="));
    assert!(!location(&r).contains("error="), "signed out, not an error");
    assert!(expires_session_cookie(&r), "the copy's cookie is expired");

    // The user signs in again: a new record, and the old copy stays out
    // wherever it is presented.
    sign_in_as(&h, &mut b, "ada").await;
    assert_ne!(sid_of(&b), first_sid, "a new sign-in has a new session id");
    assert_eq!(b.get("/protected/page").await.status(), 200);
    let r = holding(&h, &stolen).get("/protected/page").await;
    assert_eq!(r.status(), 302, "signing in again revived an old copy");
    let r = holding(&h, &stolen).get("/api/data").await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "SessionRequired");
    let r = holding(&h, &stolen).get("/auth/session").await;
    assert!(expires_session_cookie(&r));
    assert_eq!(json(r).await, Value::Null);
    let r = holding(&h, &stolen)
        .post_form(
            "/auth/refresh",
            &[],
            &[("origin", h.url.as_str().trim_end_matches('/'))],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(expires_session_cookie(&r));
    // The current session is untouched.
    assert_eq!(b.get("/protected/page").await.status(), 200);
}

#[tokio::test]
async fn by_default_a_copy_with_a_fresh_token_passes_until_the_next_store_check() {
    // The documented cost of no I/O on the fast path.
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "ada").await;
    let stolen = b.cookies.clone();
    sign_out(&mut b).await;
    assert_eq!(
        holding(&h, &stolen).get("/protected/page").await.status(),
        200
    );
}

#[tokio::test]
async fn with_request_checks_a_signed_out_copy_is_refused_at_once() {
    let h = start(Options {
        upstream: true,
        revocation_check: RevocationCheck::Request,
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "ada").await;
    let stolen = b.cookies.clone();
    assert_eq!(
        holding(&h, &stolen).get("/protected/page").await.status(),
        200
    );
    sign_out(&mut b).await;
    let r = holding(&h, &stolen).get("/protected/page").await;
    assert_eq!(
        r.status(),
        302,
        "a signed-out copy with a fresh token passed"
    );
    let r = holding(&h, &stolen).get("/api/data").await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        json(holding(&h, &stolen).get("/auth/session").await).await,
        Value::Null
    );
    // Other sessions of the same user are not affected by the check.
    let mut other = sign_in(&h, "ada").await;
    assert_eq!(other.get("/protected/page").await.status(), 200);
}

#[tokio::test]
async fn a_cookie_with_an_account_but_no_session_record_is_signed_out_at_the_store_check() {
    let h = start(Options {
        upstream: true,
        ..Options::default().always_stale()
    })
    .await;
    let b = sign_in(&h, "ada").await;
    let now = UnixTime::from_secs(now_secs());
    let codec = codec();
    let mut claims = codec.decode(&b.cookies[SESSION_COOKIE], now).unwrap();
    let ours = claims
        .extra
        .get_mut("authgate")
        .unwrap()
        .as_object_mut()
        .unwrap();
    assert!(ours.remove("sid").is_some());
    let mut legacy = Browser::new(&h);
    legacy.cookies.insert(
        SESSION_COOKIE.to_owned(),
        codec.encode(
            &claims,
            now,
            Duration::from_secs(3600),
            &mut rand::rngs::OsRng,
        ),
    );
    let r = legacy.get("/protected/page").await;
    assert_eq!(r.status(), 302);
    assert!(expires_session_cookie(&r));
}

#[tokio::test]
async fn each_sign_in_records_its_session_with_the_user_agent_in_both_strategies() {
    for strategy in [SessionStrategy::Jwt, SessionStrategy::Database] {
        let h = start(Options {
            strategy,
            ..Options::default()
        })
        .await;
        let mut b = sign_in(&h, "ada").await;
        let user = json(b.get("/auth/session").await).await["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let records = h
            .store
            .list_user_sessions(&UserId::new(&user))
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{strategy:?}");
        assert!(records[0].is_live(UnixTime::from_secs(now_secs())));
        assert!(records[0].user_agent.is_some(), "{strategy:?}: {records:?}");
    }
}
