//! The tower layer and its extractors, built with `Gateway::builder` and
//! served over real HTTP next to the gateway's `/auth/*` endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_http::{AccessToken, AllowList, AuthLayer, Gateway, Session};
use axum::Router;
use axum::routing::get;
use common::{
    Browser, Options, json, location, revoke_at_provider, sign_in, start_with, stored_tokens,
    user_id,
};

async fn page(session: Option<Session>) -> ([(&'static str, &'static str); 1], String) {
    let who = session
        .and_then(|s| s.identity().name.clone())
        .unwrap_or_else(|| "anonymous".to_owned());
    ([("set-cookie", "app=1; Path=/")], who)
}

async fn token(token: AccessToken) -> String {
    format!(
        "{}:{}",
        token.expose().len(),
        token.token_type().unwrap_or("")
    )
}

fn app(gateway: &Gateway) -> Router {
    let nobody = AllowList {
        domains: vec!["nowhere.invalid".to_owned()],
        ..AllowList::default()
    };
    Router::new()
        .merge(
            Router::new()
                .route("/page", get(page))
                .route_layer(AuthLayer::protected(gateway.clone())),
        )
        .merge(
            Router::new()
                .route("/api/token", get(token))
                .route_layer(AuthLayer::api(gateway.clone())),
        )
        .merge(
            Router::new()
                .route("/open", get(page))
                .route("/open/token", get(token))
                .route_layer(AuthLayer::public(gateway.clone())),
        )
        .merge(
            Router::new()
                .route("/closed", get(page))
                .route_layer(AuthLayer::api(gateway.clone()).allow(nobody)),
        )
        .nest(&gateway.settings().base_path.clone(), gateway.auth_routes())
}

#[tokio::test]
async fn anonymous_requests_are_redirected_refused_or_passed_per_policy() {
    let h = start_with(Options::default(), Some(app)).await;
    let mut b = Browser::new(&h);
    let r = b.get_with("/page?x=1", &[("accept", "text/html")]).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/auth/signin?callbackUrl=%2Fpage%3Fx%3D1");
    let r = b.get("/api/token").await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "SessionRequired");
    let r = b.get("/open").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "anonymous");
    let r = b.get("/open/token").await;
    assert_eq!(r.status(), 401, "AccessToken needs a session");
}

#[tokio::test]
async fn a_signed_in_user_reaches_the_handler_with_its_cookies_and_the_allow_list_applies() {
    let h = start_with(Options::default(), Some(app)).await;
    let mut b = sign_in(&h, "ann").await;
    let r = b.get("/page").await;
    assert_eq!(r.status(), 200);
    let set: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(set, ["app=1; Path=/"], "the handler's own cookie is kept");
    assert_ne!(r.text().await.unwrap(), "anonymous");
    let r = b.get("/closed").await;
    assert_eq!(r.status(), 403);
    let r = b.get("/api/token").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().ends_with(":Bearer"));
}

#[tokio::test]
async fn a_token_the_decision_refreshed_is_the_one_the_extractor_gets() {
    let h = start_with(Options::default().always_stale(), Some(app)).await;
    let mut b = sign_in(&h, "ann").await;
    let grants = h.idp.stats().refresh_grants;
    let r = b.get("/api/token").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        h.idp.stats().refresh_grants,
        grants + 1,
        "the extractor reuses the decision's refresh"
    );
    // On a public route the decision does not refresh; the extractor does.
    let grants = h.idp.stats().refresh_grants;
    assert_eq!(b.get("/open/token").await.status(), 200);
    assert_eq!(h.idp.stats().refresh_grants, grants + 1);
}

#[tokio::test]
async fn a_revoked_grant_is_refused_with_the_rewritten_cookie_and_no_handler_call() {
    let h = start_with(Options::default().always_stale(), Some(app)).await;
    let mut b = sign_in(&h, "ann").await;
    // End the grant at the provider behind the gateway's back.
    let user = user_id(&mut b).await;
    let stored = stored_tokens(&h, &user).await.unwrap();
    revoke_at_provider(&h, stored.refresh_token.as_ref().unwrap().expose()).await;
    let r = b.get("/api/token").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with(common::SESSION_COOKIE))
    );
    assert_eq!(json(r).await["error"], "RefreshTokenError");
}
