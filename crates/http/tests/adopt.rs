//! Adopting guide-style Auth.js cookies (`adopt_guide_cookies`): the
//! tokens move into the store once, the cookie is rewritten without them,
//! and the session refreshes as usual.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::time::UnixTime;
use authgate_store::AccountId;
use common::{Browser, Harness, Options, PROVIDER, SECRET, SESSION_COOKIE, sign_in, start};
use reqwest::Response;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn codec() -> SessionCodec {
    SessionCodec::new(CookieFormat::AuthJs, &[SECRET], false).unwrap()
}

/// A grant really issued by the development provider: signed in at a
/// gateway of its own (without adoption), read from that gateway's store.
struct Grant {
    sub: String,
    access_token: String,
    refresh_token: String,
}

async fn grant(minter: &Harness, user: &str) -> Grant {
    let mut b = sign_in(minter, user).await;
    let user_id = common::user_id(&mut b).await;
    let accounts = minter
        .store
        .list_accounts_for_user(&authgate_store::UserId::new(user_id.clone()))
        .await
        .unwrap();
    let tokens = common::stored_tokens(minter, &user_id).await.unwrap();
    Grant {
        sub: accounts[0].provider_account_id.clone(),
        access_token: tokens.access_token.expose().to_owned(),
        refresh_token: tokens.refresh_token.unwrap().expose().to_owned(),
    }
}

/// The session cookie Auth.js's guide writes: tokens inside the JWT.
fn guide_cookie(grant: &Grant, expires_at: i64, extra: serde_json::Value) -> String {
    let mut token = json!({
        "sub": grant.sub,
        "name": "Guide User",
        "email": format!("{}@example.com", grant.sub),
        "access_token": grant.access_token,
        "expires_at": expires_at,
        "refresh_token": grant.refresh_token,
    });
    if let serde_json::Value::Object(more) = extra {
        token.as_object_mut().unwrap().extend(more);
    }
    let claims: SessionClaims = serde_json::from_value(token).unwrap();
    codec().encode(
        &claims,
        UnixTime::from_secs(now()),
        Duration::from_secs(30 * 24 * 3600),
        &mut rand::rngs::OsRng,
    )
}

fn adopting() -> Options {
    Options {
        upstream: true,
        adopt_guide_cookies: Some(PROVIDER.to_owned()),
        ..Options::default()
    }
}

async fn get_with_cookie(h: &Harness, path: &str, cookie: &str) -> Response {
    Browser::new(h)
        .client
        .get(h.url.join(path).unwrap())
        .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .unwrap()
}

/// The session cookie a response sets, decoded.
fn set_session(r: &Response) -> Option<SessionClaims> {
    r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let text = v.to_str().unwrap();
        let value = text.strip_prefix(&format!("{SESSION_COOKIE}="))?;
        let value = value.split(';').next().unwrap();
        if value.is_empty() {
            return None;
        }
        Some(codec().decode(value, UnixTime::from_secs(now())).unwrap())
    })
}

fn expires_session(r: &Response) -> bool {
    r.headers().get_all(SET_COOKIE).iter().any(|v| {
        let text = v.to_str().unwrap();
        text.starts_with(&format!("{SESSION_COOKIE}=")) && text.contains("Max-Age=0")
    })
}

fn sid(claims: &SessionClaims) -> String {
    claims.extra["authgate"]["sid"].as_str().unwrap().to_owned()
}

fn assert_no_token_material(claims: &SessionClaims, grant: &Grant) {
    for key in ["access_token", "refresh_token", "expires_at", "id_token"] {
        assert!(!claims.extra.contains_key(key), "{key} in the cookie");
    }
    let text = serde_json::to_string(claims).unwrap();
    for token in [&grant.refresh_token, &grant.access_token] {
        assert!(token.is_empty() || !text.contains(token.as_str()));
    }
}

