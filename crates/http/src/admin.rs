//! The session administration API, for service clients allowed `sessions`
//! (an operator's tooling, a support console): list a user's sessions,
//! revoke one, revoke them all. `authgate sessions` does the same from the
//! command line.
//!
//! | request | answer |
//! |---|---|
//! | `GET {base}/admin/sessions?user_id=U` | 200 `{"sessions": [{id, kind, provider, created_at, last_seen_at, expires, user_agent, revoked_at, live}]}`, newest first |
//! | `DELETE {base}/admin/sessions/{id}` | 200 `{"revoked": 1}`; 404 `SessionNotFound` when it does not exist or was already revoked |
//! | `DELETE {base}/admin/sessions?user_id=U` | 200 `{"revoked": N}` (every live session of the user) |
//! | no or bad client credentials | 401 `invalid_client` |
//! | a browser's metadata, or no `sessions` permission | 403 `access_denied` |
//! | over the client's rate limit | 429 + `Retry-After` |
//! | no or a malformed `user_id` | 400 `invalid_request` |
//! | the store is down | 503 + `Retry-After` |
//!
//! A revoked session is signed out as sign-out does it: a database session
//! at once; a JWT session at its next store check, or at once with
//! `revocation_check = "request"` (the store's cache puts it in the
//! revocation set). The provider grant is left alone: the user's other
//! sessions and `token:offline` jobs keep working.
//!
//! Every call writes one audit line (target `authgate::audit`, message
//! `sessions_admin`: client, action, user or session, outcome, status).

use crate::error::HttpError;
use crate::request_id::RequestId;
use crate::service_client::{Refusal, ServicePermission};
use crate::state::{Gateway, Inner};
use crate::token_endpoint::AUDIT_TARGET;
use authgate_core::time::UnixTime;
use authgate_store::{SessionId, SessionKind, SessionRecord, StoreError, UserId};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest `user_id` or session id accepted.
const MAX_ID: usize = 255;

/// `?user_id=…`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserQuery {
    user_id: Option<String>,
}

/// What one call asked for, for the audit line.
#[derive(Debug, Clone, Copy)]
enum Action {
    List,
    RevokeOne,
    RevokeUser,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::RevokeOne => "revoke_session",
            Action::RevokeUser => "revoke_user",
        }
    }
}

/// Why a call was not served.
#[derive(Debug)]
enum Failure {
    Client(Refusal),
    Denied,
    BadRequest(&'static str),
    NotFound,
    Store,
}

impl Failure {
    fn outcome(&self) -> &'static str {
        match self {
            Failure::Client(Refusal::InvalidClient(_)) => "invalid_client",
            Failure::Client(Refusal::Browser) => "browser_refused",
            Failure::Client(Refusal::RateLimited(_)) => "rate_limited",
            Failure::Denied => "access_denied",
            Failure::BadRequest(_) => "invalid_request",
            Failure::NotFound => "session_not_found",
            Failure::Store => "unavailable",
        }
    }

    fn response(self) -> Response {
        match self {
            Failure::Client(refusal) => refusal.response(),
            Failure::Denied => HttpError::forbidden(
                "access_denied",
                format!(
                    "This client is not allowed {:?}.",
                    ServicePermission::Sessions.as_str()
                ),
            )
            .render(true, ""),
            Failure::BadRequest(description) => {
                HttpError::bad_request("invalid_request", description).render(true, "")
            }
            Failure::NotFound => HttpError::new(
                StatusCode::NOT_FOUND,
                "SessionNotFound",
                "No live session has this id.",
            )
            .render(true, ""),
            Failure::Store => crate::rejection::AuthRejection::StoreUnavailable
                .http_error()
                .render(true, ""),
        }
    }
}

/// `GET {base}/admin/sessions?user_id=U`.
pub(crate) async fn list(
    State(gw): State<Gateway>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    let inner = &gw.inner;
    let subject = query.user_id.clone();
    let result = async {
        admit(inner, &headers)?;
        let user = user_id(query)?;
        let records = inner
            .store
            .list_user_sessions(&user)
            .await
            .map_err(store_failure)?;
        let now = inner.clock.now();
        let mut sessions = Vec::with_capacity(records.len());
        for record in &records {
            sessions.push(session_json(inner, record, now).await?);
        }
        Ok(Json(json!({ "sessions": sessions })).into_response())
    }
    .await;
    answer(inner, &headers, Action::List, subject, result, request_id)
}

