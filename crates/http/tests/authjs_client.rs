//! The requests Auth.js's own client code (`next-auth/react` v5 and v4)
//! makes, through the gateway's router: `signIn()` and `signOut()` get
//! `{"url": …}` instead of a redirect, refusals point at the sign-in page with
//! Auth.js's error code, and `update()` may POST to the session endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authgate_core::cookie::{CookieFormat, SessionClaims, SessionCodec};
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::ExpiryPolicy;
use authgate_http::{Gateway, GatewaySettings};
use authgate_oauth::{Catalog, HttpClient, HttpSettings, Provider, ProviderSettings};
use authgate_store::{KeyRing, SqliteStore, Store};
use axum::Router;
use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &[u8] = b"authjs-client-test-secret-32-chars!!";
const PUBLIC: &str = "http://127.0.0.1:4180";
const AUTHORIZE: &str = "http://127.0.0.1:4000/authorize";

/// A gateway at `PUBLIC` with `base_path = "/api/auth"` and one OAuth 2.0
/// provider `op` (explicit endpoints: nothing is fetched).
async fn gateway(format: CookieFormat) -> Router {
    let keys = KeyRing::from_secrets(&[SECRET]).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:", keys).await.unwrap());
    store.migrate().await.unwrap();
    let mut op = ProviderSettings::new("op", "client", "client-secret".to_owned());
    op.endpoints.authorization = Some(AUTHORIZE.parse().unwrap());
    op.endpoints.token = Some("http://127.0.0.1:4000/token".parse().unwrap());
    let http = HttpClient::new(&HttpSettings::default()).unwrap();
    let provider = Provider::resolve(op, &http).await.unwrap();
    let catalog = Catalog::from_providers(vec![provider]).unwrap();
    let policy = ExpiryPolicy {
        skew: Duration::from_secs(5),
    };
    let mut settings = GatewaySettings::new(PUBLIC.parse().unwrap());
    settings.base_path = "/api/auth".to_owned();
    settings.policy = policy;
    let gw = Gateway::builder(settings)
        .secrets([Secret::new(std::str::from_utf8(SECRET).unwrap())])
        .cookie_format(format)
        .uncached_store(store)
        .catalog(catalog)
        .build()
        .unwrap();
    Router::new().nest("/api/auth", gw.auth_routes())
}

fn now() -> UnixTime {
    UnixTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )
}

/// A session cookie (`name=value`) for a user signed in by an Auth.js app:
/// identity only, no provider account.
fn session_cookie(format: CookieFormat) -> String {
    let codec = SessionCodec::new(format, &[SECRET], false).unwrap();
    let claims = SessionClaims {
        sub: Some("user-1".to_owned()),
        name: Some("Ann Example".to_owned()),
        email: Some("ann@example.test".to_owned()),
        ..Default::default()
    };
    let token = codec.encode(
        &claims,
        now(),
        Duration::from_secs(3600),
        &mut rand::rngs::OsRng,
    );
    format!("{}={token}", codec.cookie_name())
}

/// `GET /api/auth/csrf`: the token and the `name=value` of its cookie.
async fn csrf(app: &Router) -> (String, String) {
    let response = app
        .clone()
        .oneshot(Request::get("/api/auth/csrf").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("authjs.csrf-token="))
        .expect("a CSRF cookie");
    let body = json(response).await;
    (
        body["csrfToken"].as_str().unwrap().to_owned(),
        cookie.split(';').next().unwrap().to_owned(),
    )
}

fn set_cookies(response: &Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// A form POST as `next-auth/react` sends it (`fetch`, form body), with
/// `X-Auth-Return-Redirect: 1` when `v5_header`.
fn form_post(path: &str, cookie: &str, form: &[(&str, &str)], v5_header: bool) -> Request<Body> {
    let mut request = Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookie);
    if v5_header {
        request = request.header("X-Auth-Return-Redirect", "1");
    }
    request
        .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap()
}

#[tokio::test]
async fn sign_in_with_the_return_redirect_header_answers_the_provider_url_as_json() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (token, cookie) = csrf(&app).await;
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signin/op",
            &cookie,
            &[
                ("csrfToken", &token),
                ("callbackUrl", "http://127.0.0.1:4180/protected"),
            ],
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(LOCATION).is_none());
    let cookies = set_cookies(&response);
    for check in ["authjs.state=", "authjs.pkce.code_verifier="] {
        assert!(
            cookies.iter().any(|c| c.starts_with(check)),
            "{check} in {cookies:?}"
        );
    }
    let body = json(response).await;
    let url = url::Url::parse(body["url"].as_str().unwrap()).unwrap();
    assert!(url.as_str().starts_with(AUTHORIZE), "{url}");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["redirect_uri"],
        "http://127.0.0.1:4180/api/auth/callback/op"
    );
    assert!(query.contains_key("state") && query.contains_key("code_challenge"));
}

#[tokio::test]
async fn sign_in_with_next_auth_v4s_json_field_answers_json_too() {
    let app = gateway(CookieFormat::NextAuthV4).await;
    let (token, cookie) = csrf(&app).await;
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signin/op",
            &cookie,
            &[
                ("csrfToken", &token),
                ("callbackUrl", "/"),
                ("json", "true"),
            ],
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    assert!(body["url"].as_str().unwrap().starts_with(AUTHORIZE));
}

#[tokio::test]
async fn a_plain_form_post_still_gets_the_redirect() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (token, cookie) = csrf(&app).await;
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signin/op",
            &cookie,
            &[("csrfToken", &token)],
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with(AUTHORIZE), "{location}");
}

