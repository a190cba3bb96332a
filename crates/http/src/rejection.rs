//! Why a request gets no usable session or token: the one set of refusals
//! (and their messages) that the access decision, the JSON endpoints,
//! forward-auth and the tower layer's extractors share.
//!
//! A refresh's [`Resolution`] becomes a refusal in exactly one place,
//! [`AuthRejection::from_resolution`]; a refusal becomes an [`HttpError`] in
//! exactly one place, [`AuthRejection::http_error`].

use crate::error::{HttpError, STORE_RETRY_AFTER};
use authgate_core::refresh::Resolution;
use authgate_core::token::TokenSet;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The session error Auth.js clients look for when the provider revoked the grant.
pub const REFRESH_TOKEN_ERROR: &str = "RefreshTokenError";

/// Why a request was refused. Rendered as JSON
/// `{"error": …, "error_description": …}` by the extractors (see
/// [`AuthRejection::http_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// No signed-in session (no [`AuthLayer`](crate::AuthLayer) on the route,
    /// or a public route without one). 401 `SessionRequired`.
    #[error("no signed-in session")]
    SessionRequired,
    /// The session's record was revoked (sign-out, an administrator) or is
    /// gone: this cookie is signed out, whatever it says. 401
    /// `SessionRequired`; browsers sign in again.
    #[error("the session was signed out")]
    SignedOut,
    /// The session has no provider account (a cookie written by an Auth.js
    /// app). 401 `NoAccessToken`.
    #[error("the session has no provider account")]
    NoAccount,
    /// The provider revoked the grant. 401 `RefreshTokenError`.
    #[error("the identity provider revoked the sign-in")]
    Revoked,
    /// The token is stale and the refresh mode is lazy. 401 `TokenExpired`.
    #[error("the access token expired")]
    TokenExpired,
    /// The store could not be read. 503 `StoreUnavailable`.
    #[error("the token store is unreachable")]
    StoreUnavailable,
    /// A refresh could not complete now. 503 `RefreshUnavailable`.
    #[error("the identity provider is unreachable")]
    RefreshUnavailable {
        /// When a retry may help.
        retry_after: Duration,
    },
    /// The provider refused the gateway's refresh request. 502 `ProviderError`.
    #[error("the identity provider refused the refresh request")]
    ProviderRejected,
}

impl AuthRejection {
    /// The tokens of a refresh, or what its failure means for the request:
    /// the one mapping from the core's vocabulary to the HTTP edge's.
    pub fn from_resolution(resolution: Resolution) -> Result<TokenSet, Self> {
        match resolution {
            Resolution::Fresh(tokens) => Ok(tokens),
            Resolution::GrantEnded => Err(AuthRejection::Revoked),
            Resolution::RetryAfter(retry_after) => {
                Err(AuthRejection::RefreshUnavailable { retry_after })
            }
            Resolution::Rejected(_) => Err(AuthRejection::ProviderRejected),
        }
    }

    /// The client-facing error.
    pub fn http_error(&self) -> HttpError {
        match self {
            AuthRejection::SessionRequired => {
                HttpError::unauthorized("SessionRequired", "Sign in first.")
            }
            AuthRejection::SignedOut => HttpError::unauthorized(
                "SessionRequired",
                "This session was signed out; sign in again.",
            ),
            AuthRejection::NoAccount => HttpError::unauthorized(
                "NoAccessToken",
                "This session has no provider account; sign in again.",
            ),
            AuthRejection::Revoked => HttpError::unauthorized(
                REFRESH_TOKEN_ERROR,
                "The identity provider revoked the sign-in; sign in again.",
            ),
            AuthRejection::TokenExpired => HttpError::unauthorized(
                "TokenExpired",
                "The access token expired; call POST /auth/refresh.",
            ),
            AuthRejection::StoreUnavailable => HttpError::unavailable(
                "StoreUnavailable",
                "The session store is not reachable right now; your session is intact. Try again shortly.",
                STORE_RETRY_AFTER,
            ),
            AuthRejection::RefreshUnavailable { retry_after } => HttpError::unavailable(
                "RefreshUnavailable",
                "The identity provider is not reachable right now; your session is intact. Try again shortly.",
                *retry_after,
            ),
            AuthRejection::ProviderRejected => HttpError::new(
                StatusCode::BAD_GATEWAY,
                "ProviderError",
                "The identity provider refused this gateway's refresh request.",
            ),
        }
    }

    /// The refusal for a store that could not answer (logged here, once).
    pub(crate) fn store_unavailable(error: &authgate_store::StoreError) -> Self {
        tracing::warn!(%error, "store unreachable");
        AuthRejection::StoreUnavailable
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.http_error().render(true, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authgate_core::provider_error::ProviderErrorKind;
    use authgate_core::secret::Secret;
    use axum::http::header::RETRY_AFTER;

    #[test]
    fn each_resolution_has_one_refusal_and_each_refusal_one_status() {
        let fresh = Resolution::Fresh(TokenSet {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_at: None,
            token_type: None,
            scope: None,
            id_token: None,
        });
        assert!(AuthRejection::from_resolution(fresh).is_ok());
        let cases = [
            (Resolution::GrantEnded, 401, "RefreshTokenError"),
            (
                Resolution::RetryAfter(Duration::from_secs(7)),
                503,
                "RefreshUnavailable",
            ),
            (
                Resolution::Rejected(ProviderErrorKind::Misconfigured),
                502,
                "ProviderError",
            ),
        ];
        for (resolution, status, code) in cases {
            let error = AuthRejection::from_resolution(resolution)
                .unwrap_err()
                .http_error();
            assert_eq!((error.status.as_u16(), error.code), (status, code));
        }
    }

    #[test]
    fn retry_after_follows_the_provider_hint_and_the_store_policy() {
        let r = AuthRejection::RefreshUnavailable {
            retry_after: Duration::from_secs(7),
        }
        .into_response();
        assert_eq!(r.headers()[RETRY_AFTER], "7");
        let r = AuthRejection::StoreUnavailable.into_response();
        assert_eq!(
            r.headers()[RETRY_AFTER],
            STORE_RETRY_AFTER.as_secs().to_string().as_str()
        );
    }
}
