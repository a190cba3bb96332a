//! The Next.js example *beside* authgate: the app serves itself and its own
//! `next.config.mjs` rewrites only `/api/auth/*` to authgate, so the browser
//! sees one origin and authgate's cookies stay on the app's. The app's
//! middleware checks the session cookie locally (Auth.js's decoder, same
//! secret) and strips identity headers clients send; a server component
//! obtains the user's access token from `POST /api/auth/token` with the
//! app server's service-client credentials and the user's cookie.
//!
//! Pinned here, through a real `next start` (built with the rewrite) and a
//! real gateway: sign-in through the rewrite, the token endpoint feeding a
//! server component, ten concurrent server-side token requests after expiry
//! costing exactly one refresh grant, forged identity headers ignored, the
//! token endpoint refusing browsers that reach it through the rewrite, and
//! a copy of a signed-out cookie that passes the local check but gets no
//! token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::client_secret::SecretHash;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::nextjs::{Deployment, build_example, free_port, start_next};
use common::{Browser, Reserved, location, urlencode};
use std::time::{Duration, Instant};

const SECRET: &str = "nextjs-beside-test-secret-32-chars!!!";
const CLIENT_ID: &str = "nextjs-beside";
const CLIENT_SECRET: &str = "nextjs-beside-secret";
/// The app server's service-client secret.
const SERVER_SECRET: &str = "kP4vZ9qW2sX7cN1mB6tR0yL3hF8jD5gA-eUoIiQ_Ts";
/// Access tokens live 12 s and are stale 2 s early.
const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(12);
const SKEW_SECS: u64 = 2;

/// authgate beside the app: no upstream, public URL = the app's origin (the
/// browser reaches authgate only through the app's rewrite), the app server
/// as a service client allowed `token`.
async fn start_gateway(reserved: Reserved, app: &str, issuer: &str) -> common::Gateway {
    let hash = SecretHash::new(SERVER_SECRET.as_bytes(), &mut rand::rngs::OsRng);
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{app}"
base_path = "/api/auth"

[session]
secret = ["{SECRET}"]

[refresh]
mode = "inline"
skew = "{SKEW_SECS}s"
timeout = "30s"

[store]
url = "{{db}}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "Local OP"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = ["openid", "email", "profile", "offline_access"]

[[service_clients]]
id = "next-server"
secret_hash = "{hash}"
allow = ["token"]
"#
    );
    common::start(reserved, &toml).await
}

