//! A plain OAuth 2.0 provider with GitHub's quirks (the `github` preset,
//! pointed at a local fake with `[providers.endpoints]`): sign-in through the
//! profile API, refresh, and GitHub's HTTP-200 `bad_refresh_token` answer
//! ending the session as `RefreshTokenError`; the user's address comes from
//! `GET /user/emails` (its `verified` flag), never from the public profile.
//! With the `read:org` scope the user's organisations and teams
//! (`GET /user/orgs`, `GET /user/teams`, GitHub's documented JSON) are groups
//! `org` and `org/team-slug` for `allow_groups` and `X-Auth-Request-Groups`.
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
    /// The public profile's `email` (`null` for a private address).
    public_email: Option<&'static str>,
    /// `GET /user/emails`: `(email, primary, verified)`.
    emails: Vec<(&'static str, bool, bool)>,
    /// Bearer tokens `GET /user/emails` was called with.
    emails_tokens: Vec<String>,
    /// `GET /user/orgs`: organisation logins.
    orgs: Vec<&'static str>,
    /// `GET /user/teams`: `(organisation login, team slug)`.
    teams: Vec<(&'static str, &'static str)>,
    /// Calls to `GET /user/orgs` and `GET /user/teams`.
    org_calls: u32,
}

/// GitHub's `GET /user/orgs` (needs `read:org` for private memberships).
async fn user_orgs(State(s): State<Shared>) -> Json<Value> {
    let mut s = s.lock().unwrap();
    s.org_calls += 1;
    Json(Value::Array(
        s.orgs
            .iter()
            .enumerate()
            .map(|(i, login)| {
                json!({"login": login, "id": 1000 + i, "node_id": "MDEyOk9yZ2FuaXphdGlvbjE=",
                    "url": format!("https://api.github.com/orgs/{login}"), "description": null})
            })
            .collect(),
    ))
}

/// GitHub's `GET /user/teams` (needs `read:org`).
async fn user_teams(State(s): State<Shared>) -> Json<Value> {
    let mut s = s.lock().unwrap();
    s.org_calls += 1;
    Json(Value::Array(
        s.teams
            .iter()
            .enumerate()
            .map(|(i, (org, slug))| {
                json!({"id": 2000 + i, "name": slug.to_uppercase(), "slug": slug,
                    "privacy": "closed", "permission": "pull",
                    "organization": {"login": org, "id": 1000, "name": org}})
            })
            .collect(),
    ))
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

async fn user(State(s): State<Shared>) -> Json<Value> {
    Json(json!({
        "id": 583_231,
        "login": "octocat",
        "name": "The Octocat",
        "email": s.lock().unwrap().public_email,
        "avatar_url": "https://avatars.github.example/u/583231",
    }))
}

/// GitHub's `GET /user/emails` (needs the `user:email` scope).
async fn user_emails(State(s): State<Shared>, headers: axum::http::HeaderMap) -> Json<Value> {
    let mut s = s.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    s.emails_tokens.push(token);
    Json(Value::Array(
        s.emails
            .iter()
            .map(|(email, primary, verified)| {
                json!({"email": email, "primary": primary, "verified": verified,
                    "visibility": if *primary { Some("private") } else { None }})
            })
            .collect(),
    ))
}

/// The fake GitHub on 127.0.0.1 and a gateway whose `github` provider uses it
/// (only the userinfo endpoint is overridden: `/user/emails` follows it).
async fn github_stack(
    state: &Shared,
) -> (
    Gateway,
    String,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
) {
    github_stack_with(state, "").await
}

/// [`github_stack`] with extra lines in the provider's entry.
async fn github_stack_with(
    state: &Shared,
    provider_extra: &str,
) -> (
    Gateway,
    String,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
) {
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", fake.local_addr().unwrap());
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .route("/user/emails", get(user_emails))
        .route("/user/orgs", get(user_orgs))
        .route("/user/teams", get(user_teams))
        .with_state(Arc::clone(state));
    let fake_task = tokio::spawn(async move {
        let _ = axum::serve(fake, app).await;
    });
    let (upstream, upstream_task) = echo_upstream().await;
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
{provider_extra}
[[routes]]
path = "/core/**"
access = "protected"
allow_groups = ["octo-org/core"]
[[routes]]
path = "/org/**"
access = "protected"
allow_groups = ["octo-org"]
[[routes]]
path = "/staff/**"
access = "protected"
allow_domains = ["corp.example"]
[[routes]]
path = "/**"
access = "protected"
"#,
        upstream = upstream.as_str().trim_end_matches('/'),
    );
    let gw = start(reserved, &toml).await;
    (gw, fake_url, fake_task, upstream_task)
}

/// Signs in through the fake GitHub; returns the browser.
async fn github_sign_in(public: &str) -> Browser {
    let mut b = Browser::new();
    let r = b
        .get(&format!("{public}/auth/signin/github?callbackUrl=/repos"))
        .await;
    assert_eq!(r.status(), 302);
    let r = b.client.get(location(&r)).send().await.unwrap();
    let r = b.get(&location(&r)).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    b
}

