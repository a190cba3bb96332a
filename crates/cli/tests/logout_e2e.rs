//! Logout with the provider, end to end against the real `oidc-provider`
//! npm peer: OpenID Connect RP-Initiated Logout (`signout = "provider"`)
//! and Back-Channel Logout (`POST /auth/backchannel-logout/op`), for both
//! session strategies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate::app::{App, Migrations};
use authgate_config::Config;
use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, login_with_dev_interactions_in};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// How the peer's client and the gateway are set up.
#[derive(Clone, Copy)]
struct Setup {
    /// `signout = "provider"`.
    rp_logout: bool,
    /// Register a back-channel logout URI (the gateway's, or the recorder's).
    backchannel: bool,
    /// Logout Tokens carry `sid` (else only `sub`).
    session_required: bool,
    /// Access-token lifetime at the peer.
    access_ttl: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            rp_logout: false,
            backchannel: false,
            session_required: true,
            access_ttl: 60,
        }
    }
}

struct Env {
    gw: Gateway,
    peer: OidcProviderPeer,
    /// What the recorder in front of the back-channel endpoint received.
    recorded: Arc<Mutex<Vec<(u16, String)>>>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    fn url(&self, path: &str) -> String {
        self.gw.url.join(path).unwrap().to_string()
    }
}

