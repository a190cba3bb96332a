//! Hostile sign-in callbacks (issue 4): forged, replayed, expired and
//! cross-provider `state`; PKCE mismatch; provider refusals; ID tokens that
//! must not verify; provider error dialects at the token endpoint; open
//! redirects through `callbackUrl`; CSRF on the state-changing POSTs.
//!
//! Every refusal is checked twice — as a browser (an HTML error page) and as
//! an API client (`{"error", "error_description"}` JSON) — for its status and
//! code, that no session cookie was set, and that nothing was stored.
//!
//! Most tests run against [`FakeOp`], a small in-process OpenID provider whose
//! token endpoint answers whatever the test scripts; PKCE and code replay run
//! against the real `oidc-provider` peer, whose verdict is what matters there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::cookie::{CheckCodec, CheckKind};
use authgate_core::time::UnixTime;
use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, login_with_dev_interactions};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use url::Url;

/// The session secret of [`config_toml`].
const SECRET: &str = "test-secret-at-least-32-chars-long!!";
/// Who the fake provider signs in.
const FAKE_SUB: &str = "fake-user";
const FAKE_EMAIL: &str = "mallory@example.test";
const SESSION_COOKIE: &str = "authjs.session-token";
const STATE_COOKIE: &str = "authjs.state";
const PKCE_COOKIE: &str = "authjs.pkce.code_verifier";

// ---------------------------------------------------------------------------
// A scriptable fake OpenID provider.
// ---------------------------------------------------------------------------

/// What is wrong with the ID token the fake issues.
#[derive(Debug, Clone, Copy)]
enum IdTokenFault {
    WrongIssuer,
    WrongAudience,
    WrongNonce,
    Expired,
    AlgNone,
    UnknownKid,
    /// Not a fault of the token: `email_verified: false`.
    UnverifiedEmail,
    /// Not a fault of the token: no `email_verified` claim (OIDC Core §5.1:
    /// unverified), as Microsoft Entra ID sends it.
    EmailVerifiedAbsent,
}

/// How the fake's token endpoint answers.
#[derive(Debug, Clone)]
enum TokenAnswer {
    /// Tokens with a valid ID token.
    Valid,
    /// Tokens with a faulty ID token.
    BadIdToken(IdTokenFault),
    /// A scripted raw HTTP answer.
    Raw {
        status: u16,
        content_type: &'static str,
        body: &'static str,
        /// One extra response header (`Retry-After`, `Location`).
        header: Option<(&'static str, &'static str)>,
    },
}