#[tokio::test]
async fn a_private_github_address_comes_verified_from_the_address_list() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 3600,
        public_email: None,
        emails: vec![
            ("octo@users.noreply.github.example", false, true),
            ("octo@corp.example", true, true),
        ],
        ..Default::default()
    }));
    let (gw, _fake_url, _fake, _upstream) = github_stack(&state).await;
    let public = gw.url.as_str().trim_end_matches('/').to_owned();
    let mut b = github_sign_in(&public).await;
    let session: Value = b
        .get(&format!("{public}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["email"], "octo@corp.example");
    let r = b.get(&format!("{public}/staff/page")).await;
    assert_eq!(
        r.status(),
        200,
        "the verified address passes the domain rule"
    );
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-auth-request-email"][0],
        "octo@corp.example"
    );
    assert_eq!(
        state.lock().unwrap().emails_tokens,
        vec!["Bearer gho_0".to_owned()],
        "fetched once, with the sign-in's access token"
    );
}

#[tokio::test]
async fn an_unverified_primary_github_address_is_not_used_even_if_public() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 3600,
        public_email: Some("ceo@corp.example"),
        emails: vec![
            ("ceo@corp.example", true, false),
            ("me@elsewhere.example", false, true),
        ],
        ..Default::default()
    }));
    let (gw, _fake_url, _fake, _upstream) = github_stack(&state).await;
    let public = gw.url.as_str().trim_end_matches('/').to_owned();
    let mut b = github_sign_in(&public).await;
    let session: Value = b
        .get(&format!("{public}/auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert!(session["user"]["email"].is_null(), "{session}");
    let r = b.get(&format!("{public}/staff/page")).await;
    assert_eq!(r.status(), 403);
    let r = b.get(&format!("{public}/repos")).await;
    let seen: Value = r.json().await.unwrap();
    assert!(
        seen["headers"].get("x-auth-request-email").is_none(),
        "{seen}"
    );
    assert!(
        gw.store
            .find_user_by_email("ceo@corp.example")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_github_style_provider_signs_in_refreshes_and_its_200_error_ends_the_session() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 1,
        public_email: Some("octocat@github.example"),
        emails: vec![("octocat@github.example", true, true)],
        ..Default::default()
    }));
    let (gw, fake_url, _fake_task, _upstream_task) = github_stack(&state).await;
    let public = gw.url.as_str().trim_end_matches('/').to_owned();

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

#[tokio::test]
async fn github_organisations_and_teams_are_groups_with_read_org() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 3600,
        emails: vec![("octo@corp.example", true, true)],
        orgs: vec!["Octo-Org", "other-org"],
        teams: vec![("Octo-Org", "core"), ("other-org", "docs")],
        ..Default::default()
    }));
    let (gw, _fake_url, _fake, _upstream) = github_stack_with(
        &state,
        r#"scopes = ["read:user", "user:email", "read:org"]"#,
    )
    .await;
    let public = gw.url.as_str().trim_end_matches('/').to_owned();
    let mut b = github_sign_in(&public).await;
    assert_eq!(
        state.lock().unwrap().org_calls,
        2,
        "orgs and teams, once each"
    );
    let r = b.get(&format!("{public}/core/page")).await;
    assert_eq!(r.status(), 200, "member of octo-org/core");
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-auth-request-groups"][0],
        "octo-org,other-org,octo-org/core,other-org/docs"
    );
    assert_eq!(
        seen["headers"]["x-auth-request-preferred-username"][0],
        "octocat"
    );
    assert_eq!(b.get(&format!("{public}/org/page")).await.status(), 200);

    // Removed from the team (and no longer anywhere): the next sign-in says so.
    {
        let mut s = state.lock().unwrap();
        s.orgs = vec!["octo-org"];
        s.teams.clear();
    }
    let mut b = github_sign_in(&public).await;
    assert_eq!(b.get(&format!("{public}/core/page")).await.status(), 403);
    assert_eq!(b.get(&format!("{public}/org/page")).await.status(), 200);
}

#[tokio::test]
async fn without_read_org_github_organisations_are_not_read() {
    let state: Shared = Arc::new(Mutex::new(FakeGitHub {
        expires_in: 3600,
        emails: vec![("octo@corp.example", true, true)],
        orgs: vec!["octo-org"],
        teams: vec![("octo-org", "core")],
        ..Default::default()
    }));
    let (gw, _fake_url, _fake, _upstream) = github_stack(&state).await;
    let public = gw.url.as_str().trim_end_matches('/').to_owned();
    let mut b = github_sign_in(&public).await;
    assert_eq!(state.lock().unwrap().org_calls, 0);
    assert_eq!(b.get(&format!("{public}/core/page")).await.status(), 403);
}
