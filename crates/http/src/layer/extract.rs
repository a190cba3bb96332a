//! The extractors: [`Session`] and [`AccessToken`], read from what the
//! [`AuthLayer`](super::AuthLayer) left in the request's extensions.

use super::service::LayerContext;
use crate::rejection::AuthRejection;
use crate::session::{CurrentSession, Identity};
use crate::settings::RefreshMode;
use crate::state::Gateway;
use crate::tokens::fresh_tokens;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

/// The signed-in user, as the [`AuthLayer`] found them.
///
/// Rejects with 401 `SessionRequired` when there is none; use
/// `Option<Session>` on routes open to everyone.
#[derive(Debug, Clone)]
pub struct Session(Arc<CurrentSession>);

impl Session {
    /// Who is signed in.
    pub fn identity(&self) -> &Identity {
        &self.0.identity
    }

    /// The provider the user signed in with (`None` for a session without
    /// an account, e.g. a cookie written by an Auth.js app).
    pub fn provider(&self) -> Option<&str> {
        self.0.account.as_ref().map(|a| a.provider.as_str())
    }

    /// When the account's access token expires, when known (after any
    /// refresh the layer made).
    pub fn access_token_expires_at(&self) -> Option<UnixTime> {
        self.0.access_expires_at
    }

    /// When the session ends.
    pub fn expires(&self) -> UnixTime {
        self.0.expires
    }

    /// The whole session.
    pub fn current(&self) -> &Arc<CurrentSession> {
        &self.0
    }
}

impl std::ops::Deref for Session {
    type Target = CurrentSession;

    fn deref(&self) -> &CurrentSession {
        &self.0
    }
}

fn session_of(parts: &Parts) -> Option<Session> {
    parts
        .extensions
        .get::<Arc<CurrentSession>>()
        .cloned()
        .map(Session)
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        session_of(parts).ok_or(AuthRejection::SessionRequired)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(session_of(parts))
    }
}

/// The signed-in account's current provider access token (never from the
/// cookie): the one the layer's decision already read or refreshed, else
/// one got through the gateway's cache and refresh service.
///
/// It is fresh: the layer refreshed it on protected and API routes, and a
/// stale one found here (a public route) is refreshed first (lazy mode:
/// 401 `TokenExpired`). Rejections: 401 without a session or when the grant
/// was revoked, 503 when the store or the provider is unreachable.
///
/// Its `Debug` never shows the token; neither should your logs.
#[derive(Clone)]
pub struct AccessToken {
    token: Secret,
    expires_at: Option<UnixTime>,
    token_type: Option<String>,
    scope: Option<String>,
}

impl AccessToken {
    fn from_tokens(tokens: TokenSet) -> Self {
        Self {
            token: tokens.access_token,
            expires_at: tokens.expires_at,
            token_type: tokens.token_type,
            scope: tokens.scope,
        }
    }

    /// The token (redacted in `Debug`/`Display`).
    pub fn secret(&self) -> &Secret {
        &self.token
    }

    /// The token itself, to send to the provider's APIs.
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// When it expires, when the provider said.
    pub fn expires_at(&self) -> Option<UnixTime> {
        self.expires_at
    }

    /// Its type, usually `Bearer`.
    pub fn token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }

    /// The scopes the provider granted.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .finish()
    }
}

impl Gateway {
    /// The current access token of `session`'s account, fresh: the one the
    /// request already holds (the access decision read or refreshed it), or
    /// the cache's, or a refresh's through the refresh service (single
    /// flight, as everywhere) — the one token-access path the proxy,
    /// forward-auth and the layer share. In lazy mode a stale session is
    /// [`AuthRejection::TokenExpired`] instead of a refresh.
    pub async fn access_token(
        &self,
        session: &CurrentSession,
    ) -> Result<AccessToken, AuthRejection> {
        let inner = &self.inner;
        let mut session = session.clone();
        let may_refresh = inner.settings.refresh_mode != RefreshMode::Lazy;
        fresh_tokens(inner, &mut session, inner.clock.now(), may_refresh)
            .await
            .map(AccessToken::from_tokens)
    }
}

async fn access_token_of(parts: &Parts, session: &Session) -> Result<AccessToken, AuthRejection> {
    let Some(context) = parts.extensions.get::<LayerContext>() else {
        tracing::debug!("AccessToken extracted on a route without an AuthLayer");
        return Err(AuthRejection::SessionRequired);
    };
    context.gateway.access_token(&session.0).await
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let session = session_of(parts).ok_or(AuthRejection::SessionRequired)?;
        access_token_of(parts, &session).await
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AccessToken {
    type Rejection = AuthRejection;

    /// `None` without a session; the same rejections as [`AccessToken`]
    /// otherwise.
    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match session_of(parts) {
            Some(session) => access_token_of(parts, &session).await.map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::CONTENT_TYPE;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;

    async fn extract<T: FromRequestParts<()>>(request: Request<()>) -> Result<T, T::Rejection> {
        let (mut parts, ()) = request.into_parts();
        T::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn without_the_layer_session_and_token_are_required_and_render_401_json() {
        let rejection = extract::<Session>(Request::new(())).await.unwrap_err();
        assert_eq!(rejection, AuthRejection::SessionRequired);
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let r = extract::<AccessToken>(Request::new(())).await.unwrap_err();
        assert_eq!(r, AuthRejection::SessionRequired);
        let (mut parts, ()) = Request::new(()).into_parts();
        assert!(
            <AccessToken as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap()
                .is_none()
        );
        let none =
            <Session as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await;
        assert!(none.unwrap().is_none());
    }
}
