//! `POST {base}/token`: a fresh provider access token for a service client —
//! the app server acting for the signed-in user whose session cookie it
//! forwards, or a job acting for a user by id (`token:offline`).
//!
//! This is where DESIGN.md's "provider tokens leave only toward the upstream
//! or a trusted caller" holds for service clients: nothing is answered
//! before [`ServiceClients::admit`](crate::service_client) accepted the
//! client's credentials (401 whatever cookies come along), refused browsers
//! and applied the client's rate limit; then the client's permission for the
//! way it names the user is checked. The token comes through the one
//! token-access path (`tokens::account_tokens`: cache, else the refresh
//! service), and the answer carries the access token only — never the
//! refresh token or the ID token.
//!
//! | request | answer |
//! |---|---|
//! | no or bad client credentials | 401 `invalid_client` (+ `WWW-Authenticate`) |
//! | a browser's metadata (`Origin`, a `Sec-*` header other than `Sec-Fetch-Mode`) | 403 `access_denied` |
//! | over the client's rate limit | 429 `rate_limited` + `Retry-After` |
//! | body not `{}` or `{"user_id", "provider"}`, both a cookie and a `user_id`, an unknown provider | 400 `invalid_request` |
//! | permission missing (`token` for a cookie, `token:offline` for a `user_id`) | 403 `access_denied` |
//! | no valid session cookie | 401 `SessionRequired` |
//! | no account at the provider (or a session without one) | 404 `AccountNotFound` |
//! | the grant was revoked | 401 `RefreshTokenError` |
//! | the store or the provider is down | 503 + `Retry-After` |
//! | the provider refused the refresh request | 502 `ProviderError` |
//! | otherwise | 200 `{"access_token", "token_type", "expires_at", "scope"}`, `Cache-Control: no-store` |
//!
//! Every call writes one audit line (target `authgate::audit`, message
//! `token_endpoint`: client, user, provider, outcome, status, request id —
//! never token material) and counts `authgate_token_requests_total{client,
//! outcome}`; `client` is a configured id or `unauthenticated`, never an id
//! a caller made up.

use crate::cookies::request_cookies;
use crate::error::HttpError;
use crate::rejection::AuthRejection;
use crate::request_id::RequestId;
use crate::service_client::{Caller, Refusal, ServicePermission};
use crate::session::{AccountRef, read_session, session_cookie_names};
use crate::state::{Gateway, Inner};
use crate::tokens::{account_tokens, confirm_record};
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::UserId;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// Token requests by client and outcome.
pub const TOKEN_REQUESTS_TOTAL: &str = "authgate_token_requests_total";

/// The audit log's target.
pub const AUDIT_TARGET: &str = "authgate::audit";

/// The largest request body read, in bytes.
const MAX_BODY: usize = 4096;

/// The longest `user_id` or `provider` accepted.
const MAX_NAME: usize = 255;

/// The JSON body: `{}` (the user of the forwarded session cookie) or
/// `{"user_id", "provider"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user_id: Option<String>,
    provider: Option<String>,
}

/// Why no token was issued.
#[derive(Debug)]
enum Failure {
    /// The client was not admitted.
    Client(Refusal),
    /// The request is malformed: 400 `invalid_request`.
    BadRequest(String),
    /// The client lacks the permission: 403 `access_denied`.
    Denied(ServicePermission),
    /// No such account: 404 `AccountNotFound`.
    AccountNotFound,
    /// The shared refusals (no session, revoked grant, outages).
    Rejected(AuthRejection),
}

