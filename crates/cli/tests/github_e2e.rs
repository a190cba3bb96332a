//! A plain OAuth 2.0 provider with GitHub's quirks (the `github` preset,
//! pointed at a local fake with `[providers.endpoints]`): sign-in through the
//! profile API, refresh, and GitHub's HTTP-200 `bad_refresh_token` answer
//! ending the session as `RefreshTokenError`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use common::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct FakeGitHub {
    /// `true`: refresh grants answer GitHub's HTTP-200 error.
    refuse_refresh: bool,
    refresh_calls: u32,
    /// `expires_in` of the next token response.
    expires_in: u64,
}

type Shared = Arc<Mutex<FakeGitHub>>;

async fn authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let target = format!(
        "{}?code=fake-code&state={}",
        q["redirect_uri"],
        url::form_urlencoded::byte_serialize(q["state"].as_bytes()).collect::<String>()
    );
    Redirect::to(&target).into_response()
}

async fn access_token(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap();
    if f.get("grant_type").map(String::as_str) == Some("refresh_token") {
        s.refresh_calls += 1;
        if s.refuse_refresh {
            return Json(json!({
                "error": "bad_refresh_token",
                "error_description": "The refresh token passed is incorrect or expired.",
            }))
            .into_response();
        }
    }
    let n = s.refresh_calls;
    Json(json!({
        "access_token": format!("gho_{n}"),
        "token_type": "bearer",
        "scope": "read:user,user:email",
        "expires_in": s.expires_in,
        "refresh_token": format!("ghr_{n}"),
        "refresh_token_expires_in": 15_811_200,
    }))
    .into_response()
}

async fn user() -> Json<Value> {
    Json(json!({
        "id": 583_231,
        "login": "octocat",
        "name": "The Octocat",
        "email": "octocat@github.example",
        "avatar_url": "https://avatars.github.example/u/583231",
    }))
}

#[tokio::test]
async fn a_github_style_provider_signs_in_refreshes_and_its_200_error_ends_the_session() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 1,
        ..Default::default()
    }));
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", fake.local_addr().unwrap());
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .with_state(Arc::clone(&state));
    let _fake_task = tokio::spawn(async move {
        let _ = axum::serve(fake, app).await;
    });
    let (upstream, _upstream_task) = echo_upstream().await;

    let reserved = reserve().await;
    let public = reserved.url.as_str().trim_end_matches('/').to_owned();
    let toml = format!(
        r#"
[server]
public_url = "{public}"
upstream = "{upstream}"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
[refresh]
skew = "10s"
[store]
url = "{{db}}"
[[providers]]
id = "github"
preset = "github"
client_id = "Iv1.fake"
client_secret = "fake-secret"
endpoints = {{ authorization = "{fake_url}/login/oauth/authorize", token = "{fake_url}/login/oauth/access_token", userinfo = "{fake_url}/user" }}
[[routes]]
path = "/**"
access = "protected"
"#,
        upstream = upstream.as_str().trim_end_matches('/'),
    );
    let gw = start(reserved, &toml).await;

    let mut b = Browser::new();
    let r = b
        .get(&format!("{public}/auth/signin/github?callbackUrl=/repos"))
        .await;
    assert_eq!(r.status(), 302);
    let authorize_url = location(&r);
    assert!(authorize_url.starts_with(&fake_url), "{authorize_url}");
    assert!(
        !authorize_url.contains("nonce="),
        "plain OAuth 2.0: no nonce"
    );
    let r = b.client.get(&authorize_url).send().await.unwrap();
    let callback = location(&r);
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/repos");

    // The profile came from the API: `id` as the subject, `avatar_url` as image.
    let session: Value = b
        .get(&format!("{public}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["name"], "The Octocat");
    assert_eq!(session["user"]["email"], "octocat@github.example");
    assert_eq!(
        session["user"]["image"],
        "https://avatars.github.example/u/583231"
    );
    assert_eq!(session["provider"], "github");
    assert!(
        gw.store
            .find_account_by_provider("github", "583231")
            .await
            .unwrap()
            .is_some()
    );
    // /auth/session refreshed the 1-second token once.
    assert_eq!(state.lock().unwrap().refresh_calls, 1);

    // The refreshed token is short-lived too; now GitHub refuses with HTTP 200.
    state.lock().unwrap().refuse_refresh = true;
    let r = b.get(&format!("{public}/repos/x")).await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).contains("error=RefreshTokenError"),
        "{}",
        location(&r)
    );
    let session: Value = b
        .get(&format!("{public}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["error"], "RefreshTokenError");
    assert_eq!(
        state.lock().unwrap().refresh_calls,
        2,
        "no retry of a definitive answer"
    );
    let account = gw
        .store
        .find_account_by_provider("github", "583231")
        .await
        .unwrap()
        .unwrap();
    let stored = gw.store.read_tokens(&account.id).await.unwrap().unwrap();
    assert!(
        stored.tokens.is_none() && stored.revoked_at.is_some(),
        "the revoked grant's tokens are cleared"
    );
}
