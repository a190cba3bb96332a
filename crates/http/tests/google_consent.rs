//! Google sign-in that keeps its refresh token: Google issues a refresh token
//! at a user's first consent only. The gateway does not force the consent
//! screen on every sign-in; a sign-in answered without a refresh token keeps
//! the stored one, and consent is asked again only when none is stored
//! (first sign-in elsewhere, or after the grant ended). The development
//! provider plays Google's rule (`google_offline_access`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Browser, Harness, Options, SESSION_COOKIE, location, log_in_at_provider, sign_in,
    stored_tokens, user_id,
};

async fn google() -> Harness {
    common::start(Options {
        google: true,
        ..Options::default()
    })
    .await
}

/// Google with tokens stale as soon as they are issued: every session read
/// refreshes.
async fn google_always_stale() -> Harness {
    common::start(Options {
        google: true,
        ..Options::default().always_stale()
    })
    .await
}

fn query_has(url: &str, key: &str, value: &str) -> bool {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .any(|(k, v)| k == key && v == value)
}

async fn start_sign_in(b: &mut Browser) -> String {
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    assert_eq!(r.status(), 302);
    location(&r)
}

#[tokio::test]
async fn a_returning_google_user_is_not_asked_for_consent_and_keeps_the_stored_refresh_token() {
    let h = google_always_stale().await;
    let mut first = sign_in(&h, "ann").await;
    let user = user_id(&mut first).await;
    let refresh = stored_tokens(&h, &user)
        .await
        .unwrap()
        .refresh_token
        .unwrap();

    let mut again = Browser::new(&h);
    let authorize = start_sign_in(&mut again).await;
    assert!(query_has(&authorize, "access_type", "offline"));
    assert!(
        !query_has(&authorize, "prompt", "consent"),
        "no consent screen on every sign-in: {authorize}"
    );
    let r = log_in_at_provider(&h, &mut again, &authorize, "ann").await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "/done",
        "signed in without a second round trip"
    );
    assert!(again.cookies.contains_key(SESSION_COOKIE));
    let stored = stored_tokens(&h, &user).await.unwrap();
    assert_eq!(
        stored.refresh_token.unwrap().expose(),
        refresh.expose(),
        "a sign-in without a refresh token keeps the stored one"
    );
    // And it still works at the provider: the next refresh succeeds.
    let grants = h.idp.stats().refresh_grants;
    let session = common::json(again.get("/auth/session").await).await;
    assert_eq!(session["error"], serde_json::Value::Null, "{session}");
    assert_eq!(h.idp.stats().refresh_grants, grants + 1);
}

#[tokio::test]
async fn consent_is_asked_again_once_when_no_refresh_token_is_stored() {
    let h = google().await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    // Sign-out ends the grant: nothing is stored any more.
    let token = b.csrf().await;
    let r = b
        .post_form("/auth/signout", &[("csrfToken", &token)], &[])
        .await;
    assert_eq!(r.status(), 302);
    assert!(stored_tokens(&h, &user).await.is_none());

    let authorize = start_sign_in(&mut b).await;
    assert!(!query_has(&authorize, "prompt", "consent"));
    // The provider issues no refresh token (the user consented before): the
    // gateway sends the browser back for consent instead of signing in a
    // session it could not keep fresh.
    let r = log_in_at_provider(&h, &mut b, &authorize, "ann").await;
    assert_eq!(r.status(), 302);
    let again = location(&r);
    assert!(
        query_has(&again, "prompt", "consent"),
        "consent asked again: {again}"
    );
    assert!(!b.cookies.contains_key(SESSION_COOKIE));
    let r = log_in_at_provider(&h, &mut b, &again, "ann").await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/done", "the sign-in keeps its callback URL");
    assert!(b.cookies.contains_key(SESSION_COOKIE));
    assert!(
        stored_tokens(&h, &user)
            .await
            .unwrap()
            .refresh_token
            .is_some()
    );
}

#[tokio::test]
async fn a_provider_that_still_issues_no_refresh_token_is_not_asked_twice() {
    // The provider answers the re-consent round trip without a refresh
    // token too (here: the request lost its prompt=consent on the way). The
    // gateway asks once, then signs the user in without one — never a loop.
    let h = google().await;
    let mut b = sign_in(&h, "ann").await;
    let user = user_id(&mut b).await;
    let token = b.csrf().await;
    b.post_form("/auth/signout", &[("csrfToken", &token)], &[])
        .await;
    let authorize = start_sign_in(&mut b).await;
    let r = log_in_at_provider(&h, &mut b, &authorize, "ann").await;
    let again = location(&r);
    // Drop prompt=consent from the provider request: it then issues no
    // refresh token on the second round trip either.
    let mut stripped = url::Url::parse(&again).unwrap();
    let pairs: Vec<(String, String)> = stripped
        .query_pairs()
        .filter(|(k, _)| k != "prompt")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(pairs);
    let r = log_in_at_provider(&h, &mut b, stripped.as_str(), "ann").await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        location(&r),
        "/done",
        "no loop: signed in without a refresh token"
    );
    let stored = stored_tokens(&h, &user).await.unwrap();
    assert!(stored.refresh_token.is_none());
}