/// `DELETE {base}/admin/sessions/{id}`.
pub(crate) async fn revoke_one(
    State(gw): State<Gateway>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let inner = &gw.inner;
    let subject = Some(id.clone());
    let result = async {
        admit(inner, &headers)?;
        if !plain_id(&id) {
            return Err(Failure::BadRequest("The session id is malformed."));
        }
        let now = inner.clock.now();
        match inner
            .store
            .revoke_session(&SessionId::new(id), now)
            .await
            .map_err(store_failure)?
        {
            Some(_) => Ok(Json(json!({ "revoked": 1 })).into_response()),
            None => Err(Failure::NotFound),
        }
    }
    .await;
    answer(
        inner,
        &headers,
        Action::RevokeOne,
        subject,
        result,
        request_id,
    )
}

/// `DELETE {base}/admin/sessions?user_id=U`.
pub(crate) async fn revoke_user(
    State(gw): State<Gateway>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    Query(query): Query<UserQuery>,
) -> Response {
    let inner = &gw.inner;
    let subject = query.user_id.clone();
    let result = async {
        admit(inner, &headers)?;
        let user = user_id(query)?;
        let revoked = inner
            .store
            .revoke_user_sessions(&user, inner.clock.now())
            .await
            .map_err(store_failure)?;
        Ok(Json(json!({ "revoked": revoked.len() })).into_response())
    }
    .await;
    answer(
        inner,
        &headers,
        Action::RevokeUser,
        subject,
        result,
        request_id,
    )
}

/// Admits the client and checks its `sessions` permission.
fn admit(inner: &Inner, headers: &HeaderMap) -> Result<(), Failure> {
    let caller = inner
        .service_clients
        .admit(headers)
        .map_err(Failure::Client)?;
    if caller.may(ServicePermission::Sessions) {
        Ok(())
    } else {
        Err(Failure::Denied)
    }
}

fn user_id(query: UserQuery) -> Result<UserId, Failure> {
    match query.user_id {
        Some(id) if plain_id(&id) => Ok(UserId::new(id)),
        Some(_) => Err(Failure::BadRequest(
            "user_id must be 1 to 255 bytes without control characters.",
        )),
        None => Err(Failure::BadRequest("Name the user: ?user_id=…")),
    }
}

/// 1 to [`MAX_ID`] bytes, no control characters.
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && !id.contains(char::is_control)
}

fn store_failure(error: StoreError) -> Failure {
    tracing::warn!(%error, "store unreachable");
    Failure::Store
}

/// One session as the API lists it.
async fn session_json(
    inner: &Inner,
    record: &SessionRecord,
    now: UnixTime,
) -> Result<Value, Failure> {
    let provider = match &record.account_id {
        Some(account) => inner.provider_of(account).await.map_err(store_failure)?,
        None => None,
    };
    Ok(json!({
        "id": record.id.as_str(),
        "kind": match record.kind {
            SessionKind::Jwt => "jwt",
            SessionKind::Database => "database",
        },
        "provider": provider,
        "created_at": record.created_at.as_secs(),
        "last_seen_at": record.last_seen_at.as_secs(),
        "expires": record.expires.as_secs(),
        "user_agent": record.user_agent,
        "revoked_at": record.revoked_at.map(UnixTime::as_secs),
        "live": record.is_live(now),
    }))
}

/// The response, with its audit line and `Cache-Control: no-store`.
fn answer(
    inner: &Inner,
    headers: &HeaderMap,
    action: Action,
    subject: Option<String>,
    result: Result<Response, Failure>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let client = inner
        .service_clients
        .claimed_id(headers)
        .unwrap_or("unauthenticated");
    let subject: Option<String> = subject.map(|s| s.chars().take(MAX_ID).collect());
    let (outcome, mut response) = match result {
        Ok(response) => ("ok", response),
        Err(failure) => (failure.outcome(), failure.response()),
    };
    tracing::info!(
        target: AUDIT_TARGET,
        client,
        action = action.as_str(),
        subject = subject.as_deref(),
        outcome,
        status = response.status().as_u16(),
        request_id = request_id.as_deref().and_then(|id| id.0.to_str().ok()),
        "sessions_admin"
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