struct SigningKey {
    encoding: EncodingKey,
    kid: String,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "kid": kid,
            "use": "sig",
            "alg": "ES256",
        });
        Self {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            kid: kid.to_owned(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

struct FakeState {
    issuer: String,
    /// Published in the JWKS.
    key: SigningKey,
    /// Never published: tokens signed with it carry an unknown `kid`.
    stranger: SigningKey,
    answer: Mutex<TokenAnswer>,
    token_requests: AtomicU64,
    /// Requests to `/elsewhere`, where a redirecting token endpoint points.
    elsewhere_requests: AtomicU64,
}

/// An OpenID provider on 127.0.0.1: discovery, JWKS, an authorize endpoint
/// that immediately redirects back with `code` and `state` (the code carries
/// the nonce, so the token endpoint can echo it), a scriptable token
/// endpoint and userinfo.
struct FakeOp {
    issuer: String,
    state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(FakeState {
            issuer: issuer.clone(),
            key: SigningKey::generate("fake-key-1"),
            stranger: SigningKey::generate("rotated-away"),
            answer: Mutex::new(TokenAnswer::Valid),
            token_requests: AtomicU64::new(0),
            elsewhere_requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/elsewhere", get(elsewhere).post(elsewhere))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            issuer,
            state,
            task,
        }
    }

    fn answer(&self, answer: TokenAnswer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    fn token_requests(&self) -> u64 {
        self.state.token_requests.load(Ordering::SeqCst)
    }
}

async fn discovery(State(s): State<Arc<FakeState>>) -> Json<Value> {
    let i = &s.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

async fn jwks(State(s): State<Arc<FakeState>>) -> Json<Value> {
    Json(json!({ "keys": [s.key.jwk] }))
}

async fn authorize(Query(q): Query<HashMap<String, String>>) -> Response {
    let mut back = Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair(
            "code",
            &format!("c.{}", q.get("nonce").map_or("", String::as_str)),
        )
        .append_pair("state", q.get("state").map_or("", String::as_str));
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(
    State(s): State<Arc<FakeState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    let answer = s.answer.lock().unwrap().clone();
    let nonce = form
        .get("code")
        .and_then(|c| c.strip_prefix("c."))
        .unwrap_or("")
        .to_owned();
    let fault = match answer {
        TokenAnswer::Raw {
            status,
            content_type,
            body,
            header,
        } => {
            let mut r = (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, content_type)],
                body,
            )
                .into_response();
            if let Some((name, value)) = header {
                r.headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            return r;
        }
        TokenAnswer::Valid => None,
        TokenAnswer::BadIdToken(f) => Some(f),
    };
    let now = now_secs();
    let mut claims = json!({
        "iss": s.issuer,
        "sub": FAKE_SUB,
        "aud": "test",
        "iat": now,
        "exp": now + 600,
        "nonce": nonce,
        "email": FAKE_EMAIL,
        "email_verified": true,
        "name": "Mallory",
    });
    let id_token = match fault {
        None => s.key.sign(&claims),
        Some(IdTokenFault::WrongIssuer) => {
            claims["iss"] = json!("http://evil.example");
            s.key.sign(&claims)
        }
        Some(IdTokenFault::WrongAudience) => {
            claims["aud"] = json!("another-client");
            s.key.sign(&claims)
        }
        Some(IdTokenFault::WrongNonce) => {
            claims["nonce"] = json!("not-the-nonce-the-gateway-sent");
            s.key.sign(&claims)
        }
        Some(IdTokenFault::Expired) => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
            s.key.sign(&claims)
        }
        Some(IdTokenFault::AlgNone) => format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ),
        Some(IdTokenFault::UnknownKid) => s.stranger.sign(&claims),
        Some(IdTokenFault::UnverifiedEmail) => {
            claims["email_verified"] = json!(false);
            s.key.sign(&claims)
        }
        Some(IdTokenFault::EmailVerifiedAbsent) => {
            claims.as_object_mut().unwrap().remove("email_verified");
            s.key.sign(&claims)
        }
    };
    Json(json!({
        "access_token": format!("at-{nonce}"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("rt-{nonce}"),
        "id_token": id_token,
    }))
    .into_response()
}

async fn elsewhere(State(s): State<Arc<FakeState>>) -> StatusCode {
    s.elsewhere_requests.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn userinfo() -> Json<Value> {
    Json(json!({ "sub": FAKE_SUB, "email": FAKE_EMAIL, "name": "Mallory" }))
}

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn checks() -> CheckCodec {
    CheckCodec::new(&[SECRET], false).unwrap()
}

/// A gateway whose provider `op` (plus whatever `extra_toml` adds) is the fake.
async fn gateway_with_fake(extra_toml: &str) -> (Gateway, FakeOp) {
    let fake = FakeOp::start().await;
    let reserved = reserve().await;
    let toml = config_toml(&reserved.url, &fake.issuer, "{db}", "", "inline") + extra_toml;
    let gw = start(reserved, &toml).await;
    (gw, fake)
}

/// A gateway whose provider `op` is the real `oidc-provider` peer.
async fn gateway_with_peer() -> (Gateway, OidcProviderPeer) {
    let reserved = reserve().await;
    let redirect = format!("{}auth/callback/op", reserved.url);
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential("test", "test-secret", &redirect)],
        ..Default::default()
    })
    .await;
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        "{db}",
        "",
        "inline",
    );
    let gw = start(reserved, &toml).await;
    (gw, peer)
}

/// Starts a sign-in at `provider`: the browser now holds the check cookies;
/// returns it with the provider's authorization URL.
async fn begin(gw: &Url, provider: &str, callback_url: Option<&str>) -> (Browser, Url) {
    let mut b = Browser::new();
    let mut url = gw.join(&format!("/auth/signin/{provider}")).unwrap();
    if let Some(cb) = callback_url {
        url.query_pairs_mut().append_pair("callbackUrl", cb);
    }
    let r = b.get(url.as_str()).await;
    assert_eq!(r.status(), 302, "sign-in start");
    assert!(b.cookies.contains_key(STATE_COOKIE), "state cookie set");
    (b, Url::parse(&location(&r)).unwrap())
}

