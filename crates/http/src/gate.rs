//! The access decision for one request: may it pass, must the user sign in,
//! or is it refused — the one function the reverse proxy, forward-auth and
//! the tower layer all call.
//!
//! | route | no session | stale token | revoked grant | provider down |
//! |---|---|---|---|---|
//! | `public` | pass, no identity | pass (no refresh on public routes) | pass, no identity | pass |
//! | `protected` | 302 to sign-in (401 JSON for `Accept: application/json`) | refresh inline | 302 to sign-in with `error=RefreshTokenError` | 503 page, `Retry-After` |
//! | `api` | 401 `SessionRequired` | refresh inline; lazy mode: 401 `TokenExpired` | 401 `RefreshTokenError` | 503 JSON, `Retry-After` |
//!
//! A valid JWT cookie with a fresh token is decided without I/O.

use crate::cookies::request_cookies;
use crate::error::{HttpError, wants_json};
use crate::session::{CurrentSession, Freshness, ensure_fresh, read_session, rewrite_cookie};
use crate::settings::RefreshMode;
use crate::state::{Gateway, Inner};
pub use authgate_proxy::AllowList;
use authgate_proxy::{Access, Permits};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What happens to the request.
#[derive(Debug)]
pub enum Verdict {
    /// Let it through; the session is present when signed in.
    Allow(Option<Box<CurrentSession>>),
    /// Send the browser to sign in at this location.
    SignIn(String),
    /// Refuse with this error.
    Deny(HttpError),
}

/// A verdict plus the cookies to set on whatever response follows.
#[derive(Debug)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// `Set-Cookie` headers (a rewritten session cookie).
    pub cookies: HeaderMap,
    /// Render errors as JSON.
    pub json: bool,
}

impl Decision {
    /// The response for a non-`Allow` verdict (`Allow` gives 200 with no body).
    pub fn into_response(self, back: &str) -> Response {
        let mut response = match self.verdict {
            Verdict::Allow(_) => StatusCode::OK.into_response(),
            Verdict::SignIn(location) => {
                let mut r = StatusCode::FOUND.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(LOCATION, v);
                }
                r.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Verdict::Deny(error) => error.render(self.json, back),
        };
        response.headers_mut().extend(self.cookies);
        response
    }
}

impl Gateway {
    /// Decides a request to a route with `access`, whose signed-in users
    /// must be permitted by `allow` (an [`AllowList`], or the
    /// [`Judgement`](authgate_proxy::Judgement) of a request path, which
    /// combines every reading's lists). `return_to` is where sign-in should
    /// come back to (path and query).
    pub async fn decide(
        &self,
        access: Access,
        allow: &(dyn Permits + Sync),
        headers: &HeaderMap,
        return_to: &str,
    ) -> Decision {
        let inner = &self.inner;
        let json = access == Access::Api || wants_json(headers);
        let now = inner.clock.now();
        let cookies = request_cookies(headers);
        let decision = |verdict, cookies| Decision {
            verdict,
            cookies,
            json,
        };
        let session = match read_session(inner, &cookies, now).await {
            Ok(session) => session,
            Err(unavailable) => return decision(Verdict::Deny(unavailable), HeaderMap::new()),
        };
        let Some(mut session) = session else {
            return decision(
                no_session(inner, access, json, return_to, None),
                HeaderMap::new(),
            );
        };
        if access == Access::Public {
            let signed_in = session.error.is_none();
            return decision(
                Verdict::Allow(signed_in.then(|| Box::new(session))),
                HeaderMap::new(),
            );
        }
        if !allow.permits(session.identity.email.as_deref()) {
            return decision(
                Verdict::Deny(HttpError::forbidden(
                    "Forbidden",
                    "Your account may not use this page.",
                )),
                HeaderMap::new(),
            );
        }
        let background = inner.settings.refresh_mode == RefreshMode::Background;
        let adopted = background && inner.active.adopt(&mut session, now);
        let lazy_api = inner.settings.refresh_mode == RefreshMode::Lazy && access == Access::Api;
        let (freshness, refreshed) = ensure_fresh(inner, &mut session, now, !lazy_api).await;
        let rewrite = adopted || refreshed;
        let cookies_out = if rewrite {
            rewrite_cookie(inner, &session, now)
        } else {
            HeaderMap::new()
        };
        let verdict = match freshness {
            Freshness::Fresh => {
                if background {
                    inner.active.remember(&session, now);
                }
                Verdict::Allow(Some(Box::new(session)))
            }
            Freshness::Stale => Verdict::Deny(HttpError::unauthorized(
                "TokenExpired",
                "The access token expired; call POST /auth/refresh.",
            )),
            Freshness::Revoked => no_session(
                inner,
                access,
                json,
                return_to,
                Some(crate::session::REFRESH_TOKEN_ERROR),
            ),
            Freshness::Unavailable(retry_after) => Verdict::Deny(HttpError::unavailable(
                "RefreshUnavailable",
                "The identity provider is not reachable right now; your session is intact. Try again shortly.",
                retry_after,
            )),
            Freshness::Rejected => Verdict::Deny(HttpError::new(
                StatusCode::BAD_GATEWAY,
                "ProviderError",
                "The identity provider refused this gateway's refresh request.",
            )),
        };
        decision(verdict, cookies_out)
    }
}