impl Failure {
    /// The outcome label (audit log and metric).
    fn outcome(&self) -> &'static str {
        match self {
            Failure::Client(Refusal::InvalidClient(_)) => "invalid_client",
            Failure::Client(Refusal::Browser) => "browser_refused",
            Failure::Client(Refusal::RateLimited(_)) => "rate_limited",
            Failure::BadRequest(_) => "invalid_request",
            Failure::Denied(_) => "access_denied",
            Failure::AccountNotFound | Failure::Rejected(AuthRejection::NoAccount) => {
                "account_not_found"
            }
            Failure::Rejected(AuthRejection::SessionRequired) => "session_required",
            Failure::Rejected(AuthRejection::SignedOut) => "signed_out",
            Failure::Rejected(AuthRejection::Revoked) => "grant_revoked",
            Failure::Rejected(AuthRejection::ProviderRejected) => "provider_rejected",
            Failure::Rejected(
                AuthRejection::StoreUnavailable | AuthRejection::RefreshUnavailable { .. },
            ) => "unavailable",
            // `account_tokens` always refreshes; listed for completeness.
            Failure::Rejected(AuthRejection::TokenExpired) => "token_expired",
        }
    }

    fn response(self) -> Response {
        match self {
            Failure::Client(refusal) => refusal.response(),
            Failure::BadRequest(description) => {
                HttpError::bad_request("invalid_request", description).render(true, "")
            }
            Failure::Denied(permission) => HttpError::forbidden(
                "access_denied",
                format!("This client is not allowed {:?}.", permission.as_str()),
            )
            .render(true, ""),
            Failure::AccountNotFound | Failure::Rejected(AuthRejection::NoAccount) => {
                HttpError::new(
                    StatusCode::NOT_FOUND,
                    "AccountNotFound",
                    "The user has no account at this provider.",
                )
                .render(true, "")
            }
            Failure::Rejected(rejection) => rejection.http_error().render(true, ""),
        }
    }
}

/// What the audit line says about one call.
#[derive(Debug, Default)]
struct Audit {
    client: Option<String>,
    user: Option<String>,
    provider: Option<String>,
    reason: Option<&'static str>,
}

/// `POST {base}/token` (see the module docs).
pub(crate) async fn token(
    State(gw): State<Gateway>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &gw.inner;
    let mut audit = Audit::default();
    let result = issue(inner, &headers, body, &mut audit).await;
    let (outcome, response) = match result {
        Ok(tokens) => ("ok", issued(&tokens)),
        Err(failure) => {
            if let Failure::Client(refusal) = &failure {
                // The client the request named, when it is a configured one
                // (with a wrong secret too: someone is trying it).
                audit.client = inner
                    .service_clients
                    .claimed_id(&headers)
                    .map(str::to_owned);
                if let Refusal::InvalidClient(reason) = refusal {
                    audit.reason = Some(reason.as_str());
                }
            }
            (failure.outcome(), failure.response())
        }
    };
    record(&audit, outcome, response.status(), request_id.as_deref());
    response
}

/// Admits the client, names the user, and gets the token.
async fn issue(
    inner: &Inner,
    headers: &HeaderMap,
    body: Body,
    audit: &mut Audit,
) -> Result<TokenSet, Failure> {
    let caller = inner
        .service_clients
        .admit(headers)
        .map_err(Failure::Client)?;
    audit.client = Some(caller.id().to_owned());
    let request = read_request(body).await?;
    let now = inner.clock.now();
    let cookies = request_cookies(headers);
    match (request.user_id, request.provider) {
        (None, None) => for_session(inner, caller, &cookies, now, audit).await,
        (Some(user_id), Some(provider)) => {
            if !session_cookie_names(inner, &cookies).is_empty() {
                return Err(Failure::BadRequest(
                    "Name the user one way: a forwarded session cookie with {}, or user_id and provider without the cookie.".to_owned(),
                ));
            }
            for_user(inner, caller, user_id, provider, now, audit).await
        }
        _ => Err(Failure::BadRequest(
            "user_id and provider go together: send both, or {} with the user's session cookie."
                .to_owned(),
        )),
    }
}