/// Starts a sign-in and lets the fake provider answer: returns the browser
/// and the gateway callback URL the provider redirected to (not yet visited).
async fn begin_at_fake(gw: &Url, callback_url: Option<&str>) -> (Browser, Url) {
    let (mut b, authorize) = begin(gw, "op", callback_url).await;
    let r = b.get(authorize.as_str()).await;
    assert_eq!(r.status(), 302, "fake authorize");
    (b, Url::parse(&location(&r)).unwrap())
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with its query replaced by `params`.
fn with_query(url: &Url, params: &[(&str, &str)]) -> String {
    let mut u = url.clone();
    u.set_query(None);
    if !params.is_empty() {
        u.query_pairs_mut().extend_pairs(params);
    }
    u.to_string()
}

fn cookie_header(cookies: &BTreeMap<String, String>) -> String {
    cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The browser's cookies with `name` replaced (`Some`) or removed (`None`).
fn cookies_with(b: &Browser, name: &str, value: Option<&str>) -> String {
    let mut c = b.cookies.clone();
    match value {
        Some(v) => c.insert(name.to_owned(), v.to_owned()),
        None => c.remove(name),
    };
    cookie_header(&c)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Whether a response sets (not expires) a session cookie or chunk.
fn sets_session(r: &reqwest::Response) -> bool {
    set_cookies(r)
        .iter()
        .any(|c| c.starts_with(SESSION_COOKIE) && !c.contains("Max-Age=0"))
}

/// Sends the request built by `req` twice — as a browser and as an API
/// client — and asserts a refusal with `status` and `code` each time: an
/// HTML error page, then `{"error": code, "error_description": …}`; never
/// a 500, never a session cookie. Returns the JSON answer's headers.
async fn assert_refused(
    what: &str,
    req: impl Fn() -> reqwest::RequestBuilder,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    let r = req()
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 500, "{what}: never a 500");
    assert_eq!(r.status(), status, "{what} (browser)");
    assert!(!sets_session(&r), "{what}: no session cookie (browser)");
    let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{what}: HTML page, got {ct}");
    let reason = r.status().canonical_reason().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains(&format!("<h1>{reason}</h1>")),
        "{what}: error page: {html}"
    );

    let r = req()
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), status, "{what} (API)");
    assert!(!sets_session(&r), "{what}: no session cookie (API)");
    let headers = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: a description: {body}"
    );
    headers
}

/// Asserts a refused GET of `url` with exactly `cookies`.
async fn assert_refused_get(what: &str, url: &str, cookies: &str, status: u16, code: &str) {
    let c = client();
    assert_refused(
        what,
        || c.get(url).header(COOKIE, cookies.to_owned()),
        status,
        code,
    )
    .await;
}

/// Nobody was stored for `sub` / `email`.
async fn assert_nothing_stored(gw: &Gateway, sub: &str, email: &str) {
    assert!(
        gw.store
            .find_account_by_provider("op", sub)
            .await
            .unwrap()
            .is_none(),
        "no account for {sub}"
    );
    assert!(
        gw.store.find_user_by_email(email).await.unwrap().is_none(),
        "no user {email}"
    );
}

