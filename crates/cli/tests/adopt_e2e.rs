//! Adopting guide-style Auth.js cookies end to end: cookies minted by the
//! real `@auth/core` carrying the refresh-token-rotation guide's fields,
//! with grants really issued by `oidc-provider` (strict rotation with reuse
//! detection), put in front of `authgate serve` mid-session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, Stack, authjs_batch};
use reqwest::header::COOKIE;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USERS: usize = 20;
/// The provider's access-token lifetime (seconds); long enough for the 20
/// authorization-code flows and the switch-over to happen before it ends.
const ACCESS_TTL: u64 = 40;
const SECRET: &str = "test-secret-at-least-32-chars-long!!";
const COOKIE_NAME: &str = "authjs.session-token";
const TOKEN_CLAIMS: [&str; 3] = ["access_token", "refresh_token", "expires_at"];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends `n` concurrent GETs of `url` with `cookie_header`; returns them.
async fn concurrently(
    client: &reqwest::Client,
    url: &str,
    cookie_header: &str,
    n: usize,
) -> Vec<reqwest::Response> {
    let requests: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(
                client
                    .get(url)
                    .header(COOKIE, cookie_header.to_owned())
                    .send(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for r in requests {
        out.push(r.await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_users_switch_over_mid_session_none_signed_out_one_grant_each_at_next_expiry() {
    let stack = Stack::start(ACCESS_TTL, "2s", "inline", r#"adopt_guide_cookies = "op""#).await;
    let base = stack.base();

    // The Auth.js app's sessions: each user signed in at the provider with a
    // real authorization-code flow, and the app's `jwt` callback kept the
    // guide's fields in the session token (minted by the real @auth/core).
    let mut grants = Vec::new();
    for i in 0..USERS {
        let login = format!("guide-user-{i}");
        let tokens = stack.peer.obtain_tokens("test", &login).await;
        assert!(tokens.refresh_token.is_some(), "offline_access granted");
        grants.push((login, tokens, now()));
    }
    let encode: Vec<_> = grants
        .iter()
        .map(|(login, t, issued)| {
            json!({
                "op": "encode", "lib": "authjs", "secret": SECRET, "salt": COOKIE_NAME,
                "token": {
                    "sub": login,
                    "name": format!("User {login}"),
                    "email": format!("{login}@example.com"),
                    "picture": null,
                    "access_token": t.access_token,
                    "expires_at": issued + t.expires_in.unwrap(),
                    "refresh_token": t.refresh_token,
                },
            })
        })
        .collect();
    let minted = authjs_batch(json!(encode)).await;
    let guide_cookies: Vec<String> = minted
        .iter()
        .map(|m| {
            assert_eq!(m["ok"], true, "{m}");
            m["token"].as_str().unwrap().to_owned()
        })
        .collect();
    let codes_before = stack.peer.stats().await.code_grants;
    assert_eq!(codes_before, USERS as u64);

    // Switch-over: authgate now fronts the app. Each user's browser sends
    // five requests at once with its guide cookie; none is signed out, and
    // all of them end up with the same new session.
    let mut browsers = Vec::new();
    let mut replaced: Vec<Vec<String>> = Vec::new();
    for (i, guide) in guide_cookies.iter().enumerate() {
        let mut b = Browser::new();
        b.cookies.insert(COOKIE_NAME.to_owned(), guide.clone());
        let header = b.cookie_header();
        let responses = concurrently(&b.client, &format!("{base}/protected/app"), &header, 5).await;
        let mut values = Vec::new();
        for r in &responses {
            assert_eq!(r.status(), 200, "user {i} signed out at the switch-over");
            let set_cookie = r
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with(&format!("{COOKIE_NAME}=")))
                .expect("the guide cookie is replaced");
            let value = set_cookie[COOKIE_NAME.len() + 1..]
                .split(';')
                .next()
                .unwrap();
            values.push(value.to_owned());
        }
        b.absorb(&responses[0]);
        assert_ne!(b.cookies[COOKIE_NAME], *guide);
        browsers.push(b);
        replaced.push(values);
    }

    // The rewritten cookies are still Auth.js cookies (the app's own
    // @auth/core reads them), carry no token material, and each user's five
    // name one session record.
    let decode: Vec<_> = replaced
        .iter()
        .flatten()
        .map(|value| {
            json!({
                "op": "decode", "lib": "authjs", "secret": SECRET, "salt": COOKIE_NAME,
                "token": value,
            })
        })
        .collect();
    let decoded = authjs_batch(json!(decode)).await;
    let mut sids = std::collections::BTreeSet::new();
    for (i, per_user) in decoded.chunks(5).enumerate() {
        let (_, tokens, _) = &grants[i];
        let mut user_sids = std::collections::BTreeSet::new();
        for d in per_user {
            assert_eq!(d["ok"], true, "{d}");
            let claims = &d["claims"];
            for key in TOKEN_CLAIMS {
                assert!(
                    claims.get(key).is_none(),
                    "user {i}: {key} still in the cookie"
                );
            }
            let text = claims.to_string();
            assert!(!text.contains(tokens.refresh_token.as_deref().unwrap()));
            assert!(!text.contains(&tokens.access_token));
            user_sids.insert(claims["authgate"]["sid"].as_str().unwrap().to_owned());
        }
        assert_eq!(user_sids.len(), 1, "user {i}: five requests, one session");
        sids.extend(user_sids);
    }
    assert_eq!(sids.len(), USERS, "one session record per user");
    // One stored token set per user: adopted as issued, not refreshed yet.
    for (login, tokens, _) in &grants {
        let account = stack
            .gw
            .store
            .find_account_by_provider("op", login)
            .await
            .unwrap()
            .expect("adopted");
        let stored = stack
            .gw
            .store
            .read_tokens(&account.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.version, 1, "{login}: adopted exactly once");
        assert_eq!(
            stored.tokens.unwrap().refresh_token.unwrap().expose(),
            tokens.refresh_token.as_deref().unwrap()
        );
    }
    let stats = stack.peer.stats().await;
    assert_eq!(
        stats.refresh_grants, 0,
        "the switch-over itself refreshed nothing"
    );

    // The next expiry: every user's browser sends five requests at once.
    let latest = grants
        .iter()
        .map(|(_, t, at)| at + t.expires_in.unwrap())
        .max()
        .unwrap();
    let wait = latest.saturating_sub(now()) + 1;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    for (i, b) in browsers.iter_mut().enumerate() {
        let header = b.cookie_header();
        let responses =
            concurrently(&b.client, &format!("{base}/protected/later"), &header, 5).await;
        for r in &responses {
            assert_eq!(r.status(), 200, "user {i} signed out at the refresh");
        }
        b.absorb(&responses[0]);
    }
    let stats = stack.peer.stats().await;
    for (login, _, _) in &grants {
        assert_eq!(
            stats.refresh_grants_by_account.get(login).copied(),
            Some(1),
            "{login}: exactly one refresh grant ({stats:?})"
        );
    }
    assert_eq!(stats.refresh_grants, USERS as u64);
    assert!(stats.refresh_errors.is_empty(), "{stats:?}");
    assert_eq!(stats.grants_revoked, 0);

    // And they stay signed in on the refreshed tokens.
    for (i, b) in browsers.iter_mut().enumerate() {
        let r = b.get(&format!("{base}/protected/after")).await;
        assert_eq!(r.status(), 200, "user {i}");
    }
    assert_eq!(stack.peer.stats().await.refresh_grants, USERS as u64);
}