/// Reads the body: empty or a JSON object with only the known fields.
async fn read_request(body: Body) -> Result<TokenRequest, Failure> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Failure::BadRequest(format!(
            "The body must be a JSON object of at most {MAX_BODY} bytes."
        ))
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenRequest::default());
    }
    let bad = |e: serde_json::Error| {
        Failure::BadRequest(format!(
            "The body must be {{}} or {{\"user_id\": \"…\", \"provider\": \"…\"}}: {e}"
        ))
    };
    // An object, not any JSON serde could read as the struct (an array).
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(bad)?;
    let request = TokenRequest::deserialize(serde_json::Value::Object(object)).map_err(bad)?;
    for value in [&request.user_id, &request.provider].into_iter().flatten() {
        if value.is_empty() || value.len() > MAX_NAME || value.contains(char::is_control) {
            return Err(Failure::BadRequest(format!(
                "user_id and provider must be 1 to {MAX_NAME} bytes without control characters."
            )));
        }
    }
    Ok(request)
}

/// The signed-in user of the forwarded session cookie (either strategy).
async fn for_session(
    inner: &Inner,
    caller: Caller<'_>,
    cookies: &[(String, String)],
    now: UnixTime,
    audit: &mut Audit,
) -> Result<TokenSet, Failure> {
    if !caller.may(ServicePermission::Token) {
        return Err(Failure::Denied(ServicePermission::Token));
    }
    let mut session = read_session(inner, cookies, now)
        .await
        .map_err(Failure::Rejected)?
        .ok_or(Failure::Rejected(AuthRejection::SessionRequired))?;
    audit.user = Some(session.identity.id.clone());
    if session.error.is_some() {
        return Err(Failure::Rejected(AuthRejection::Revoked));
    }
    // The store is consulted for this session's tokens: a signed-out copy of
    // the cookie gets none, even after the user signed in again.
    confirm_record(inner, &mut session, now)
        .await
        .map_err(Failure::Rejected)?;
    let account = session.account.clone().ok_or(Failure::AccountNotFound)?;
    audit.provider = Some(account.provider.clone());
    account_tokens(inner, &account, session.tokens.clone(), now)
        .await
        .map_err(Failure::Rejected)
}

/// A user named by id, at a provider (`token:offline`).
async fn for_user(
    inner: &Inner,
    caller: Caller<'_>,
    user_id: String,
    provider: String,
    now: UnixTime,
    audit: &mut Audit,
) -> Result<TokenSet, Failure> {
    if !caller.may(ServicePermission::TokenOffline) {
        return Err(Failure::Denied(ServicePermission::TokenOffline));
    }
    if inner.catalog.get(&provider).is_none() {
        return Err(Failure::BadRequest(format!(
            "No provider {provider:?} is configured."
        )));
    }
    audit.user = Some(user_id.clone());
    audit.provider = Some(provider.clone());
    let accounts = inner
        .store
        .list_accounts_for_user(&UserId::new(user_id))
        .await
        .map_err(|e| Failure::Rejected(AuthRejection::store_unavailable(&e)))?;
    let account = accounts
        .into_iter()
        .find(|a| a.provider == provider)
        .ok_or(Failure::AccountNotFound)?;
    let account = AccountRef {
        id: account.id,
        provider,
    };
    account_tokens(inner, &account, None, now)
        .await
        .map_err(Failure::Rejected)
}

/// The 200 answer: the access token and what a caller needs to use it.
fn issued(tokens: &TokenSet) -> Response {
    let body = json!({
        "access_token": tokens.access_token.expose(),
        "token_type": tokens.token_type.as_deref().unwrap_or("Bearer"),
        "expires_at": tokens.expires_at.map(UnixTime::as_secs),
        "scope": tokens.scope,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The audit line and the metric of one call.
fn record(
    audit: &Audit,
    outcome: &'static str,
    status: StatusCode,
    request_id: Option<&RequestId>,
) {
    let client = audit.client.as_deref().unwrap_or("unauthenticated");
    metrics::counter!(TOKEN_REQUESTS_TOTAL, "client" => client.to_owned(), "outcome" => outcome)
        .increment(1);
    tracing::info!(
        target: AUDIT_TARGET,
        client,
        user = audit.user.as_deref(),
        provider = audit.provider.as_deref(),
        outcome,
        status = status.as_u16(),
        reason = audit.reason,
        request_id = request_id.and_then(|id| id.0.to_str().ok()),
        "token_endpoint"
    );
}