async fn session_json(gw: &Url, b: &mut Browser) -> Value {
    b.get(gw.join("/auth/session").unwrap().as_str())
        .await
        .json()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_with_the_wrong_state_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let code = param(&callback, "code").unwrap();
    let cookies = cookie_header(&b.cookies);
    for wrong in [
        "wrong",
        "",
        &format!("{}x", param(&callback, "state").unwrap()),
    ] {
        let url = with_query(&callback, &[("code", &code), ("state", wrong)]);
        assert_refused_get("wrong state", &url, &cookies, 400, "InvalidState").await;
    }
    assert_eq!(fake.token_requests(), 0, "the code was never exchanged");
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
    // A forged callback does not cancel the real attempt: no check cookie is expired.
    let forged = with_query(&callback, &[("code", &code), ("state", "forged")]);
    let r = client()
        .get(forged.as_str())
        .header(COOKIE, cookies.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers().get_all(SET_COOKIE).iter().next().is_none(),
        "{:?}",
        r.headers()
    );

    // Control: the genuine callback with the same cookies signs in.
    let r = client()
        .get(callback.as_str())
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(sets_session(&r));
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let code = param(&callback, "code").unwrap();
    let url = with_query(&callback, &[("code", &code)]);
    let cookies = cookie_header(&b.cookies);
    assert_refused_get("missing state", &url, &cookies, 400, "InvalidState").await;
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn a_callback_that_repeats_code_or_state_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let code = param(&callback, "code").unwrap();
    let state = param(&callback, "state").unwrap();
    let cookies = cookie_header(&b.cookies);
    // Which copy the state check saw and which the code exchange used would
    // be the parser's choice: both copies are refused, even a matching one.
    for (what, params) in [
        (
            "two states",
            [
                ("code", code.as_str()),
                ("state", "forged"),
                ("state", state.as_str()),
            ],
        ),
        (
            "two codes",
            [
                ("code", "c.forged"),
                ("code", code.as_str()),
                ("state", state.as_str()),
            ],
        ),
    ] {
        let url = with_query(&callback, &params);
        assert_refused_get(what, &url, &cookies, 400, "InvalidCallback").await;
    }
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn a_callback_without_the_state_cookie_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let cookies = cookies_with(&b, STATE_COOKIE, None);
    assert_refused_get(
        "missing state cookie",
        callback.as_str(),
        &cookies,
        400,
        "InvalidCheck",
    )
    .await;
    // No check cookies at all (another browser).
    assert_refused_get("no cookies", callback.as_str(), "", 400, "InvalidCheck").await;
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn an_expired_state_cookie_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let code = param(&callback, "code").unwrap();
    let url = with_query(&callback, &[("code", &code), ("state", "x")]);
    let now = now_secs();
    let sealed = |at: i64| {
        checks().seal(
            CheckKind::State,
            "op",
            r#"{"s":"x","cb":"/"}"#,
            UnixTime::from_secs(at),
            &mut rand::rngs::OsRng,
        )
    };
    let expired = cookies_with(&b, STATE_COOKIE, Some(&sealed(now - 16 * 60)));
    assert_refused_get("expired state", &url, &expired, 400, "InvalidCheck").await;
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;

    // Control: the same cookie sealed just now is accepted, so only the age
    // made the difference.
    let fresh = cookies_with(&b, STATE_COOKIE, Some(&sealed(now)));
    let r = client()
        .get(&url)
        .header(COOKIE, fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_state_cookie_issued_for_another_provider_is_refused() {
    let second = r#"
[[providers]]
id = "op2"
name = "Second OP"
issuer = "ISSUER"
client_id = "test"
client_secret = "test-secret"
"#;
    let fake = FakeOp::start().await;
    let reserved = reserve().await;
    let toml = config_toml(&reserved.url, &fake.issuer, "{db}", "", "inline")
        + &second.replace("ISSUER", &fake.issuer);
    let gw = start(reserved, &toml).await;

    // A flow started at op2, answered at op's callback.
    let (b, authorize) = begin(&gw.url, "op2", None).await;
    let state = param(&authorize, "state").unwrap();
    let url = gw.url.join("/auth/callback/op").unwrap();
    let url = with_query(&url, &[("code", "c.whatever"), ("state", &state)]);
    let cookies = cookie_header(&b.cookies);
    assert_refused_get("op2's cookies at op", &url, &cookies, 400, "InvalidCheck").await;

    // A state cookie sealed for a provider id that is not configured.
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let code = param(&callback, "code").unwrap();
    let foreign = checks().seal(
        CheckKind::State,
        "github",
        r#"{"s":"x","cb":"/"}"#,
        UnixTime::from_secs(now_secs()),
        &mut rand::rngs::OsRng,
    );
    let url = with_query(&callback, &[("code", &code), ("state", "x")]);
    let cookies = cookies_with(&b, STATE_COOKIE, Some(&foreign));
    assert_refused_get("sealed for github", &url, &cookies, 400, "InvalidCheck").await;

    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn a_tampered_state_cookie_is_refused() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let original = b.cookies[STATE_COOKIE].clone();
    let parts: Vec<&str> = original.split('.').collect();
    assert_eq!(parts.len(), 5, "compact JWE");
    // Flip one character in the middle of the ciphertext.
    let mut ciphertext: Vec<char> = parts[3].chars().collect();
    let mid = ciphertext.len() / 2;
    ciphertext[mid] = if ciphertext[mid] == 'A' { 'B' } else { 'A' };
    let ciphertext: String = ciphertext.into_iter().collect();
    let flipped = [parts[0], parts[1], parts[2], &ciphertext, parts[4]].join(".");
    let truncated = original[..original.len() - 4].to_owned();
    for (what, value) in [
        ("flipped ciphertext", flipped.as_str()),
        ("truncated", truncated.as_str()),
        ("garbage", "not-a-jwe"),
        ("empty", ""),
    ] {
        let cookies = cookies_with(&b, STATE_COOKIE, Some(value));
        assert_refused_get(what, callback.as_str(), &cookies, 400, "InvalidCheck").await;
    }
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

// ---------------------------------------------------------------------------
// PKCE, provider refusal, code replay
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_pkce_verifier_that_does_not_match_the_challenge_is_rejected_by_the_provider() {
    let (gw, peer) = gateway_with_peer().await;
    let (b, authorize) = begin(&gw.url, "op", None).await;
    let other_verifier = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let swapped = checks().seal(
        CheckKind::PkceVerifier,
        "op",
        &other_verifier,
        UnixTime::from_secs(now_secs()),
        &mut rand::rngs::OsRng,
    );
    let cookies = cookies_with(&b, PKCE_COOKIE, Some(&swapped));
    let callback = login_with_dev_interactions(&authorize, "alice").await;
    assert_refused_get(
        "PKCE mismatch",
        callback.as_str(),
        &cookies,
        400,
        "InvalidGrant",
    )
    .await;
    let stats = peer.stats().await;
    assert_eq!(stats.code_grants, 0, "the provider issued no tokens");
    assert!(
        stats.code_errors.get("invalid_grant").copied().unwrap_or(0) >= 1,
        "the provider said invalid_grant: {stats:?}"
    );
    assert_nothing_stored(&gw, "alice", "alice@example.test").await;
}

#[tokio::test]
async fn an_access_denied_answer_from_the_provider_is_refused_with_403() {
    let (gw, fake) = gateway_with_fake("").await;
    let (b, authorize) = begin(&gw.url, "op", None).await;
    let state = param(&authorize, "state").unwrap();
    let base = gw.url.join("/auth/callback/op").unwrap();
    let cookies = cookie_header(&b.cookies);
    let denied = with_query(
        &base,
        &[
            ("error", "access_denied"),
            ("error_description", "The user said no"),
            ("state", &state),
        ],
    );
    assert_refused_get("access_denied", &denied, &cookies, 403, "AccessDenied").await;
    // An error answer is still bound to the state: a forged one is InvalidState.
    let forged = with_query(
        &base,
        &[("error", "access_denied"), ("state", "forged-state")],
    );
    assert_refused_get("forged error", &forged, &cookies, 400, "InvalidState").await;
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn a_replayed_authorization_code_is_refused() {
    let (gw, peer) = gateway_with_peer().await;
    let (mut b, authorize) = begin(&gw.url, "op", Some("/after")).await;
    let checks_before = cookie_header(&b.cookies);
    let callback = login_with_dev_interactions(&authorize, "alice").await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/after");
    assert!(b.cookies.contains_key(SESSION_COOKIE));
    let account = gw
        .store
        .find_account_by_provider("op", "alice")
        .await
        .unwrap()
        .expect("first sign-in linked the account");

    // The same callback, with the check cookies from before the first one.
    assert_refused_get(
        "replayed code",
        callback.as_str(),
        &checks_before,
        400,
        "InvalidGrant",
    )
    .await;
    let stats = peer.stats().await;
    assert_eq!(stats.code_grants, 1, "the code was redeemed once");
    assert!(stats.code_errors.get("invalid_grant").copied().unwrap_or(0) >= 1);
    // Nothing new was stored: the same single account and user.
    let user = gw
        .store
        .find_user_by_email("alice@example.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.id, account.user_id);
    assert_eq!(
        gw.store
            .list_accounts_for_user(&user.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------
// ID tokens
// ---------------------------------------------------------------------------

/// A sign-in at the fake whose ID token has `fault` is refused with 400
/// `InvalidIdToken`, after the code exchange, and stores nothing.
async fn id_token_is_rejected(fault: IdTokenFault) {
    let (gw, fake) = gateway_with_fake("").await;
    fake.answer(TokenAnswer::BadIdToken(fault));
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let cookies = cookie_header(&b.cookies);
    assert_refused_get(
        &format!("{fault:?}"),
        callback.as_str(),
        &cookies,
        400,
        "InvalidIdToken",
    )
    .await;
    assert!(fake.token_requests() >= 1, "the code was exchanged");
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn the_fake_provider_signs_in_when_the_id_token_is_valid() {
    // Control for the ID-token tests: only the injected fault makes them fail.
    let (gw, _fake) = gateway_with_fake("").await;
    let (mut b, callback) = begin_at_fake(&gw.url, Some("/home")).await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/home");
    assert_eq!(
        session_json(&gw.url, &mut b).await["user"]["email"],
        FAKE_EMAIL
    );
    assert!(
        gw.store
            .find_account_by_provider("op", FAKE_SUB)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_address_the_provider_did_not_verify_is_not_used() {
    // Allow-lists and the account's e-mail must not trust an unverified
    // address (the fake's userinfo repeats it without a verification flag).
    let (gw, fake) = gateway_with_fake("").await;
    fake.answer(TokenAnswer::BadIdToken(IdTokenFault::UnverifiedEmail));
    let (mut b, callback) = begin_at_fake(&gw.url, Some("/home")).await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let session = session_json(&gw.url, &mut b).await;
    assert_eq!(session["user"]["name"], "Mallory");
    assert!(session["user"]["email"].is_null(), "{session}");
    assert!(
        gw.store
            .find_user_by_email(FAKE_EMAIL)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_address_without_email_verified_is_not_used() {
    // OIDC Core §5.1: an absent `email_verified` is not a verification. The
    // fake's userinfo repeats the address without a flag, so nothing vouches.
    let (gw, fake) = gateway_with_fake("").await;
    fake.answer(TokenAnswer::BadIdToken(IdTokenFault::EmailVerifiedAbsent));
    let (mut b, callback) = begin_at_fake(&gw.url, Some("/home")).await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let session = session_json(&gw.url, &mut b).await;
    assert_eq!(session["user"]["name"], "Mallory");
    assert!(session["user"]["email"].is_null(), "{session}");
    assert!(
        gw.store
            .find_user_by_email(FAKE_EMAIL)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_rejected() {
    id_token_is_rejected(IdTokenFault::WrongIssuer).await;
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_rejected() {
    id_token_is_rejected(IdTokenFault::WrongAudience).await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_rejected() {
    id_token_is_rejected(IdTokenFault::WrongNonce).await;
}

#[tokio::test]
async fn an_expired_id_token_is_rejected() {
    id_token_is_rejected(IdTokenFault::Expired).await;
}

#[tokio::test]
async fn an_unsigned_alg_none_id_token_is_rejected() {
    id_token_is_rejected(IdTokenFault::AlgNone).await;
}

#[tokio::test]
async fn an_id_token_signed_with_an_unknown_kid_is_rejected() {
    id_token_is_rejected(IdTokenFault::UnknownKid).await;
}

// ---------------------------------------------------------------------------
// Provider error dialects at the token endpoint
// ---------------------------------------------------------------------------

/// A sign-in whose token endpoint answers `answer` is refused with
/// `status`/`code`; returns the JSON answer's headers.
async fn token_error_is_refused(
    gw: &Gateway,
    fake: &FakeOp,
    what: &str,
    answer: TokenAnswer,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    fake.answer(answer);
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let cookies = cookie_header(&b.cookies);
    let c = client();
    let headers = assert_refused(
        what,
        || c.get(callback.as_str()).header(COOKIE, cookies.clone()),
        status,
        code,
    )
    .await;
    assert_nothing_stored(gw, FAKE_SUB, FAKE_EMAIL).await;
    headers
}

#[tokio::test]
async fn github_style_errors_with_http_200_are_errors_not_sessions() {
    let (gw, fake) = gateway_with_fake("").await;
    // GitHub answers a bad code with 200 and an error body. For a generic
    // OIDC provider `bad_verification_code` is not a known code, so core
    // classifies it by status (200: Protocol) → 502 ProviderError.
    token_error_is_refused(
        &gw,
        &fake,
        "github json bad_verification_code",
        TokenAnswer::Raw {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/"}"#,
            header: None,
        },
        502,
        "ProviderError",
    )
    .await;
    token_error_is_refused(
        &gw,
        &fake,
        "github form-encoded bad_verification_code",
        TokenAnswer::Raw {
            status: 200,
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            body: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.",
            header: None,
        },
        502,
        "ProviderError",
    )
    .await;
    // A standard code arriving with 200 is still normalised by its meaning.
    token_error_is_refused(
        &gw,
        &fake,
        "invalid_grant with 200",
        TokenAnswer::Raw {
            status: 200,
            content_type: "application/json",
            body: r#"{"error":"invalid_grant"}"#,
            header: None,
        },
        400,
        "InvalidGrant",
    )
    .await;
}

#[tokio::test]
async fn auth0_style_errors_with_http_403_are_normalised() {
    let (gw, fake) = gateway_with_fake("").await;
    token_error_is_refused(
        &gw,
        &fake,
        "auth0 invalid_grant",
        TokenAnswer::Raw {
            status: 403,
            content_type: "application/json",
            body: r#"{"error":"invalid_grant","error_description":"Invalid authorization code"}"#,
            header: None,
        },
        400,
        "InvalidGrant",
    )
    .await;
    token_error_is_refused(
        &gw,
        &fake,
        "auth0 unauthorized_client",
        TokenAnswer::Raw {
            status: 403,
            content_type: "application/json",
            body: r#"{"error":"unauthorized_client","error_description":"Grant type 'authorization_code' not allowed for the client."}"#,
            header: None,
        },
        502,
        "ProviderError",
    )
    .await;
}

#[tokio::test]
async fn an_unavailable_token_endpoint_is_a_503_with_retry_after() {
    let (gw, fake) = gateway_with_fake("").await;
    let headers = token_error_is_refused(
        &gw,
        &fake,
        "503",
        TokenAnswer::Raw {
            status: 503,
            content_type: "text/plain",
            body: "Service Unavailable",
            header: Some(("retry-after", "7")),
        },
        503,
        "ProviderUnavailable",
    )
    .await;
    assert_eq!(
        headers[RETRY_AFTER], "7",
        "the provider's hint is passed on"
    );
}

#[tokio::test]
async fn a_500_with_a_garbage_body_is_transient_not_a_500() {
    let (gw, fake) = gateway_with_fake("").await;
    let headers = token_error_is_refused(
        &gw,
        &fake,
        "500 garbage",
        TokenAnswer::Raw {
            status: 500,
            content_type: "text/html",
            body: "<html><body>Internal Server Error <pre>stack trace…</pre></body></html>",
            header: None,
        },
        503,
        "ProviderUnavailable",
    )
    .await;
    let after: u64 = headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(after >= 1);
}

#[tokio::test]
async fn a_redirecting_token_endpoint_is_not_followed() {
    let (gw, fake) = gateway_with_fake("").await;
    let elsewhere = Box::leak(format!("{}/elsewhere", fake.issuer).into_boxed_str());
    token_error_is_refused(
        &gw,
        &fake,
        "302 at the token endpoint",
        TokenAnswer::Raw {
            status: 302,
            content_type: "text/plain",
            body: "",
            header: Some(("location", elsewhere)),
        },
        502,
        "ProviderError",
    )
    .await;
    assert_eq!(
        fake.state.elsewhere_requests.load(Ordering::SeqCst),
        0,
        "the redirect (and the client credentials) went nowhere"
    );
}

// ---------------------------------------------------------------------------
// callbackUrl
// ---------------------------------------------------------------------------

#[tokio::test]
async fn hostile_callback_urls_fall_back_to_the_root_after_sign_in() {
    let (gw, _fake) = gateway_with_fake("").await;
    let other_port = format!("http://127.0.0.1:{}/x", gw.url.port().unwrap() + 1);
    let sign_in = |cb: String| {
        let gw = gw.url.clone();
        async move {
            let (mut b, callback) = begin_at_fake(&gw, Some(&cb)).await;
            let r = b.get(callback.as_str()).await;
            assert_eq!(r.status(), 302, "{cb}: {}", r.text().await.unwrap());
            assert!(b.cookies.contains_key(SESSION_COOKIE), "{cb}: signed in");
            location(&r)
        }
    };
    for hostile in [
        "https://evil.example/steal",
        "http://evil.example",
        "//evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        other_port.as_str(),
    ] {
        assert_eq!(sign_in(hostile.to_owned()).await, "/", "{hostile:?}");
    }
    // Controls: relative and same-origin targets are kept.
    assert_eq!(sign_in("/dash?x=1".into()).await, "/dash?x=1");
    assert_eq!(
        sign_in(gw.url.join("/p/q").unwrap().to_string()).await,
        "/p/q"
    );

    // The same through the CSRF-checked POST form.
    let mut b = Browser::new();
    let csrf = b.csrf(&gw.url).await;
    let r = b
        .post_form(
            gw.url.join("/auth/signin/op").unwrap().as_str(),
            &[("csrfToken", &csrf), ("callbackUrl", "//evil.example")],
        )
        .await;
    assert_eq!(r.status(), 302);
    let r = b.get(&location(&r)).await;
    let r = b.get(&location(&r)).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/");
}

// ---------------------------------------------------------------------------
// CSRF and unknown providers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signin_post_needs_the_csrf_token() {
    let (gw, fake) = gateway_with_fake("").await;
    let url = gw.url.join("/auth/signin/op").unwrap().to_string();
    let c = client();

    let mut b = Browser::new();
    let token = b.csrf(&gw.url).await;
    let with_cookie = cookie_header(&b.cookies);
    let mut other = Browser::new();
    let other_token = other.csrf(&gw.url).await;
    assert_ne!(token, other_token);

    let cases: [(&str, &str, Option<&str>); 4] = [
        ("no cookie, no token", "", None),
        ("cookie, no token", &with_cookie, None),
        ("cookie, forged token", &with_cookie, Some("forged")),
        (
            "cookie, another browser's token",
            &with_cookie,
            Some(other_token.as_str()),
        ),
    ];
    for (what, cookies, field) in cases {
        let form: Vec<(&str, &str)> = field.map(|t| ("csrfToken", t)).into_iter().collect();
        let headers = assert_refused(
            what,
            || c.post(&url).header(COOKIE, cookies).form(&form),
            403,
            "MissingCSRF",
        )
        .await;
        assert!(
            !headers
                .get_all(SET_COOKIE)
                .iter()
                .any(|v| v.to_str().unwrap().starts_with(STATE_COOKIE)),
            "{what}: no sign-in was started"
        );
    }
    // The CSRF token in a header without the cookie is not enough either.
    assert_refused(
        "header token without cookie",
        || c.post(&url).header("x-csrf-token", token.clone()),
        403,
        "MissingCSRF",
    )
    .await;

    // The right token starts the flow at the provider.
    let r = b.post_form(&url, &[("csrfToken", &token)]).await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).starts_with(&format!("{}/authorize?", fake.issuer)),
        "{}",
        location(&r)
    );
    assert!(b.cookies.contains_key(STATE_COOKIE));
    assert!(b.cookies.contains_key(PKCE_COOKIE));
}

#[tokio::test]
async fn unknown_provider_ids_are_404() {
    let (gw, fake) = gateway_with_fake("").await;
    let c = client();
    let start_url = gw.url.join("/auth/signin/nope").unwrap().to_string();
    assert_refused_get("GET start", &start_url, "", 404, "UnknownProvider").await;

    let mut b = Browser::new();
    let token = b.csrf(&gw.url).await;
    let cookies = cookie_header(&b.cookies);
    assert_refused(
        "POST start",
        || {
            c.post(&start_url)
                .header(COOKIE, cookies.clone())
                .form(&[("csrfToken", token.as_str())])
        },
        404,
        "UnknownProvider",
    )
    .await;

    // A genuine flow for `op`, answered at the callback of an unknown id.
    let (b, callback) = begin_at_fake(&gw.url, None).await;
    let mut elsewhere = callback.clone();
    elsewhere.set_path("/auth/callback/nope");
    assert_refused_get(
        "callback",
        elsewhere.as_str(),
        &cookie_header(&b.cookies),
        404,
        "UnknownProvider",
    )
    .await;
    assert_eq!(fake.token_requests(), 0);
    assert_nothing_stored(&gw, FAKE_SUB, FAKE_EMAIL).await;
}

#[tokio::test]
async fn signout_without_the_csrf_token_is_refused_and_the_session_survives() {
    let (gw, _fake) = gateway_with_fake("").await;
    let (mut b, callback) = begin_at_fake(&gw.url, None).await;
    let r = b.get(callback.as_str()).await;
    assert_eq!(r.status(), 302);
    let token = b.csrf(&gw.url).await;
    let cookies = cookie_header(&b.cookies);
    let url = gw.url.join("/auth/signout").unwrap().to_string();
    let c = client();
    // (what, csrfToken field, Origin header)
    let cases = [
        ("no token", None, None),
        ("forged token", Some("forged"), None),
        (
            "cross-site origin, no token",
            None,
            Some("https://evil.example"),
        ),
    ];
    for (what, field, origin) in cases {
        let form: Vec<(&str, &str)> = field.map(|t| ("csrfToken", t)).into_iter().collect();
        let headers = assert_refused(
            what,
            || {
                let r = c.post(&url).header(COOKIE, cookies.clone()).form(&form);
                match origin {
                    Some(o) => r.header(ORIGIN, o),
                    None => r,
                }
            },
            403,
            "MissingCSRF",
        )
        .await;
        assert!(
            !headers
                .get_all(SET_COOKIE)
                .iter()
                .any(|v| v.to_str().unwrap().starts_with(SESSION_COOKIE)),
            "{what}: the session cookie is not touched"
        );
        assert_eq!(
            session_json(&gw.url, &mut b).await["user"]["email"],
            FAKE_EMAIL,
            "{what}: still signed in"
        );
    }
    // Control: with the token, sign-out works.
    let r = b.post_form(&url, &[("csrfToken", &token)]).await;
    assert_eq!(r.status(), 302);
    assert!(!b.cookies.contains_key(SESSION_COOKIE));
    assert_eq!(session_json(&gw.url, &mut b).await, Value::Null);
}

#[tokio::test]
async fn a_cross_site_link_lands_on_the_sign_in_page_instead_of_starting_a_flow() {
    let (gw, fake) = gateway_with_fake("").await;
    let r = client()
        .get(format!("{}auth/signin/op?callbackUrl=/home", gw.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/auth/signin?callbackUrl=%2Fhome");
    assert!(set_cookies(&r).is_empty(), "no check cookie was written");
    assert_eq!(fake.token_requests(), 0);
    // Same-site navigation (or a client without Fetch Metadata) starts the flow.
    let r = client()
        .get(format!("{}auth/signin/op?callbackUrl=/home", gw.url))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(!set_cookies(&r).is_empty());
}
