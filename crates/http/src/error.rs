//! Errors the HTTP edge shows to clients, and how they are rendered.
//!
//! Browsers get an HTML page (or a redirect, decided by the caller); API
//! clients get `{"error": "...", "error_description": "..."}` with the right
//! status and, where a retry can help, `Retry-After`. Nothing here ever
//! contains a token: descriptions are fixed sentences or provider error
//! codes. The refusals every access path shares (no session, revoked grant,
//! store or provider down, …) and their messages are
//! [`AuthRejection`](crate::AuthRejection), next door.
//!
//! The `Retry-After` policy lives here too: a provider's hint is passed on,
//! capped at [`MAX_RETRY_AFTER`] (without a hint, the core's
//! `refresh::DEFAULT_RETRY_AFTER`); an unreachable store says
//! [`STORE_RETRY_AFTER`].

use crate::pages;
use authgate_proxy::ErrorFormat;
use axum::Json;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// The longest `Retry-After` authgate sends, whatever a provider asked for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` when the store (or its cache) cannot be read: long enough
/// for a connection pool to reconnect, short enough not to be noticed.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(2);

/// A failure to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {description}")]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`"InvalidState"`, `"TokenExpired"`, …).
    pub code: &'static str,
    /// A sentence for people.
    pub description: String,
    /// `Retry-After`, for failures that may pass.
    pub retry_after: Option<Duration>,
    /// `WWW-Authenticate`, for a refused bearer token (RFC 6750 §3).
    pub www_authenticate: Option<HeaderValue>,
}

impl HttpError {
    /// An error with a status, a code and a description.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    /// 400: the request itself is wrong (a bad state, a missing parameter).
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    /// 401: no usable session.
    pub fn unauthorized(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, description)
    }

    /// 403: refused (CSRF, access denied).
    pub fn forbidden(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, description)
    }

    /// 503 with `Retry-After`: a dependency is down; nothing was lost.
    /// A provider's hint is passed on, capped at [`MAX_RETRY_AFTER`].
    pub fn unavailable(
        code: &'static str,
        description: impl Into<String>,
        retry_after: Duration,
    ) -> Self {
        Self {
            retry_after: Some(retry_after.min(MAX_RETRY_AFTER)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, description)
        }
    }

    /// Renders as JSON or as an HTML page with a link to `back`.
    pub fn render(&self, json: bool, back: &str) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(
                status = self.status.as_u16(),
                code = self.code,
                "request failed: {}",
                self.description
            );
        } else {
            tracing::info!(
                status = self.status.as_u16(),
                code = self.code,
                "request refused: {}",
                self.description
            );
        }
        let mut response = if json {
            (
                self.status,
                Json(json!({"error": self.code, "error_description": self.description})),
            )
                .into_response()
        } else {
            let title = self.status.canonical_reason().unwrap_or("Error");
            (
                self.status,
                Html(pages::error_page(
                    title,
                    &self.description,
                    back,
                    "Sign in again",
                )),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = &self.www_authenticate {
            headers.insert(axum::http::header::WWW_AUTHENTICATE, challenge.clone());
        }
        if let Some(after) = self.retry_after {
            let secs = after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert(RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Whether the client asked for JSON rather than a page: its `Accept`
/// headers (all of them, any letter case: the one parser,
/// [`ErrorFormat::from_accept`]) name `application/json` and not
/// `text/html`, or it sent JSON.
pub fn wants_json(headers: &HeaderMap) -> bool {
    ErrorFormat::from_accept(headers) == ErrorFormat::Json || sends_json(headers)
}

/// Whether the request body is JSON (`Content-Type: application/json`).
pub(crate) fn sends_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::ACCEPT;

    #[test]
    fn unavailable_errors_carry_retry_after_and_json_shape() {
        let r = HttpError::unavailable("ProviderUnavailable", "try later", Duration::from_secs(7))
            .render(true, "/auth/signin");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "7");
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/json;q=0.9"),
        );
        assert!(!wants_json(&h));
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&h));
    }

    #[test]
    fn every_accept_header_is_read_in_any_letter_case() {
        let mut h = HeaderMap::new();
        h.append(ACCEPT, HeaderValue::from_static("Application/JSON"));
        assert!(wants_json(&h));
        h.append(ACCEPT, HeaderValue::from_static("TEXT/HTML"));
        assert!(!wants_json(&h), "a second header naming HTML wins");
        let mut sent = HeaderMap::new();
        sent.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(wants_json(&sent));
    }
}
