//! Refresh modes and the database session strategy, end to end against the
//! real `oidc-provider` peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn lazy_mode_answers_apis_token_expired_until_the_client_calls_refresh() {
    let s = Stack::start(15, "14s", "lazy", "").await;
    let (gw, peer) = (&s.gw, &s.peer);
    let base = s.base();
    let (mut b, _) = sign_in_with_peer(&gw.url, "erin", "/").await;
    peer.set_access_token_ttl(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let r = b.get(&format!("{base}/api/items")).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "TokenExpired");
    assert_eq!(
        peer.stats().await.refresh_grants,
        0,
        "lazy mode does not refresh on API requests"
    );

    // Without CSRF or a same-origin Origin, the refresh endpoint refuses.
    let r = b.post_form(&format!("{base}/auth/refresh"), &[]).await;
    assert_eq!(r.status(), 403);
    let csrf = b.csrf(&gw.url).await;
    let r = b
        .post_form(&format!("{base}/auth/refresh"), &[("csrfToken", &csrf)])
        .await;
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["user"]["email"], "erin@example.test");
    assert_eq!(peer.stats().await.refresh_grants, 1);

    let r = b.get(&format!("{base}/api/items")).await;
    assert_eq!(r.status(), 200, "the refreshed cookie is accepted");
    assert_eq!(peer.stats().await.refresh_grants, 1);
}

#[tokio::test]
async fn background_mode_refreshes_active_sessions_before_requests_find_them_stale() {
    // 20 s tokens, 2 s skew: the background refresher (15 s lead) renews a
    // token about 3 s after it was issued, long before it is stale.
    let s = Stack::start(20, "2s", "background", "").await;
    let (gw, peer) = (&s.gw, &s.peer);
    let base = s.base();
    let (mut b, _) = sign_in_with_peer(&gw.url, "frank", "/").await;
    let first: Value = b
        .get(&format!("{base}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    let r = b.get(&format!("{base}/protected/x")).await;
    assert_eq!(r.status(), 200);
    let mut waited = Duration::ZERO;
    while peer.stats().await.refresh_grants == 0 {
        assert!(
            waited < Duration::from_secs(15),
            "no background refresh happened"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += Duration::from_millis(200);
    }
    // The next request adopts the new expiry without waiting for a refresh.
    let r = b.get(&format!("{base}/protected/x")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("set-cookie").is_some(),
        "the cookie learns the new expiry"
    );
    let now: Value = b
        .get(&format!("{base}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert!(now["accessTokenExpiresAt"].as_i64() > first["accessTokenExpiresAt"].as_i64());
    assert_eq!(peer.stats().await.refresh_errors("invalid_grant"), 0);
}

#[tokio::test]
async fn database_sessions_keep_an_opaque_cookie_refresh_and_end_at_sign_out() {
    let s = Stack::start(15, "14s", "inline", "strategy = \"database\"").await;
    let (gw, peer) = (&s.gw, &s.peer);
    let base = s.base();
    let (mut b, _) = sign_in_with_peer(&gw.url, "gina", "/").await;
    let cookie = b.cookies.get("authjs.session-token").unwrap().clone();
    assert_eq!(cookie.split('.').count(), 1, "an opaque token, not a JWE");
    peer.set_access_token_ttl(60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let r = b.get(&format!("{base}/protected/page")).await;
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        view["headers"]["x-auth-request-email"][0],
        "gina@example.test"
    );
    assert_eq!(
        peer.stats().await.refresh_grants,
        1,
        "the stale token was refreshed"
    );
    let r = b.get(&format!("{base}/protected/page")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        peer.stats().await.refresh_grants,
        1,
        "the store now holds a fresh token"
    );

    let token = authgate_core::secret::Secret::new(cookie);
    let now = authgate_core::time::UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    assert!(gw.store.find_session(&token, now).await.unwrap().is_some());
    let csrf = b.csrf(&gw.url).await;
    let r = b
        .post_form(&format!("{base}/auth/signout"), &[("csrfToken", &csrf)])
        .await;
    assert_eq!(r.status(), 302);
    assert!(
        gw.store.find_session(&token, now).await.unwrap().is_none(),
        "sign-out deleted the session"
    );
    let r = b.get(&format!("{base}/protected/page")).await;
    assert_eq!(r.status(), 302);
}
