//! authgate in-process: a tower [`Layer`] and axum extractors, so a Rust
//! service gets the protection the reverse proxy gives, without a proxy.
//!
//! ```no_run
//! # fn demo(gateway: authgate_http::Gateway) {
//! use authgate_http::{AccessToken, AuthLayer, Session};
//! use axum::{Router, routing::get};
//!
//! async fn me(session: Session) -> String {
//!     format!("hello {}", session.identity().id)
//! }
//! async fn upstream_call(token: AccessToken) -> String {
//!     // `token.expose()` is the provider access token: send it, never log it.
//!     format!("{} bytes", token.expose().len())
//! }
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(AuthLayer::protected(gateway.clone()))
//!     .merge(
//!         Router::new()
//!             .route("/api/call", get(upstream_call))
//!             .route_layer(AuthLayer::api(gateway.clone())),
//!     )
//!     .nest(&gateway.settings().base_path.clone(), gateway.auth_routes());
//! # }
//! ```
//!
//! [`AuthService`] asks [`Gateway::decide`] about every request — the same
//! decision the proxy and forward-auth make, refreshes included — and then:
//!
//! * **allow**: the session (when signed in) goes into the request's
//!   extensions as an `Arc<CurrentSession>`, the inner service runs, and the
//!   decision's `Set-Cookie`s (a rewritten session cookie after a refresh)
//!   are *appended* to its response, next to the inner service's own;
//! * **sign in** / **deny**: the layer answers itself (302 to the sign-in
//!   page, or a 401/403/503 error) and the inner service is not called.
//!
//! The extractors read what the layer left: [`Session`] (401 JSON
//! `SessionRequired` without one; `Option<Session>` never rejects) and
//! [`AccessToken`] (the account's current provider token, read through the
//! gateway's store and cache; fresh, because the layer refreshed it).

use crate::error::HttpError;
use crate::forward::append_all;
use crate::gate::{AllowList, Verdict};
use crate::session::{CurrentSession, Identity};
use crate::settings::RefreshMode;
use crate::state::Gateway;
use authgate_core::refresh::Outcome;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_proxy::Access;
use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Applies authgate's access decision to every request of the wrapped
/// service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gateway: Gateway,
    policy: Arc<Policy>,
}

#[derive(Debug)]
struct Policy {
    access: Access,
    allow: AllowList,
}

impl AuthLayer {
    /// A layer deciding with `access` and no allow-list.
    pub fn new(gateway: Gateway, access: Access) -> Self {
        Self {
            gateway,
            policy: Arc::new(Policy {
                access,
                allow: AllowList::default(),
            }),
        }
    }

    /// Pages: without a session, browsers are redirected to
    /// `{base}/signin?callbackUrl=<path>` (JSON clients get 401).
    pub fn protected(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Protected)
    }

    /// APIs: without a session, 401 JSON `SessionRequired`, never a redirect.
    pub fn api(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Api)
    }

    /// Open to everyone; the session is available when there is one (it is
    /// not refreshed on public routes, but [`AccessToken`] still is).
    pub fn public(gateway: Gateway) -> Self {
        Self::new(gateway, Access::Public)
    }

    /// Restricts signed-in users to `allow` (403 for the others; ignored on
    /// public routes).
    pub fn allow(self, allow: AllowList) -> Self {
        Self {
            gateway: self.gateway,
            policy: Arc::new(Policy {
                access: self.policy.access,
                allow,
            }),
        }
    }

    /// The access policy.
    pub fn access(&self) -> Access {
        self.policy.access
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            gateway: self.gateway.clone(),
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service [`AuthLayer`] wraps around `S`.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    gateway: Gateway,
    policy: Arc<Policy>,
}

impl<S> AuthService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// What [`AuthService`] gives the gateway to the extractors.
#[derive(Clone)]
struct LayerContext {
    gateway: Gateway,
}