/// The verdict for a request without a usable session.
fn no_session(
    inner: &Inner,
    access: Access,
    json: bool,
    return_to: &str,
    error: Option<&str>,
) -> Verdict {
    match access {
        Access::Public => Verdict::Allow(None),
        Access::Protected if !json => {
            let mut location = format!(
                "{}/signin?callbackUrl={}",
                inner.settings.base_path,
                url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
            );
            if let Some(e) = error {
                location.push_str("&error=");
                location.push_str(e);
            }
            Verdict::SignIn(location)
        }
        _ => Verdict::Deny(match error {
            Some(crate::session::REFRESH_TOKEN_ERROR) => HttpError::unauthorized(
                crate::session::REFRESH_TOKEN_ERROR,
                "The identity provider revoked the sign-in; sign in again.",
            ),
            _ => HttpError::unauthorized("SessionRequired", "Sign in first."),
        }),
    }
}

/// The identity headers for the upstream (or the forward-auth response).
pub(crate) async fn identity_headers(inner: &Inner, session: &CurrentSession) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-auth-request-user", Some(&session.identity.id));
    put("x-auth-request-email", session.identity.email.as_deref());
    put("x-auth-request-name", session.identity.name.as_deref());
    let settings = &inner.settings;
    if (settings.pass_access_token || settings.pass_authorization_header)
        && let Some(account) = &session.account
    {
        // The cache can hold an older token than the store (another instance
        // refreshed); a stale one is never forwarded: the refresh service
        // reads the store, and refreshes if the store's copy is stale too.
        let now = inner.clock.now();
        let tokens = match inner.store.read_tokens(&account.id).await {
            Ok(Some(v)) => match v.tokens {
                Some(t) if inner.settings.policy.is_stale(t.expires_at, now) => {
                    match inner.refresh.refresh(&account.id, &account.provider).await {
                        authgate_core::refresh::Outcome::Refreshed { tokens, .. }
                        | authgate_core::refresh::Outcome::AlreadyFresh { tokens, .. } => {
                            Ok(Some(tokens))
                        }
                        _ => Ok(None),
                    }
                }
                other => Ok(other),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match tokens {
            Ok(Some(tokens)) => {
                let token = tokens.access_token.expose();
                if settings.pass_access_token {
                    put("x-forwarded-access-token", Some(token));
                }
                if settings.pass_authorization_header {
                    put("authorization", Some(&format!("Bearer {token}")));
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "access token lookup failed; forwarding without it")
            }
        }
    }
    h
}
