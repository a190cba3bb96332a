//! The HTTP shell: routes, client authentication, parameter parsing and responses.
//!
//! Every token rule lives in [`crate::grants`]; handlers read the clock, take the lock for
//! one call (never across an `.await`), and render the outcome.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use crate::grants::{
    AuthorizationRequest, GrantError, Grants, Identity, Issued, Lifetimes, Revoked,
    valid_pkce_value,
};
use crate::keys::SigningKey;
use crate::page::{self, LoginPage};
use crate::{DevClient, DevIdpConfig, Error, Stats, is_loopback_url};

/// Scopes the provider knows; others are dropped from authorization requests.
const SUPPORTED_SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

/// Longest accepted `state` / `nonce`.
const MAX_PARAM_LEN: usize = 2048;

#[derive(Default)]
struct Counters {
    refresh_grants: AtomicU64,
    code_grants: AtomicU64,
    reuse_detections: AtomicU64,
    revocations: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Shared provider state: configuration, signing key, grants and counters.
pub struct DevIdpState {
    config: DevIdpConfig,
    issuer: Url,
    issuer_str: String,
    key: SigningKey,
    grants: Mutex<Grants>,
    counters: Counters,
    discovery: serde_json::Value,
}

fn secs(d: std::time::Duration) -> u64 {
    d.as_secs()
}

impl DevIdpState {
    /// Validate the configuration (the issuer must be set and on a loopback host), generate
    /// a signing key and start with no grants.
    pub fn new(config: DevIdpConfig) -> Result<Arc<Self>, Error> {
        let issuer = config
            .issuer
            .clone()
            .ok_or_else(|| Error::InvalidIssuer("not set".into()))?;
        if !matches!(issuer.scheme(), "http" | "https")
            || !is_loopback_url(&issuer)
            || issuer.query().is_some()
            || issuer.fragment().is_some()
        {
            return Err(Error::InvalidIssuer(format!(
                "{issuer} (must be http(s) on a loopback host, without query or fragment)"
            )));
        }
        let mut ids = std::collections::HashSet::new();
        for client in &config.clients {
            if client.client_id.is_empty() || client.client_secret.is_empty() {
                return Err(Error::InvalidConfig(
                    "client_id and client_secret must not be empty".into(),
                ));
            }
            if !ids.insert(client.client_id.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "duplicate client_id {:?}",
                    client.client_id
                )));
            }
        }
        let lifetimes = Lifetimes {
            access_token: secs(config.access_token_ttl),
            refresh_token: secs(config.refresh_token_ttl),
            code: secs(config.code_ttl),
            login: secs(config.login_ttl),
        };
        if lifetimes.access_token == 0
            || lifetimes.refresh_token == 0
            || lifetimes.code == 0
            || lifetimes.login == 0
            || secs(config.id_token_ttl) == 0
        {
            return Err(Error::InvalidConfig(
                "token lifetimes must be at least one second".into(),
            ));
        }
        let issuer_str = issuer.as_str().trim_end_matches('/').to_owned();
        let endpoint = |path: &str| format!("{issuer_str}{path}");
        let discovery = json!({
            "issuer": issuer_str,
            "authorization_endpoint": endpoint("/authorize"),
            "token_endpoint": endpoint("/token"),
            "userinfo_endpoint": endpoint("/userinfo"),
            "jwks_uri": endpoint("/jwks"),
            "revocation_endpoint": endpoint("/revoke"),
            "introspection_endpoint": endpoint("/introspect"),
            "end_session_endpoint": endpoint("/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": SUPPORTED_SCOPES,
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash",
                "name", "preferred_username", "email", "email_verified"
            ],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
        });
        Ok(Arc::new(Self {
            grants: Mutex::new(Grants::new(lifetimes)),
            key: SigningKey::generate()?,
            counters: Counters::default(),
            issuer,
            issuer_str,
            discovery,
            config,
        }))
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &Url {
        &self.issuer
    }

    /// The issuer as published (no trailing slash).
    pub fn issuer_str(&self) -> &str {
        &self.issuer_str
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            refresh_grants: c.refresh_grants.load(Ordering::Relaxed),
            code_grants: c.code_grants.load(Ordering::Relaxed),
            reuse_detections: c.reuse_detections.load(Ordering::Relaxed),
            revocations: c.revocations.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client(&self, client_id: &str) -> Option<&DevClient> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer_str)
    }

    /// Client authentication: `client_secret_basic` or `client_secret_post`, not both.
    fn authenticate(&self, headers: &HeaderMap, params: &Params) -> Result<&DevClient, OAuthError> {
        let basic = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
            });
        // Candidate (id, secret) pairs: Basic credentials are form-encoded per RFC 6749
        // §2.3.1, but many clients send them raw, so both readings are tried.
        let candidates: Vec<(String, String)> = match (basic, params.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            (Some(encoded), None) => {
                let candidates = decode_basic(encoded);
                if candidates.is_empty() {
                    return Err(OAuthError::invalid_client(
                        "malformed Basic authorization header",
                    ));
                }
                if params
                    .get("client_id")
                    .is_some_and(|p| !candidates.iter().any(|(id, _)| id == p))
                {
                    return Err(OAuthError::invalid_request(
                        "client_id does not match the Authorization header",
                    ));
                }
                candidates
            }
            (None, Some(secret)) => {
                let id = params
                    .get("client_id")
                    .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
                vec![(id.clone(), secret.clone())]
            }
            (None, None) => {
                return Err(OAuthError::invalid_client("client authentication required"));
            }
        };
        candidates
            .iter()
            .find_map(|(id, secret)| {
                self.client(id)
                    .filter(|client| secret_eq(secret.as_bytes(), client.client_secret.as_bytes()))
            })
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))
    }

    /// Sign an ID token for issued tokens when the grant has `openid`.
    fn id_token(&self, issued: &Issued, now: u64) -> Result<Option<String>, OAuthError> {
        if !issued.grant_scope.iter().any(|s| s == "openid") {
            return Ok(None);
        }
        let has = |s: &str| issued.grant_scope.iter().any(|g| g == s);
        let digest = Sha256::digest(issued.access_token.as_bytes());
        let at_hash = URL_SAFE_NO_PAD.encode(&digest[..16]);
        let profile = has("profile");
        let email = has("email")
            .then_some(issued.identity.email.as_deref())
            .flatten();
        let claims = IdTokenClaims {
            iss: &self.issuer_str,
            sub: &issued.identity.sub,
            aud: &issued.client_id,
            azp: &issued.client_id,
            exp: now.saturating_add(secs(self.config.id_token_ttl)),
            iat: now,
            auth_time: issued.auth_time,
            nonce: issued.nonce.as_deref(),
            at_hash,
            name: profile.then_some(issued.identity.name.as_deref()).flatten(),
            preferred_username: profile.then_some(issued.identity.sub.as_str()),
            email,
            email_verified: email.map(|_| true),
        };
        self.key
            .sign(&claims)
            .map(Some)
            .map_err(|_| OAuthError::server_error("could not sign the ID token"))
    }
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