/// The response future of [`AuthService`].
pub type AuthFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // `self.inner` is the instance `poll_ready` drove to readiness: take
        // it for this request and leave a fresh clone for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let gateway = self.gateway.clone();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            // Behind `Router::nest` the URI lost its prefix; sign-in must
            // come back to the address the browser asked for.
            let uri = request
                .extensions()
                .get::<OriginalUri>()
                .map_or(request.uri(), |o| &o.0);
            let return_to = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let decision = gateway
                .decide(policy.access, &policy.allow, request.headers(), &return_to)
                .await;
            match decision.verdict {
                Verdict::Allow(session) => {
                    let extensions = request.extensions_mut();
                    match session {
                        Some(s) => {
                            extensions.insert(Arc::<CurrentSession>::from(s));
                        }
                        None => {
                            extensions.remove::<Arc<CurrentSession>>();
                        }
                    }
                    extensions.insert(LayerContext {
                        gateway: gateway.clone(),
                    });
                    let mut response = inner.call(request).await?.map(Body::new);
                    append_all(response.headers_mut(), &decision.cookies);
                    Ok(response)
                }
                Verdict::SignIn(_) | Verdict::Deny(_) => {
                    let back = gateway.settings().auth_url("/signin");
                    Ok(decision.into_response(&back))
                }
            }
        })
    }
}