/// The page's value for `data-testid`, HTML entities for quotes undone.
fn test_id(html: &str, id: &str) -> String {
    let marker = format!("data-testid=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in the page:\n{html}"))
        + marker.len();
    let end = html[start..].find('<').unwrap() + start;
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// `GET {app}/protected/token` with `cookies`: the status and the page.
async fn token_page(client: reqwest::Client, app: String, cookies: String) -> (u16, String) {
    let response = client
        .get(format!("{app}/protected/token"))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asserts the page obtained a token from the endpoint and called the API
/// with it as `user`.
fn assert_token_page_ok(html: &str, user: &str) {
    assert_eq!(test_id(html, "token-user"), user, "{html}");
    assert_eq!(test_id(html, "token-source"), "token endpoint");
    assert_eq!(test_id(html, "token-outcome"), "ok");
    let api: serde_json::Value = serde_json::from_str(&test_id(html, "token-api-result")).unwrap();
    assert_eq!(api["ok"], true, "the API accepted the token: {api}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_js_app_beside_authgate_signs_in_through_its_rewrite_and_gets_tokens_from_the_endpoint()
 {
    let reserved = common::reserve().await;
    let authgate_url = reserved.url.as_str().trim_end_matches('/').to_owned();
    // Next.js fixes rewrites at build time: the build names this gateway.
    build_example(Deployment::Beside(&authgate_url));
    let dir = tempfile::Builder::new()
        .prefix("authgate-nextjs-beside-")
        .tempdir()
        .unwrap();

    let idp = DevIdp::bind(
        "127.0.0.1:0".parse().unwrap(),
        DevIdpConfig {
            access_token_ttl: ACCESS_TOKEN_TTL,
            ..DevIdpConfig::default()
        }
        .with_client(DevClient::new(CLIENT_ID, CLIENT_SECRET).allow_any_loopback_redirect()),
    )
    .await
    .unwrap();
    let issuer = idp.issuer_str().to_owned();
    let next_port = free_port();
    // `localhost`, not 127.0.0.1: Next.js rewrites loopback addresses in the
    // middleware's redirects to `localhost`, and cookies are per host name.
    let app = format!("http://localhost:{next_port}");
    let gateway = start_gateway(reserved, &app, &issuer).await;
    let mut next = start_next(
        dir.path(),
        Deployment::Beside(&authgate_url),
        next_port,
        &[
            ("AUTH_SECRET", SECRET),
            ("OIDC_ISSUER", &issuer),
            ("AUTHGATE_URL", &authgate_url),
            ("AUTHGATE_CLIENT_ID", "next-server"),
            ("AUTHGATE_CLIENT_SECRET", SERVER_SECRET),
        ],
    )
    .await;

    // The app's middleware sends a visitor without a session to sign in, on
    // the app's own origin.
    let mut browser = Browser::new();
    let r = browser.get(&format!("{app}/protected/token")).await;
    assert_eq!(r.status(), 307, "the middleware redirects to sign in");
    let to_sign_in = location(&r);
    assert_eq!(
        to_sign_in,
        format!("{app}/api/auth/signin?callbackUrl=%2Fprotected%2Ftoken")
    );
    // authgate answers that sign-in page through the rewrite.
    let r = browser.get(&to_sign_in).await;
    assert_eq!(r.status(), 200, "authgate's sign-in page via the rewrite");
    assert!(r.text().await.unwrap().contains("Local OP"));

    // Sign in: every step on the app's origin, through the rewrite.
    let r = browser
        .get(&format!(
            "{app}/api/auth/signin/op?callbackUrl={}",
            urlencode("/protected/token")
        ))
        .await;
    assert_eq!(r.status(), 302, "{:?}", r.headers());
    let authorize = location(&r);
    let callback = authgate_testkit::login_with_dev_provider(&authorize, "ada", Some("Ada")).await;
    assert!(
        callback.starts_with(&format!("{app}/api/auth/callback/op?")),
        "the provider returns to the app's origin: {callback}"
    );
    let r = browser.get(&callback).await;
    assert_eq!(r.status(), 302, "callback through the rewrite");
    let back = url::Url::parse(&app).unwrap().join(&location(&r)).unwrap();
    assert_eq!(back.as_str(), format!("{app}/protected/token"));
    assert!(
        browser.cookies.contains_key("authjs.session-token"),
        "authgate's session cookie reached the browser on the app's origin: {:?}",
        browser.cookies.keys()
    );

    // next-auth/react's session endpoint, through the rewrite.
    let r = browser.get(&format!("{app}/api/auth/session")).await;
    let session: serde_json::Value = r.json().await.unwrap();
    assert_eq!(session["user"]["name"], "Ada", "{session}");
    let user_id = gateway
        .store
        .find_account_by_provider("op", "ada")
        .await
        .unwrap()
        .expect("the account")
        .user_id
        .to_string();

    // The server component gets a token from the endpoint and uses it.
    let (status, html) =
        token_page(browser.client.clone(), app.clone(), browser.cookie_header()).await;
    assert_eq!(status, 200, "{html}");
    assert_token_page_ok(&html, &user_id);
    let stats = idp.stats();
    assert_eq!(stats.refresh_grants, 0, "a fresh token needs no grant");

    // Identity headers sent by a client never reach the app's code.
    let forged = browser
        .client
        .get(format!("{app}/api/me"))
        .header("x-auth-request-user", "mallory")
        .header("x-forwarded-access-token", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "forged headers without a session");
    let mine: serde_json::Value = browser
        .client
        .get(format!("{app}/api/me"))
        .header("cookie", browser.cookie_header())
        .header("x-auth-request-user", "mallory")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["user"]["id"], user_id.as_str(), "{mine}");

    // A browser reaching the token endpoint through the rewrite gets nothing,
    // even with the server's credentials (leaked into front-end code).
    let server_basic = format!(
        "Basic {}",
        STANDARD.encode(format!("next-server:{SERVER_SECRET}"))
    );
    for (credentials, expected) in [(None, 401), (Some(server_basic.as_str()), 403)] {
        let mut request = browser
            .client
            .post(format!("{app}/api/auth/token"))
            .header("cookie", browser.cookie_header())
            .header("origin", &app)
            .header("sec-fetch-site", "same-origin")
            .json(&serde_json::json!({}));
        if let Some(credentials) = credentials {
            request = request.header("authorization", credentials);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), expected, "browser call with {credentials:?}");
        assert!(!r.text().await.unwrap().contains("access_token"));
    }

    // After expiry, ten concurrent server-side token requests (ten renders of
    // the page) cost exactly one refresh grant.
    let stale_at = Instant::now() + ACCESS_TOKEN_TTL - Duration::from_secs(SKEW_SECS);
    tokio::time::sleep_until((stale_at + Duration::from_millis(500)).into()).await;
    let before = idp.stats().refresh_grants;
    let mut pages = tokio::task::JoinSet::new();
    for _ in 0..10 {
        pages.spawn(token_page(
            browser.client.clone(),
            app.clone(),
            browser.cookie_header(),
        ));
    }
    while let Some(page) = pages.join_next().await {
        let (status, html) = page.unwrap();
        assert_eq!(status, 200, "{html}");
        assert_token_page_ok(&html, &user_id);
    }
    let stats = idp.stats();
    assert_eq!(
        stats.refresh_grants - before,
        1,
        "ten concurrent token requests after expiry: one grant"
    );
    assert_eq!(stats.reuse_detections, 0);

    // Sign out through the rewrite; a copy of the old cookie still passes the
    // middleware's local check, but the token endpoint (the authority) says
    // signed out and the page sends the user to sign in again.
    let old_cookies = browser.cookie_header();
    let csrf: serde_json::Value = browser
        .get(&format!("{app}/api/auth/csrf"))
        .await
        .json()
        .await
        .unwrap();
    let csrf = csrf["csrfToken"].as_str().unwrap().to_owned();
    let r = browser
        .post_form(
            &format!("{app}/api/auth/signout"),
            &[("csrfToken", csrf.as_str()), ("callbackUrl", "/")],
        )
        .await;
    assert!(r.status().is_redirection(), "sign-out: {}", r.status());
    assert!(!browser.cookies.contains_key("authjs.session-token"));
    let r = browser.get(&format!("{app}/protected/token")).await;
    assert_eq!(
        r.status(),
        307,
        "signed out: the middleware asks to sign in"
    );
    let copy = browser
        .client
        .get(format!("{app}/protected/token"))
        .header("cookie", old_cookies)
        .send()
        .await
        .unwrap();
    assert!(
        copy.status().is_redirection(),
        "a signed-out copy gets no token: {}",
        copy.status()
    );
    assert!(
        location(&copy).contains("/api/auth/signin?callbackUrl=%2Fprotected%2Ftoken"),
        "{}",
        location(&copy)
    );

    next.assert_running();
    drop(next);
}