/// Compare secrets without an early exit on the first differing byte.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`. Returns the
/// form-decoded reading first, then the raw one when it differs; empty when malformed.
fn decode_basic(encoded: &str) -> Vec<(String, String)> {
    let Some(raw) = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Vec::new();
    };
    let Some((id, secret)) = raw.split_once(':') else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(2);
    if let (Some(id), Some(secret)) = (form_decode(id), form_decode(secret)) {
        out.push((id, secret));
    }
    let raw_pair = (id.to_owned(), secret.to_owned());
    if !out.contains(&raw_pair) {
        out.push(raw_pair);
    }
    out
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

type Params = HashMap<String, String>;

/// Parse form or query parameters: repeated parameters are refused, empty ones ignored
/// (RFC 6749 §3.1).
fn parse_params(raw: &[u8]) -> Result<Params, &'static str> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|_| "malformed parameters")?;
    let mut seen = std::collections::HashSet::new();
    let mut params = Params::new();
    for (key, value) in pairs {
        if !seen.insert(key.clone()) {
            return Err("a parameter is repeated");
        }
        if !value.is_empty() {
            params.insert(key, value);
        }
    }
    Ok(params)
}

fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "expected an application/x-www-form-urlencoded body",
        ));
    }
    parse_params(body).map_err(OAuthError::invalid_request)
}

fn required<'a>(params: &'a Params, name: &'static str) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

fn split_scope(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: Cow<'static, str>,
    challenge: Option<&'static str>,
}