async fn account_of(h: &Harness, grant: &Grant) -> Option<AccountId> {
    h.store
        .find_account_by_provider(PROVIDER, &grant.sub)
        .await
        .unwrap()
        .map(|a| a.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_first_requests_adopt_once_refresh_once_and_all_pass() {
    let h = start(adopting()).await;
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "alice").await;
    // The access token the guide cookie knows of has expired.
    let cookie = guide_cookie(&g, now() - 60, json!({ "theme": "dark" }));
    let before = h.idp.stats();

    let mut requests = Vec::new();
    for _ in 0..10 {
        let (url, cookie) = (h.url.join("/protected/page").unwrap(), cookie.clone());
        let client = Browser::new(&h).client;
        requests.push(tokio::spawn(async move {
            client
                .get(url)
                .header(COOKIE, format!("{SESSION_COOKIE}={cookie}"))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut sids = std::collections::BTreeSet::new();
    let mut users = std::collections::BTreeSet::new();
    for request in requests {
        let r = request.await.unwrap();
        assert_eq!(r.status(), 200);
        let claims = set_session(&r).expect("the guide cookie is replaced");
        assert_no_token_material(&claims, &g);
        assert_eq!(claims.extra["theme"], "dark", "the app's own claims stay");
        sids.insert(sid(&claims));
        let body: serde_json::Value = r.json().await.unwrap();
        users.insert(body["user"].as_str().unwrap().to_owned());
    }
    assert_eq!(sids.len(), 1, "one adoption, one session record");
    assert_eq!(users.len(), 1, "one user");
    assert_eq!(
        h.idp.stats().refresh_grants - before.refresh_grants,
        1,
        "the adopted, expired token was refreshed exactly once"
    );
    assert_eq!(h.idp.stats().reuse_detections, before.reuse_detections);

    // One stored token set: adopted at version 1, refreshed to version 2.
    let account = account_of(&h, &g).await.expect("the account was created");
    let stored = h.store.read_tokens(&account).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    let tokens = stored.tokens.unwrap();
    assert_ne!(tokens.refresh_token.unwrap().expose(), g.refresh_token);
    let user = h
        .store
        .find_user(
            &h.store
                .find_account(&account)
                .await
                .unwrap()
                .unwrap()
                .user_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, None, "the cookie's address is not vouched for");
    assert_eq!(users.into_iter().next().unwrap(), user.id.as_str());

    // A replay of the old guide cookie joins the same session and changes
    // nothing: no second adoption, no overwrite, no refresh.
    let r = get_with_cookie(&h, "/protected/again", &cookie).await;
    assert_eq!(r.status(), 200);
    assert_eq!(sids.iter().next().unwrap(), &sid(&set_session(&r).unwrap()));
    let again = h.store.read_tokens(&account).await.unwrap().unwrap();
    assert_eq!(again.version, 2, "the replay overwrote nothing");
    assert_eq!(
        h.idp.stats().refresh_grants - before.refresh_grants,
        1,
        "no second refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rewritten_cookie_keeps_the_user_signed_in_without_the_store_tokens_in_it() {
    let h = start(adopting()).await;
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "bob").await;
    let cookie = guide_cookie(&g, now() + 3600, json!({}));
    let r = get_with_cookie(&h, "/", &cookie).await;
    assert_eq!(r.status(), 200, "public routes adopt too");
    let claims = set_session(&r).unwrap();
    assert_no_token_material(&claims, &g);
    let account = account_of(&h, &g).await.unwrap();
    let stored = h.store.read_tokens(&account).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        stored.tokens.unwrap().refresh_token.unwrap().expose(),
        g.refresh_token
    );

    let mut b = Browser::new(&h);
    b.absorb(&r);
    let session: serde_json::Value = b.get("/auth/session").await.json().await.unwrap();
    assert_eq!(session["provider"], PROVIDER);
    assert_eq!(session["accessTokenExpiresAt"], now_plus(3600, &session));
    assert!(session["error"].is_null());
    let r = b.get("/protected/x").await;
    assert_eq!(r.status(), 200);
}

/// The `accessTokenExpiresAt` the session reports, when it is within a few
/// seconds of `now + secs` (the cookie was minted a moment ago).
fn now_plus(secs: i64, session: &serde_json::Value) -> serde_json::Value {
    let reported = session["accessTokenExpiresAt"].as_i64().unwrap();
    assert!((reported - (now() + secs)).abs() < 30, "{reported}");
    json!(reported)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_account_keeps_its_newer_tokens() {
    let h = start(adopting()).await;
    // carol signed in through authgate already: her account holds tokens.
    let mut direct = sign_in(&h, "carol").await;
    let user_id = common::user_id(&mut direct).await;
    let held = common::stored_tokens(&h, &user_id).await.unwrap();
    // An old guide cookie of hers (another grant) comes along.
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "carol").await;
    let r = get_with_cookie(
        &h,
        "/protected/x",
        &guide_cookie(&g, now() + 3600, json!({})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_no_token_material(&set_session(&r).unwrap(), &g);
    assert_eq!(
        common::stored_tokens(&h, &user_id).await.unwrap(),
        held,
        "a cookie never overwrites stored tokens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guide_cookie_whose_session_was_signed_out_stays_signed_out() {
    let h = start(adopting()).await;
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "dave").await;
    let cookie = guide_cookie(&g, now() + 3600, json!({}));
    let r = get_with_cookie(&h, "/protected/x", &cookie).await;
    assert_eq!(r.status(), 200);
    let mut b = Browser::new(&h);
    b.absorb(&r);
    let csrf = b.csrf().await;
    let r = b
        .post_form("/auth/signout", &[("csrfToken", &csrf)], &[])
        .await;
    assert_eq!(r.status(), 302);
    let account = account_of(&h, &g).await.unwrap();
    let after = h.store.read_tokens(&account).await.unwrap().unwrap();
    assert!(after.tokens.is_none(), "sign-out ended the adopted grant");

    let r = get_with_cookie(&h, "/protected/x", &cookie).await;
    assert_eq!(r.status(), 302);
    assert!(common::location(&r).contains("/auth/signin"));
    assert!(expires_session(&r), "the replayed guide cookie is expired");
    let r = get_with_cookie(&h, "/auth/session", &cookie).await;
    assert_eq!(r.status(), 200);
    assert!(expires_session(&r));
    let version = h
        .store
        .read_tokens(&account)
        .await
        .unwrap()
        .unwrap()
        .version;
    assert_eq!(version, after.version, "nothing adopted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guide_cookie_with_refresh_token_error_must_sign_in_again() {
    let h = start(adopting()).await;
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "erin").await;
    let cookie = guide_cookie(&g, now() - 60, json!({ "error": "RefreshTokenError" }));
    let r = get_with_cookie(&h, "/protected/x", &cookie).await;
    assert_eq!(r.status(), 302);
    assert!(common::location(&r).contains("error=RefreshTokenError"));
    assert_no_token_material(&set_session(&r).unwrap(), &g);
    let r = get_with_cookie(&h, "/api/x", &cookie).await;
    assert_eq!(r.status(), 401);
    assert_eq!(account_of(&h, &g).await, None, "nothing adopted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guide_cookie_without_a_refresh_token_is_a_plain_cookie_without_its_token() {
    let h = start(adopting()).await;
    let g = Grant {
        sub: "frank".to_owned(),
        access_token: "an-access-token-value".to_owned(),
        refresh_token: String::new(),
    };
    let cookie = guide_cookie(&g, now() + 3600, json!({}));
    let r = get_with_cookie(&h, "/protected/x", &cookie).await;
    assert_eq!(r.status(), 200);
    let claims = set_session(&r).unwrap();
    assert_no_token_material(&claims, &g);
    assert_eq!(claims.sub.as_deref(), Some("frank"));
    assert_eq!(account_of(&h, &g).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_setting_guide_cookies_are_not_adopted() {
    let h = start(Options {
        upstream: true,
        ..Options::default()
    })
    .await;
    let minter = common::start_sharing(Options::default(), None, Some(h.idp.clone())).await;
    let g = grant(&minter, "gina").await;
    let r = get_with_cookie(
        &h,
        "/protected/x",
        &guide_cookie(&g, now() + 3600, json!({})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(account_of(&h, &g).await, None);
}