/// Why an extractor refused. Rendered as JSON
/// `{"error": …, "error_description": …}` (see [`AuthRejection::http_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    /// No signed-in session (no [`AuthLayer`] on the route, or a public
    /// route without one). 401 `SessionRequired`.
    #[error("no signed-in session")]
    SessionRequired,
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
    /// The client-facing error.
    pub fn http_error(&self) -> HttpError {
        match self {
            AuthRejection::SessionRequired => {
                HttpError::unauthorized("SessionRequired", "Sign in first.")
            }
            AuthRejection::NoAccount => HttpError::unauthorized(
                "NoAccessToken",
                "This session has no provider account; sign in again.",
            ),
            AuthRejection::Revoked => HttpError::unauthorized(
                crate::session::REFRESH_TOKEN_ERROR,
                "The identity provider revoked the sign-in; sign in again.",
            ),
            AuthRejection::TokenExpired => HttpError::unauthorized(
                "TokenExpired",
                "The access token expired; call POST /auth/refresh.",
            ),
            AuthRejection::StoreUnavailable => HttpError::unavailable(
                "StoreUnavailable",
                "The session store is not reachable right now; your session is intact. Try again shortly.",
                Duration::from_secs(1),
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
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.http_error().render(true, "")
    }
}

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

/// The signed-in account's current provider access token, read through the
/// gateway's store and cache (never from the cookie).
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
    /// The current access token of `session`'s account, from the store
    /// (through the cache). A stale token is refreshed through the refresh
    /// service first (single flight, as everywhere); in lazy mode it is
    /// [`AuthRejection::TokenExpired`] instead.
    pub async fn access_token(
        &self,
        session: &CurrentSession,
    ) -> Result<AccessToken, AuthRejection> {
        let inner = &self.inner;
        if session.error.is_some() {
            return Err(AuthRejection::Revoked);
        }
        let Some(account) = &session.account else {
            return Err(AuthRejection::NoAccount);
        };
        let stored = match inner.store.read_tokens(&account.id).await {
            Ok(Some(v)) => v,
            Ok(None) => return Err(AuthRejection::Revoked),
            Err(error) => {
                tracing::warn!(%error, "access token lookup failed");
                return Err(AuthRejection::StoreUnavailable);
            }
        };
        let tokens = match stored.tokens {
            Some(t) if stored.revoked_at.is_none() => t,
            _ => return Err(AuthRejection::Revoked),
        };
        if !inner
            .settings
            .policy
            .is_stale(tokens.expires_at, inner.clock.now())
        {
            return Ok(AccessToken::from_tokens(tokens));
        }
        if inner.settings.refresh_mode == RefreshMode::Lazy {
            return Err(AuthRejection::TokenExpired);
        }
        match inner.refresh.refresh(&account.id, &account.provider).await {
            Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => {
                Ok(AccessToken::from_tokens(tokens))
            }
            Outcome::Revoked | Outcome::NoRefreshToken | Outcome::AccountMissing => {
                Err(AuthRejection::Revoked)
            }
            Outcome::Unavailable { retry_after } => {
                Err(AuthRejection::RefreshUnavailable { retry_after })
            }
            Outcome::ProviderRejected(_) => Err(AuthRejection::ProviderRejected),
        }
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::session::{AccountRef, SessionSource, new_claims, write_jwt};
    use crate::settings::GatewaySettings;
    use crate::state::{GatewayParts, Routes};
    use authgate_core::cookie::CookieFormat;
    use authgate_core::token::ExpiryPolicy;
    use authgate_oauth::Catalog;
    use authgate_proxy::RouteRules;
    use authgate_refresh::{
        BreakerSettings, CatalogRefresher, PollingSignal, RefreshDeps, RefreshService, SystemClock,
    };
    use authgate_store::{AccountId, KeyRing, NewAccount, NewUser, SqliteStore, Store};
    use axum::Router;
    use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
    use axum::http::{HeaderMap, HeaderValue};
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    const SECRET: &[u8] = b"layer-test-secret-at-least-32-chars!!";

    /// A gateway over an in-memory SQLite store (`migrate: false` leaves it
    /// without tables, so every read fails like an unreachable store).
    async fn gateway(migrate: bool) -> (Gateway, Arc<dyn Store>) {
        let keys = KeyRing::from_secrets(&[SECRET]).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open("sqlite::memory:", keys).await.unwrap());
        if migrate {
            store.migrate().await.unwrap();
        }
        let catalog = Catalog::from_providers(Vec::new()).unwrap();
        let policy = ExpiryPolicy {
            skew: Duration::from_secs(5),
        };
        let refresh = RefreshService::new(
            RefreshDeps {
                store: Arc::clone(&store),
                token_cache: Arc::new(authgate_store::cache::NoTokenCache),
                refresher: Arc::new(CatalogRefresher::new(catalog.clone())),
                signal: Arc::new(PollingSignal::new(Duration::from_millis(50))),
                clock: Arc::new(SystemClock),
            },
            authgate_core::refresh::RefreshSettings {
                policy,
                ..Default::default()
            },
            BreakerSettings::default(),
            "layer-test".to_owned(),
        );
        let mut settings = GatewaySettings::new("http://127.0.0.1:1/".parse().unwrap());
        settings.policy = policy;
        let gw = Gateway::new(GatewayParts {
            settings,
            secrets: vec![SECRET.to_vec()],
            cookie_format: CookieFormat::AuthJs,
            store: Arc::clone(&store),
            catalog,
            refresh,
            clock: Arc::new(SystemClock),
            routes: Routes {
                rules: RouteRules::new(Vec::new()).unwrap(),
                allow: Vec::new(),
            },
            upstream: None,
        })
        .unwrap();
        (gw, store)
    }

    fn now() -> UnixTime {
        UnixTime::from_secs(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64,
        )
    }

    fn identity() -> Identity {
        Identity {
            id: "user-1".to_owned(),
            name: Some("Ann".to_owned()),
            email: Some("ann@example.com".to_owned()),
            image: None,
        }
    }

    fn session(account: Option<AccountRef>) -> CurrentSession {
        CurrentSession {
            identity: identity(),
            account,
            access_expires_at: Some(now().saturating_add(Duration::from_secs(600))),
            expires: now().saturating_add(Duration::from_secs(3600)),
            error: None,
            source: SessionSource::Database(Secret::new("opaque")),
            cookie_names: Vec::new(),
        }
    }

    /// A `Cookie` header carrying a JWT session for `account`, whose access
    /// token expires at `ate`.
    fn cookie(gw: &Gateway, account: &AccountRef, ate: UnixTime) -> HeaderValue {
        let mut set = HeaderMap::new();
        let claims = new_claims(&identity(), account, Some(ate));
        write_jwt(&gw.inner, &claims, &[], now(), &mut set);
        let pairs: Vec<&str> = set
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap())
            .collect();
        HeaderValue::from_str(&pairs.join("; ")).unwrap()
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn extract<T: FromRequestParts<()>>(request: Request<()>) -> Result<T, T::Rejection> {
        let (mut parts, ()) = request.into_parts();
        T::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn session_is_required_outside_the_layer_and_renders_401_json() {
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
        let body = body_json(response).await;
        assert_eq!(body["error"], "SessionRequired");
    }

    #[tokio::test]
    async fn optional_session_is_none_without_a_session_and_some_with_one() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let none =
            <Session as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await;
        assert!(none.unwrap().is_none());
        parts.extensions.insert(Arc::new(session(None)));
        let some = <Session as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(some.identity().email.as_deref(), Some("ann@example.com"));
        assert_eq!(some.provider(), None);
    }

    #[tokio::test]
    async fn access_token_rejections() {
        // No session at all.
        let r = extract::<AccessToken>(Request::new(())).await.unwrap_err();
        assert_eq!(r, AuthRejection::SessionRequired);
        let (mut parts, ()) = Request::new(()).into_parts();
        assert!(
            <AccessToken as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap()
                .is_none()
        );

        // A session but no layer: nothing to read the token with.
        let mut request = Request::new(());
        request.extensions_mut().insert(Arc::new(session(None)));
        let r = extract::<AccessToken>(request).await.unwrap_err();
        assert_eq!(r, AuthRejection::SessionRequired);

        // A session without an account.
        let (gw, _) = gateway(true).await;
        let mut request = Request::new(());
        request.extensions_mut().insert(Arc::new(session(None)));
        request.extensions_mut().insert(LayerContext {
            gateway: gw.clone(),
        });
        let r = extract::<AccessToken>(request).await.unwrap_err();
        assert_eq!(r, AuthRejection::NoAccount);
        assert_eq!(r.into_response().status(), StatusCode::UNAUTHORIZED);

        // An account the store does not know: the grant is gone.
        let account = AccountRef {
            id: AccountId::new("missing"),
            provider: "op".to_owned(),
        };
        let r = gw
            .access_token(&session(Some(account.clone())))
            .await
            .unwrap_err();
        assert_eq!(r, AuthRejection::Revoked);
        let body = body_json(r.into_response()).await;
        assert_eq!(body["error"], "RefreshTokenError");

        // The store cannot answer: 503 with Retry-After, session intact.
        let (broken, _) = gateway(false).await;
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(Arc::new(session(Some(account))));
        request
            .extensions_mut()
            .insert(LayerContext { gateway: broken });
        let r = extract::<AccessToken>(request).await.unwrap_err();
        assert_eq!(r, AuthRejection::StoreUnavailable);
        let response = r.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(body_json(response).await["error"], "StoreUnavailable");
    }

    #[tokio::test]
    async fn access_token_reads_the_store_and_never_shows_in_debug() {
        let (gw, store) = gateway(true).await;
        let user = store
            .create_user(NewUser {
                name: Some("Ann".to_owned()),
                email: Some("ann@example.com".to_owned()),
                email_verified: None,
                image: None,
            })
            .await
            .unwrap();
        let expires_at = now().saturating_add(Duration::from_secs(600));
        let linked = store
            .link_account(NewAccount {
                user_id: user.id.clone(),
                kind: "oidc".to_owned(),
                provider: "op".to_owned(),
                provider_account_id: "ann".to_owned(),
                tokens: TokenSet {
                    access_token: Secret::new("at-very-secret"),
                    refresh_token: Some(Secret::new("rt-very-secret")),
                    expires_at: Some(expires_at),
                    token_type: Some("Bearer".to_owned()),
                    scope: Some("openid".to_owned()),
                    id_token: None,
                },
                session_state: None,
            })
            .await
            .unwrap();
        let account = AccountRef {
            id: linked.id.clone(),
            provider: "op".to_owned(),
        };
        let token = gw.access_token(&session(Some(account))).await.unwrap();
        assert_eq!(token.expose(), "at-very-secret");
        assert_eq!(token.expires_at(), Some(expires_at));
        assert_eq!(token.token_type(), Some("Bearer"));
        assert!(!format!("{token:?}").contains("at-very-secret"));
    }

    /// An app with one route behind `layer`; the handler echoes the session's
    /// e-mail, sets its own cookie and counts its calls.
    fn app(layer: AuthLayer, calls: Arc<AtomicUsize>) -> Router {
        Router::new()
            .route(
                "/page",
                get(move |session: Option<Session>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let who = session
                            .and_then(|s| s.identity().email.clone())
                            .unwrap_or_else(|| "anonymous".to_owned());
                        ([(SET_COOKIE, "app=1; Path=/")], who)
                    }
                }),
            )
            .route_layer(layer)
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn anonymous_requests_are_redirected_refused_or_passed_per_policy() {
        let (gw, _) = gateway(true).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let get = || {
            Request::get("/page?x=1")
                .header("accept", "text/html")
                .body(Body::empty())
                .unwrap()
        };

        let r = app(AuthLayer::protected(gw.clone()), Arc::clone(&calls))
            .oneshot(get())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()[LOCATION],
            "/auth/signin?callbackUrl=%2Fpage%3Fx%3D1"
        );

        let r = app(AuthLayer::api(gw.clone()), Arc::clone(&calls))
            .oneshot(get())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(r).await["error"], "SessionRequired");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "inner service not called");

        let r = app(AuthLayer::public(gw.clone()), Arc::clone(&calls))
            .oneshot(get())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(text(r).await, "anonymous");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_valid_session_reaches_the_handler_and_the_allow_list_applies() {
        let (gw, _) = gateway(true).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let account = AccountRef {
            id: AccountId::new("acc"),
            provider: "op".to_owned(),
        };
        let fresh = now().saturating_add(Duration::from_secs(600));
        let request = || {
            Request::get("/page")
                .header(COOKIE, cookie(&gw, &account, fresh))
                .body(Body::empty())
                .unwrap()
        };
        let r = app(AuthLayer::protected(gw.clone()), Arc::clone(&calls))
            .oneshot(request())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let set: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(set, ["app=1; Path=/"], "the handler's own cookie is kept");
        assert_eq!(text(r).await, "ann@example.com");

        let only_others = AllowList {
            emails: Vec::new(),
            domains: vec!["example.org".to_owned()],
        };
        let r = app(
            AuthLayer::api(gw.clone()).allow(only_others),
            Arc::clone(&calls),
        )
        .oneshot(request())
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_revoked_grant_is_refused_with_the_rewritten_cookie_and_no_handler_call() {
        // A stale token whose account is unknown to the store: the refresh
        // finds no account, the grant counts as revoked.
        let (gw, _) = gateway(true).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let account = AccountRef {
            id: AccountId::new("gone"),
            provider: "op".to_owned(),
        };
        let stale = now().saturating_sub(Duration::from_secs(60));
        let r = app(AuthLayer::api(gw.clone()), Arc::clone(&calls))
            .oneshot(
                Request::get("/page")
                    .header(COOKIE, cookie(&gw, &account, stale))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|v| v.to_str().unwrap().starts_with("authjs.session-token"))
        );
        assert_eq!(body_json(r).await["error"], "RefreshTokenError");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    /// A service that is ready only after one `poll_ready`, and panics when
    /// called unready: the layer must call the instance it polled.
    #[derive(Default)]
    struct NeedsPolling {
        ready: bool,
    }

    impl Clone for NeedsPolling {
        /// A clone starts unready, like a connection pool handle would.
        fn clone(&self) -> Self {
            Self { ready: false }
        }
    }

    impl Service<Request<Body>> for NeedsPolling {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            assert!(self.ready, "called without poll_ready");
            std::future::ready(Ok(StatusCode::NO_CONTENT.into_response()))
        }
    }

    #[tokio::test]
    async fn the_service_calls_the_inner_instance_that_was_polled_ready() {
        let (gw, _) = gateway(true).await;
        let mut service = AuthLayer::public(gw).layer(NeedsPolling::default());
        for _ in 0..2 {
            let ready = service.ready().await.unwrap();
            let r = ready
                .call(Request::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
}