impl OAuthError {
    fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            challenge: None,
        }
    }

    fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client(description: &'static str) -> Self {
        Self {
            challenge: Some("Basic realm=\"authgate-devidp\", charset=\"UTF-8\""),
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    fn server_error(description: &'static str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            description,
        )
    }

    fn grant(error: &GrantError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error.oauth_error(),
            error.description(),
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, no_store(), axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

fn no_store() -> [(HeaderName, &'static str); 2] {
    [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")]
}

/// Build the provider's router (paths relative to the issuer). Nest it under the issuer's
/// path when the issuer has one.
pub fn router(state: Arc<DevIdpState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/logout", get(logout))
        .with_state(state)
}

type St = State<Arc<DevIdpState>>;

async fn discovery(State(st): St) -> Response {
    axum::Json(st.discovery.clone()).into_response()
}

async fn jwks(State(st): St) -> Response {
    axum::Json(st.key.jwks()).into_response()
}

// ---- authorization endpoint -------------------------------------------------------------

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (CACHE_CONTROL, "no-store"),
            (
                HeaderName::from_static("content-security-policy"),
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (HeaderName::from_static("x-frame-options"), "DENY"),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, page::error(title, message))
}

/// 302 to `redirect_uri` with extra query parameters.
fn redirect_with(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "invalid redirect_uri",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (
            StatusCode::FOUND,
            [
                (LOCATION, location),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "invalid redirect_uri",
        ),
    }
}

async fn authorize_get(State(st): St, RawQuery(query): RawQuery) -> Response {
    let params = match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, "Invalid request", why),
    };
    // Until client_id and redirect_uri are verified, errors are shown, never redirected
    // (RFC 6749 §4.1.2.1).
    let Some(client) = params.get("client_id").and_then(|id| st.client(id)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "The client_id is missing or not registered with this provider.",
        );
    };
    let Some(redirect_uri) = params
        .get("redirect_uri")
        .filter(|uri| client.redirect_allowed(uri))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "The redirect_uri is missing or not registered for this client.",
        );
    };
    let state = params.get("state").map(String::as_str);
    let issuer = st.issuer_str.as_str();
    let fail = |error: &str, description: &str| {
        redirect_with(
            redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", state),
                ("iss", Some(issuer)),
            ],
        )
    };

    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return fail("invalid_request", "response_type is required"),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    if params.contains_key("request") {
        return fail("request_not_supported", "request objects are not supported");
    }
    if params.contains_key("request_uri") {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    if state.is_some_and(|s| s.len() > MAX_PARAM_LEN)
        || params.get("nonce").is_some_and(|n| n.len() > MAX_PARAM_LEN)
    {
        return fail("invalid_request", "state or nonce is too long");
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (Some(challenge), Some("S256")) => {
            if challenge.len() != 43 || !valid_pkce_value(challenge) {
                return fail("invalid_request", "malformed code_challenge");
            }
            Some(challenge.clone())
        }
        (Some(_), _) => return fail("invalid_request", "code_challenge_method must be S256"),
        (None, Some(_)) => return fail("invalid_request", "code_challenge is missing"),
        (None, None) if st.config.require_pkce => {
            return fail(
                "invalid_request",
                "PKCE (code_challenge with S256) is required",
            );
        }
        (None, None) => None,
    };
    if params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|v| v == "none"))
    {
        // There are no provider sessions: every sign-in needs the form.
        return fail("login_required", "the user must sign in");
    }
    let scope: Vec<String> = split_scope(params.get("scope").map_or("openid", String::as_str))
        .into_iter()
        .filter(|s| SUPPORTED_SCOPES.contains(&s.as_str()))
        .collect();
    if scope.is_empty() {
        return fail("invalid_scope", "none of the requested scopes is supported");
    }
    let request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.map(str::to_owned),
        nonce: params.get("nonce").cloned(),
        code_challenge,
    };
    let id = {
        let mut rng = rand::thread_rng();
        st.lock()
            .begin_authorization(request.clone(), unix_now(), &mut rng)
    };
    login_page(&st, &id, &request, None, &LoginForm::default())
}

fn login_page(
    st: &DevIdpState,
    request_id: &str,
    request: &AuthorizationRequest,
    error: Option<&str>,
    form: &LoginForm,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let action = st.endpoint("/authorize");
    html(
        status,
        page::login(&LoginPage {
            action: &action,
            request_id,
            client_id: &request.client_id,
            redirect_uri: &request.redirect_uri,
            scope: &request.scope,
            error,
            username: &form.username,
            name: &form.name,
            email: &form.email,
        }),
    )
}

#[derive(Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    action: String,
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Check the form; returns the identity or a message for the user.
fn identity_from(form: &LoginForm) -> Result<Identity, &'static str> {
    let username = form.username.trim();
    if username.is_empty() {
        return Err("Enter a user name.");
    }
    if username.chars().count() > 64 || has_control(username) {
        return Err("The user name must be at most 64 printable characters.");
    }
    let name = form.name.trim();
    if name.chars().count() > 128 || has_control(name) {
        return Err("The display name must be at most 128 printable characters.");
    }
    let email = form.email.trim();
    let email = if email.is_empty() {
        username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            .then(|| format!("{}@example.com", username.to_ascii_lowercase()))
    } else {
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !valid {
            return Err("Enter a valid email address, or leave it empty.");
        }
        Some(email.to_owned())
    };
    Ok(Identity {
        sub: username.to_owned(),
        name: Some(if name.is_empty() { username } else { name }.to_owned()),
        email,
    })
}