/// An HTTP client for loopback calls (no proxy from the environment).
fn direct() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A recorder in front of the gateway's back-channel endpoint: forwards
/// each Logout Token post and remembers the gateway's status and the body.
async fn recorder(
    target: String,
    recorded: Arc<Mutex<Vec<(u16, String)>>>,
) -> (Url, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/logout", listener.local_addr().unwrap())).unwrap();
    let app = axum::Router::new().route(
        "/logout",
        axum::routing::post(move |body: String| {
            let (target, recorded) = (target.clone(), recorded.clone());
            async move {
                let r = direct()
                    .post(&target)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                recorded.lock().unwrap().push((status, body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

async fn env(setup: Setup, session_extra: &str) -> Env {
    let reserved = reserve().await;
    let root = reserved.url.to_string();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let mut client =
        PeerClient::confidential("test", "test-secret", &format!("{root}auth/callback/op"));
    client.post_logout_redirect_uris = vec![root.clone()];
    if setup.backchannel {
        let (uri, task) = recorder(
            format!("{root}auth/backchannel-logout/op"),
            recorded.clone(),
        )
        .await;
        tasks.push(task);
        client.backchannel_logout_uri = Some(uri.to_string());
        client.backchannel_logout_session_required = Some(setup.session_required);
    }
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![client],
        access_token_ttl_secs: setup.access_ttl,
        backchannel_logout: setup.backchannel,
        ..Default::default()
    })
    .await;
    let (upstream, task) = echo_upstream().await;
    tasks.push(task);
    let mut toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        session_extra,
        "inline",
    )
    .replace(
        "http://127.0.0.1:9",
        upstream.as_str().trim_end_matches('/'),
    )
    .replace("skew = \"2s\"", "skew = \"1s\"");
    if setup.rp_logout {
        toml = toml.replace(
            "authorization_params = { prompt = \"consent\" }",
            "authorization_params = { prompt = \"consent\" }\nsignout = \"provider\"",
        );
    }
    Env {
        gw: start(reserved, &toml).await,
        peer,
        recorded,
        _tasks: tasks,
    }
}

/// Signs in as `login` in `b`, whose jar also keeps the provider's cookies;
/// returns the interaction prompts the provider showed.
async fn sign_in(env: &Env, b: &mut Browser, login: &str) -> Vec<String> {
    let r = b.get(&env.url("/auth/signin/op?callbackUrl=%2F")).await;
    assert_eq!(r.status(), 302, "sign-in start");
    let authorize = Url::parse(&location(&r)).unwrap();
    let done = login_with_dev_interactions_in(&mut b.cookies, &authorize, login).await;
    let r = b.get(done.callback.as_str()).await;
    assert_eq!(
        r.status(),
        302,
        "callback: {}",
        r.text().await.unwrap_or_default()
    );
    done.prompts
}

/// The session's user e-mail, or `None` when the gateway answers no session.
async fn session_email(env: &Env, b: &mut Browser) -> Option<String> {
    let r = b.get(&env.url("/auth/session")).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["user"]["email"].as_str().map(str::to_owned)
}

/// The `action` and hidden `xsrf` of oidc-provider's logout confirmation page.
fn logout_form(html: &str) -> (String, String) {
    let form = &html[html.find("op.logoutForm").expect("the logout form")..];
    let action = form
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let xsrf = form
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    (action.replace("&amp;", "&"), xsrf.to_owned())
}

/// Confirms the provider's logout page at `url` (as the user pressing "Yes,
/// sign me out"); returns where the provider sends the browser then.
async fn confirm_logout_at_provider(b: &mut Browser, url: &str) -> String {
    let r = b.get(url).await;
    assert_eq!(r.status(), 200, "the provider's logout page");
    let (action, xsrf) = logout_form(&r.text().await.unwrap());
    let r = b
        .post_form(&action, &[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    location(&r)
}

fn jwt_payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_provider_session_and_returns_to_the_post_logout_redirect_uri()
{
    let env = env(
        Setup {
            rp_logout: true,
            ..Setup::default()
        },
        "",
    )
    .await;
    let mut b = Browser::new();
    let prompts = sign_in(&env, &mut b, "alice").await;
    assert!(prompts.contains(&"login".to_owned()), "{prompts:?}");
    assert_eq!(
        session_email(&env, &mut b).await.as_deref(),
        Some("alice@example.test")
    );

    let csrf = b.csrf(&env.gw.url).await;
    let r = b
        .post_form(&env.url("/auth/signout"), &[("csrfToken", csrf.as_str())])
        .await;
    assert_eq!(r.status(), 302);
    let end_session = Url::parse(&location(&r)).unwrap();
    assert_eq!(
        end_session.as_str().split('?').next().unwrap(),
        env.peer.issuer().join("/session/end").unwrap().as_str()
    );
    let q: std::collections::HashMap<String, String> =
        end_session.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], env.gw.url.as_str());
    assert_eq!(q["client_id"], "test");
    let hint = jwt_payload(&q["id_token_hint"]);
    assert_eq!(hint["sub"], "alice");
    assert_eq!(hint["aud"], "test");
    assert_eq!(
        hint["iss"],
        env.peer.issuer().as_str().trim_end_matches('/')
    );
    // The gateway's session is over before the browser reaches the provider.
    assert_eq!(session_email(&env, &mut b).await, None);

    let back = confirm_logout_at_provider(&mut b, end_session.as_str()).await;
    assert_eq!(
        back,
        env.gw.url.as_str(),
        "back at post_logout_redirect_uri"
    );
    let r = b.get(&back).await;
    assert_eq!(r.status(), 200, "the application's page");
    assert_eq!(env.peer.stats().await.end_sessions, 1);

    // The provider's session is gone: signing in again needs the login form.
    let prompts = sign_in(&env, &mut b, "alice").await;
    assert!(
        prompts.contains(&"login".to_owned()),
        "the provider asked for the login again: {prompts:?}"
    );
    assert_eq!(
        session_email(&env, &mut b).await.as_deref(),
        Some("alice@example.test")
    );
}

#[tokio::test]
async fn without_provider_logout_the_provider_session_stays_and_sign_in_skips_the_login_form() {
    let env = env(Setup::default(), "").await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "alice").await;
    let csrf = b.csrf(&env.gw.url).await;
    let r = b
        .post_form(
            &env.url("/auth/signout"),
            &[("csrfToken", csrf.as_str()), ("callbackUrl", "/bye")],
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/bye", "signout = \"local\" stays local");
    let prompts = sign_in(&env, &mut b, "alice").await;
    assert!(
        !prompts.contains(&"login".to_owned()),
        "the provider still knew the browser: {prompts:?}"
    );
}

#[tokio::test]
async fn sign_out_by_fetch_gets_the_end_session_url_as_json() {
    let env = env(
        Setup {
            rp_logout: true,
            ..Setup::default()
        },
        "",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "bob").await;
    let csrf = b.csrf(&env.gw.url).await;
    let r = b
        .client
        .post(env.url("/auth/signout"))
        .header("cookie", b.cookie_header())
        .header("x-auth-return-redirect", "1")
        .form(&[("csrfToken", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.absorb(&r);
    let v: serde_json::Value = r.json().await.unwrap();
    let url = Url::parse(v["url"].as_str().unwrap()).unwrap();
    assert!(url.path().ends_with("/session/end"), "{url}");
    assert!(url.query_pairs().any(|(k, _)| k == "id_token_hint"));
    assert_eq!(session_email(&env, &mut b).await, None);
    let back = confirm_logout_at_provider(&mut b, url.as_str()).await;
    assert_eq!(back, env.gw.url.as_str());
}

#[tokio::test]
async fn provider_logout_without_an_end_session_endpoint_is_refused_at_start() {
    let reserved = reserve().await;
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{}auth/callback/op", reserved.url),
        )],
        rp_initiated_logout: false,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        &format!("sqlite://{}", dir.path().join("a.db").display()),
        "",
        "inline",
    )
    .replace(
        "authorization_params = { prompt = \"consent\" }",
        "authorization_params = { prompt = \"consent\" }\nsignout = \"provider\"",
    );
    let config = Config::from_sources(Some(("test.toml", &toml)), std::iter::empty()).unwrap();
    let Err(error) = App::build(&config, Migrations::Apply).await else {
        panic!("a provider logout without an end-session endpoint must not start");
    };
    let text = format!("{error:#}");
    let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        chain.contains("\"op\"") && chain.contains("end_session_endpoint"),
        "{text} / {chain}"
    );
}

/// Signs out at the provider itself (its `/session/end`, confirmed), which
/// posts a Logout Token to the gateway through the recorder.
async fn logout_at_provider(env: &Env, b: &mut Browser) {
    let end = env.peer.issuer().join("/session/end").unwrap();
    confirm_logout_at_provider(b, end.as_str()).await;
    let stats = env.peer.stats().await;
    assert_eq!(
        (stats.backchannel_logouts, stats.backchannel_errors),
        (1, 0),
        "the gateway accepted the Logout Token: {:?} / {}",
        env.recorded.lock().unwrap(),
        env.peer.log()
    );
}

#[tokio::test]
async fn back_channel_logout_ends_a_database_session_at_its_next_request() {
    let env = env(
        Setup {
            backchannel: true,
            ..Setup::default()
        },
        "strategy = \"database\"",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "carol").await;
    let mut other = Browser::new();
    sign_in(&env, &mut other, "carol").await;
    assert!(session_email(&env, &mut b).await.is_some());

    logout_at_provider(&env, &mut b).await;
    assert_eq!(session_email(&env, &mut b).await, None);
    let r = b.get(&env.url("/api/data")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        session_email(&env, &mut other).await.as_deref(),
        Some("carol@example.test"),
        "the Logout Token names one provider session (sid): another browser's stays"
    );
}

#[tokio::test]
async fn back_channel_logout_ends_a_jwt_session_at_its_next_request_with_revocation_check_request()
{
    let env = env(
        Setup {
            backchannel: true,
            ..Setup::default()
        },
        "revocation_check = \"request\"",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "dave").await;
    let r = b.get(&env.url("/api/data")).await;
    assert_eq!(r.status(), 200);

    logout_at_provider(&env, &mut b).await;
    let r = b.get(&env.url("/api/data")).await;
    assert_eq!(r.status(), 401, "refused at the next request");
    assert_eq!(session_email(&env, &mut b).await, None);
}

#[tokio::test]
async fn back_channel_logout_ends_a_jwt_session_at_its_next_refresh_by_default() {
    let env = env(
        Setup {
            backchannel: true,
            access_ttl: 8,
            ..Setup::default()
        },
        "",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "erin").await;
    let signed_in = std::time::Instant::now();
    logout_at_provider(&env, &mut b).await;
    let r = b.get(&env.url("/api/data")).await;
    if signed_in.elapsed() < Duration::from_secs(6) {
        assert_eq!(
            r.status(),
            200,
            "no I/O on the fast path: the cookie lives until its token needs a refresh"
        );
    }
    // The access token (8 s, skew 1 s) is stale after 7 s.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(signed_in.elapsed())).await;
    let r = b.get(&env.url("/api/data")).await;
    assert_eq!(r.status(), 401, "refused at the refresh's record check");
    assert_eq!(session_email(&env, &mut b).await, None);
}

#[tokio::test]
async fn a_logout_token_naming_only_the_user_ends_all_their_sessions_and_the_grant() {
    let env = env(
        Setup {
            backchannel: true,
            session_required: false,
            ..Setup::default()
        },
        "strategy = \"database\"",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "frank").await;
    let mut other = Browser::new();
    sign_in(&env, &mut other, "frank").await;

    logout_at_provider(&env, &mut b).await;
    assert_eq!(session_email(&env, &mut b).await, None);
    assert_eq!(session_email(&env, &mut other).await, None);
    let account = env
        .gw
        .store
        .find_account_by_provider("op", "frank")
        .await
        .unwrap()
        .unwrap();
    let stored = env
        .gw
        .store
        .read_tokens(&account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.tokens.is_none(), "the grant ended with the sessions");
}

#[tokio::test]
async fn a_replayed_or_forged_logout_token_is_refused_with_invalid_request() {
    let env = env(
        Setup {
            backchannel: true,
            ..Setup::default()
        },
        "",
    )
    .await;
    let mut b = Browser::new();
    sign_in(&env, &mut b, "grace").await;
    logout_at_provider(&env, &mut b).await;
    let (status, body) = env.recorded.lock().unwrap()[0].clone();
    assert_eq!(status, 200);

    let http = direct();
    let post = |body: String| {
        http.post(env.url("/auth/backchannel-logout/op"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 400, "a replayed jti");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");

    // The same token with one character of its signature changed.
    let token: String = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    let at = token.rfind('.').unwrap() + 10;
    let mut forged = token.clone();
    let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, swapped);
    for body in [
        format!("logout_token={forged}"),
        "logout_token=not-a-jwt".to_owned(),
        String::new(),
        format!("logout_token={token}&logout_token={token}"),
    ] {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
    }
    let r = http
        .post(env.url("/auth/backchannel-logout/nope"))
        .form(&[("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