#[tokio::test]
async fn a_refused_sign_in_points_the_client_at_the_sign_in_page_with_auth_js_error_code() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (_, cookie) = csrf(&app).await;
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signin/op",
            &cookie,
            &[("csrfToken", "forged")],
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        set_cookies(&response).is_empty(),
        "no flow starts on a refusal"
    );
    let body = json(response).await;
    assert_eq!(
        body["url"],
        "http://127.0.0.1:4180/api/auth/signin?error=MissingCSRF"
    );
    assert_eq!(body["error"], "MissingCSRF");

    let (token, cookie) = csrf(&app).await;
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signin/nope",
            &cookie,
            &[("csrfToken", &token)],
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json(response).await["url"],
        "http://127.0.0.1:4180/api/auth/signin?error=UnknownProvider"
    );
}

#[tokio::test]
async fn sign_out_with_the_return_redirect_header_answers_the_callback_url_and_ends_the_session() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (token, csrf_cookie) = csrf(&app).await;
    let cookies = format!("{csrf_cookie}; {}", session_cookie(CookieFormat::AuthJs));
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signout",
            &cookies,
            &[
                ("csrfToken", &token),
                ("callbackUrl", "http://127.0.0.1:4180/goodbye?x=1"),
            ],
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let expired = set_cookies(&response);
    assert!(
        expired
            .iter()
            .any(|c| c.starts_with("authjs.session-token=") && c.contains("Max-Age=0")),
        "{expired:?}"
    );
    assert_eq!(
        json(response).await["url"],
        "http://127.0.0.1:4180/goodbye?x=1"
    );
}

#[tokio::test]
async fn sign_out_without_the_csrf_token_keeps_the_session_and_points_at_the_sign_in_page() {
    let app = gateway(CookieFormat::NextAuthV4).await;
    let (_, csrf_cookie) = csrf(&app).await;
    let cookies = format!(
        "{csrf_cookie}; {}",
        session_cookie(CookieFormat::NextAuthV4)
    );
    let response = app
        .clone()
        .oneshot(form_post(
            "/api/auth/signout",
            &cookies,
            &[("csrfToken", "forged"), ("json", "true")],
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(
        json(response).await["url"],
        "http://127.0.0.1:4180/api/auth/signin?error=MissingCSRF"
    );
}

/// `update(data)`: a JSON POST of `{csrfToken, data}` to the session endpoint.
fn update_request(cookies: &str, body: serde_json::Value) -> Request<Body> {
    Request::post("/api/auth/session")
        .header(CONTENT_TYPE, "application/json")
        .header(COOKIE, cookies)
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn update_posts_the_csrf_token_and_gets_the_session_in_auth_js_shape() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (token, csrf_cookie) = csrf(&app).await;
    let cookies = format!("{csrf_cookie}; {}", session_cookie(CookieFormat::AuthJs));
    let response = app
        .clone()
        .oneshot(update_request(
            &cookies,
            serde_json::json!({"csrfToken": token, "data": {"name": "Not Ann"}}),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("authjs.session-token=")),
        "the session rolls, as on GET"
    );
    let session = json(response).await;
    assert_eq!(session["user"]["name"], "Ann Example", "data is not merged");
    assert_eq!(session["user"]["email"], "ann@example.test");
    assert!(session["user"].get("image").is_some());
    let expires = session["expires"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.contains('T'), "{expires}");
}

#[tokio::test]
async fn update_without_the_csrf_token_is_400_and_changes_nothing() {
    let app = gateway(CookieFormat::AuthJs).await;
    let (_, csrf_cookie) = csrf(&app).await;
    let cookies = format!("{csrf_cookie}; {}", session_cookie(CookieFormat::AuthJs));
    for body in [
        serde_json::json!({"data": {}}),
        serde_json::json!({"csrfToken": "forged"}),
    ] {
        let response = app
            .clone()
            .oneshot(update_request(&cookies, body))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(set_cookies(&response).is_empty());
        assert_eq!(json(response).await["error"], "MissingCSRF");
    }
}

#[tokio::test]
async fn no_session_is_null_for_auth_js_and_an_empty_object_for_next_auth_v4() {
    for (format, expected) in [
        (CookieFormat::AuthJs, serde_json::Value::Null),
        (CookieFormat::NextAuthV4, serde_json::json!({})),
    ] {
        let app = gateway(format).await;
        let response = app
            .clone()
            .oneshot(
                Request::get("/api/auth/session")
                    .header(CONTENT_TYPE, "application/json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json(response).await, expected, "{format:?}");
    }
}

#[tokio::test]
async fn the_sign_in_page_explains_auth_js_error_codes_and_keeps_an_absolute_same_origin_callback()
{
    let app = gateway(CookieFormat::AuthJs).await;
    // useSession({ required: true }) sends the browser here with its absolute href.
    for (error, sentence) in [
        ("SessionRequired", "Please sign in to continue."),
        ("MissingCSRF", "The sign-in form expired. Please try again."),
        (
            "RefreshTokenError",
            "Your sign-in has expired. Please sign in again.",
        ),
    ] {
        let uri = format!(
            "/api/auth/signin?error={error}&callbackUrl={}",
            url::form_urlencoded::byte_serialize(b"http://127.0.0.1:4180/protected?tab=2")
                .collect::<String>()
        );
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let html = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(html.contains(sentence), "{error}: {html}");
        assert!(html.contains("/protected?tab=2"), "{html}");
        assert!(
            !html.contains("http://127.0.0.1:4180/protected"),
            "kept as a path"
        );
    }
}