async fn authorize_post(State(st): St, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid request", "malformed form");
    };
    let now = unix_now();
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in request is unknown or has expired. Go back to the application and start again.",
        )
    };
    let issuer = st.issuer_str.as_str();
    if form.action == "deny" {
        let Ok(request) = st.lock().deny_authorization(&form.request, now) else {
            return expired();
        };
        return redirect_with(
            &request.redirect_uri,
            &[
                ("error", Some("access_denied")),
                ("error_description", Some("the user denied access")),
                ("state", request.state.as_deref()),
                ("iss", Some(issuer)),
            ],
        );
    }
    let identity = match identity_from(&form) {
        Ok(identity) => identity,
        Err(message) => {
            let pending = st.lock().pending_request(&form.request, now).cloned();
            return match pending {
                Some(request) => login_page(&st, &form.request, &request, Some(message), &form),
                None => expired(),
            };
        }
    };
    let completed = {
        let mut rng = rand::thread_rng();
        st.lock()
            .complete_authorization(&form.request, identity, now, &mut rng)
    };
    let Ok((request, code)) = completed else {
        return expired();
    };
    redirect_with(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(issuer)),
        ],
    )
}

// ---- token endpoint ---------------------------------------------------------------------

async fn token(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let now = unix_now();
    let issued = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = required(&params, "code")?;
            let redirect_uri = required(&params, "redirect_uri")?;
            let verifier = params.get("code_verifier").map(String::as_str);
            let result = {
                let mut rng = rand::thread_rng();
                st.lock().exchange_code(
                    &client.client_id,
                    code,
                    redirect_uri,
                    verifier,
                    now,
                    &mut rng,
                )
            };
            match result {
                Ok(issued) => {
                    bump(&st.counters.code_grants);
                    issued
                }
                Err(error) => {
                    if let GrantError::CodeReplay { grant_revoked } = error {
                        tracing::warn!(client_id = %client.client_id, grant_revoked, "authorization code replayed");
                        if grant_revoked {
                            bump(&st.counters.revocations);
                        }
                    }
                    return Err(OAuthError::grant(&error));
                }
            }
        }
        Some("refresh_token") => {
            let refresh_token = required(&params, "refresh_token")?;
            let scope = params.get("scope").map(|s| split_scope(s));
            let result = {
                let mut rng = rand::thread_rng();
                st.lock().refresh(
                    &client.client_id,
                    refresh_token,
                    scope.as_deref(),
                    now,
                    &mut rng,
                )
            };
            match result {
                Ok(issued) => {
                    bump(&st.counters.refresh_grants);
                    issued
                }
                Err(error) => {
                    if let GrantError::RefreshReuse { grant_revoked } = error {
                        bump(&st.counters.reuse_detections);
                        if grant_revoked {
                            bump(&st.counters.revocations);
                            tracing::warn!(client_id = %client.client_id, "refresh token reused; grant revoked");
                        }
                    }
                    return Err(OAuthError::grant(&error));
                }
            }
        }
        Some(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "supported: authorization_code, refresh_token",
            ));
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    };
    let id_token = st.id_token(&issued, now)?;
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope.join(" "),
    });
    if let Some(rt) = &issued.refresh_token {
        body["refresh_token"] = json!(rt);
    }
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    Ok((StatusCode::OK, no_store(), axum::Json(body)).into_response())
}

// ---- userinfo, revocation, introspection, logout ---------------------------------------

async fn userinfo(State(st): St, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let unauthorized = |challenge: &'static str, body: serde_json::Value| {
        (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, challenge), (CACHE_CONTROL, "no-store")],
            axum::Json(body),
        )
            .into_response()
    };
    let Some(token) = bearer else {
        return unauthorized(
            "Bearer realm=\"authgate-devidp\"",
            json!({"error": "invalid_request", "error_description": "Bearer access token required"}),
        );
    };
    let Some((identity, scope)) = st.lock().userinfo(token, unix_now()) else {
        return unauthorized(
            "Bearer realm=\"authgate-devidp\", error=\"invalid_token\"",
            json!({"error": "invalid_token", "error_description": "access token is invalid, expired or revoked"}),
        );
    };
    let has = |s: &str| scope.iter().any(|g| g == s);
    let mut body = json!({ "sub": identity.sub });
    if has("profile") {
        body["name"] = json!(identity.name);
        body["preferred_username"] = json!(identity.sub);
    }
    if has("email") && identity.email.is_some() {
        body["email"] = json!(identity.email);
        body["email_verified"] = json!(true);
    }
    (no_store(), axum::Json(body)).into_response()
}

async fn revoke(State(st): St, headers: HeaderMap, body: Bytes) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let token = required(&params, "token")?;
    // token_type_hint is optional and only a hint: every kind is looked up.
    let outcome = st.lock().revoke(&client.client_id, token, unix_now());
    if outcome != Revoked::Nothing {
        bump(&st.counters.revocations);
        tracing::info!(client_id = %client.client_id, ?outcome, "token revoked");
    }
    Ok((StatusCode::OK, no_store()).into_response())
}

async fn introspect(
    State(st): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = st.authenticate(&headers, &params)?;
    let token = required(&params, "token")?;
    let info = st
        .lock()
        .introspect(token, unix_now())
        .filter(|info| info.client_id == client.client_id);
    let body = match info {
        None => json!({ "active": false }),
        Some(info) => {
            let mut body = json!({
                "active": true,
                "client_id": info.client_id,
                "sub": info.sub,
                "scope": info.scope.join(" "),
                "iat": info.iat,
                "exp": info.exp,
                "iss": st.issuer_str,
                "aud": info.client_id,
                "token_use": info.kind.as_str(),
            });
            if info.kind == crate::grants::TokenKind::Access {
                body["token_type"] = json!("Bearer");
            }
            body
        }
    };
    Ok((no_store(), axum::Json(body)).into_response())
}

/// RP-initiated logout. The provider keeps no browser sessions, so this only confirms and,
/// when `client_id` and a registered `post_logout_redirect_uri` are given, redirects back.
async fn logout(State(st): St, RawQuery(query): RawQuery) -> Response {
    let params = parse_params(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let target = params
        .get("client_id")
        .and_then(|id| st.client(id))
        .zip(params.get("post_logout_redirect_uri"))
        .filter(|(client, uri)| client.redirect_allowed(uri))
        .map(|(_, uri)| uri.clone());
    match target {
        Some(uri) => redirect_with(&uri, &[("state", params.get("state").map(String::as_str))]),
        None => html(
            StatusCode::OK,
            page::error(
                "Signed out",
                "You are signed out of the development provider.",
            ),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_repeats_and_ignore_empty_values() {
        assert!(parse_params(b"a=1&a=2").is_err());
        let p = parse_params(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
        assert!(!p.contains_key("b"));
        assert_eq!(p.get("c").map(String::as_str), Some("x y!"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = STANDARD.encode("my%20app:s%3Acret+x");
        assert_eq!(
            decode_basic(&header),
            vec![
                ("my app".to_owned(), "s:cret x".to_owned()),
                ("my%20app".to_owned(), "s%3Acret+x".to_owned()),
            ]
        );
        assert_eq!(
            decode_basic(&STANDARD.encode("app:plain")),
            vec![("app".to_owned(), "plain".to_owned())]
        );
        assert_eq!(
            decode_basic(&STANDARD.encode("a:%zz")),
            vec![("a".to_owned(), "%zz".to_owned())]
        );
        assert!(decode_basic("!!!").is_empty());
        assert!(decode_basic(&STANDARD.encode("no-colon")).is_empty());
    }

    #[test]
    fn identity_defaults_and_validation() {
        let form = |u: &str, n: &str, e: &str| LoginForm {
            username: u.into(),
            name: n.into(),
            email: e.into(),
            ..LoginForm::default()
        };
        let id = identity_from(&form(" Alice ", "", "")).unwrap();
        assert_eq!(id.sub, "Alice");
        assert_eq!(id.name.as_deref(), Some("Alice"));
        assert_eq!(id.email.as_deref(), Some("alice@example.com"));
        let id = identity_from(&form("Jo Doe", "Jo", "")).unwrap();
        assert_eq!(id.email, None);
        assert!(identity_from(&form("", "", "")).is_err());
        assert!(identity_from(&form("a\u{7}", "", "")).is_err());
        assert!(identity_from(&form("a", "", "not-an-email")).is_err());
        assert_eq!(
            identity_from(&form("a", "", "a@b.example"))
                .unwrap()
                .email
                .as_deref(),
            Some("a@b.example")
        );
    }
}
