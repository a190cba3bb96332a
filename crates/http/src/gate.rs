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
//! A valid JWT cookie with a fresh token is decided without I/O. When
//! tokens are forwarded upstream (`pass_access_token`,
//! `pass_authorization_header`) and the caller may receive them
//! ([`TokenRelease`]), the decision also gets them — through the one
//! token-access path, `tokens.rs` — and carries them on the session it
//! allows, so the proxy never reads the store or refreshes a second time.
//! A caller whose release is [`TokenRelease::Withheld`] gets a session that
//! carries no tokens, whatever the request read or refreshed.

use crate::audit::AuditEvent;
use crate::cookies::request_cookies;
use crate::error::{HttpError, wants_json};
use crate::rejection::{AuthRejection, REFRESH_TOKEN_ERROR};
pub use crate::release::TokenRelease;
use crate::session::{
    CurrentSession, expire_cookies, read_session, rewrite_cookie, session_cookie_names,
};
use crate::settings::{GatewaySettings, RefreshMode};
use crate::state::{Gateway, Inner};
use crate::tokens::{ensure_fresh, fresh_tokens};
use authgate_core::time::UnixTime;
pub use authgate_proxy::AllowList;
use authgate_proxy::{Access, Permits};
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// The `rule` of an `access_denied` event refused by an allow-list that no
/// route rule holds (the tower layer's own list).
pub(crate) const LONE_ALLOW_LIST: &str = "(layer allow-list)";

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
    /// Decides a `method` request to a route with `access`, whose signed-in
    /// users must be permitted by `allow` (an [`AllowList`], or the
    /// [`Judgement`](authgate_proxy::Judgement) of a request path, which
    /// combines every reading's lists). `return_to` is where sign-in should
    /// come back to (path and query, as judged). `release` says whether the
    /// caller may receive the session's provider tokens (see
    /// [`TokenRelease`]). A refusal by the allow-lists is an `access_denied`
    /// audit event.
    pub async fn decide(
        &self,
        method: &Method,
        access: Access,
        allow: &(dyn Permits + Sync),
        headers: &HeaderMap,
        return_to: &str,
        release: TokenRelease,
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
        // An API client's bearer token: on `api` routes (and routes with
        // `bearer = true`), when a provider
        // accepts bearer tokens, it decides alone (a session cookie sent
        // alongside is ignored) and never touches cookies or the store.
        if (access == Access::Api || allow.accepts_bearer())
            && inner.catalog.accepts_bearer()
            && let Some(credential) = crate::bearer::credential(headers)
        {
            let verdict =
                crate::bearer::verdict(inner, credential, method, allow, return_to, now).await;
            return decision(verdict, HeaderMap::new());
        }
        let session = match read_session(inner, &cookies, now).await {
            Ok(session) => session,
            // An adopted guide cookie whose session was signed out.
            Err(AuthRejection::SignedOut) => {
                return decision(
                    no_session(inner, access, json, return_to, None),
                    expire_cookies(inner, &session_cookie_names(inner, &cookies)),
                );
            }
            Err(rejection) => {
                return decision(Verdict::Deny(rejection.http_error()), HeaderMap::new());
            }
        };
        let Some(mut session) = session else {
            return decision(
                no_session(inner, access, json, return_to, None),
                HeaderMap::new(),
            );
        };
        // A cookie that carries what it must not (a guide cookie's tokens)
        // is replaced on whatever route it arrives.
        let replaced = |session: &CurrentSession| {
            if session.replace_cookie {
                rewrite_cookie(inner, session, now)
            } else {
                HeaderMap::new()
            }
        };
        if access == Access::Public {
            if session.error.is_some() {
                return decision(Verdict::Allow(None), replaced(&session));
            }
            if let Err(AuthRejection::SignedOut) =
                release_tokens(inner, &mut session, now, release).await
            {
                return decision(
                    Verdict::Allow(None),
                    expire_cookies(inner, &session.cookie_names),
                );
            }
            let cookies_out = replaced(&session);
            return decision(Verdict::Allow(Some(Box::new(session))), cookies_out);
        }
        // A refusal by the allow-lists: 403, and an `access_denied` event.
        let forbidden = |session: &CurrentSession| {
            let who = session.subject();
            AuditEvent::AccessDenied {
                user: &session.identity.id,
                rule: allow.refusing_rule(&who).unwrap_or(LONE_ALLOW_LIST),
                method: method.as_str(),
                path: return_to.split('?').next().unwrap_or(return_to),
            }
            .emit();
            Verdict::Deny(HttpError::forbidden(
                "Forbidden",
                "Your account may not use this page.",
            ))
        };
        // Groups, roles and claims follow the provider at each refresh: a
        // session whose tokens are about to be refreshed is judged after
        // the refresh (it may have gained or lost a group), any other now.
        let lazy_api = inner.settings.refresh_mode == RefreshMode::Lazy && access == Access::Api;
        let about_to_refresh = session.account.is_some()
            && session.error.is_none()
            && !lazy_api
            && inner
                .settings
                .policy
                .is_stale(session.access_expires_at, now);
        if !about_to_refresh && !allow.permits(&session.subject()) {
            return decision(forbidden(&session), replaced(&session));
        }
        let background = inner.settings.refresh_mode == RefreshMode::Background;
        let adopted = background && adopt_background_refresh(inner, &mut session, now);
        if adopted {
            follow_background_refresh(inner, &mut session, now).await;
            if !allow.permits(&session.subject()) {
                return decision(forbidden(&session), rewrite_cookie(inner, &session, now));
            }
        }
        let before = (session.access_expires_at, session.error.clone());
        let mut fresh = ensure_fresh(inner, &mut session, now, !lazy_api).await;
        if fresh.is_ok() {
            fresh = release_tokens(inner, &mut session, now, release).await;
        }
        if let Err(AuthRejection::SignedOut) = fresh {
            return decision(
                no_session(inner, access, json, return_to, None),
                expire_cookies(inner, &session.cookie_names),
            );
        }
        let rewrite = adopted
            || session.replace_cookie
            || session.attributes_changed
            || before != (session.access_expires_at, session.error.clone());
        let cookies_out = if rewrite {
            rewrite_cookie(inner, &session, now)
        } else {
            HeaderMap::new()
        };
        let verdict = match fresh {
            Ok(()) if !allow.permits(&session.subject()) => forbidden(&session),
            Ok(()) => {
                if background && let Some(account) = &session.account {
                    inner.active.remember(
                        &account.id,
                        &account.provider,
                        session.access_expires_at,
                        now,
                    );
                }
                Verdict::Allow(Some(Box::new(session)))
            }
            Err(AuthRejection::Revoked) => {
                no_session(inner, access, json, return_to, Some(REFRESH_TOKEN_ERROR))
            }
            Err(rejection) => Verdict::Deny(rejection.http_error()),
        };
        decision(verdict, cookies_out)
    }
}

/// Adopts a later token expiry that the background refresher recorded for
/// the session's account; returns whether the session changed.
fn adopt_background_refresh(inner: &Inner, session: &mut CurrentSession, now: UnixTime) -> bool {
    let Some(account) = &session.account else {
        return false;
    };
    match inner
        .active
        .newer_expiry(&account.id, session.access_expires_at, now)
    {
        Some(expires_at) => {
            session.access_expires_at = Some(expires_at);
            true
        }
        None => false,
    }
}

/// After adopting an expiry the background refresher recorded: the
/// groups, roles and claims of the tokens it stored (JWT sessions; best
/// effort — on any failure the session keeps what it had).
async fn follow_background_refresh(inner: &Inner, session: &mut CurrentSession, now: UnixTime) {
    if !matches!(session.source, crate::session::SessionSource::Jwt(_)) {
        return;
    }
    let Some(provider) = session
        .account
        .as_ref()
        .and_then(|a| inner.catalog.get(&a.provider))
        .cloned()
    else {
        return;
    };
    if let Ok(tokens) = fresh_tokens(inner, session, now, false).await
        && let Some(attributes) =
            crate::account::refreshed_attributes(inner, &provider, &tokens, now).await
        && attributes != session.attributes
    {
        session.attributes = attributes;
        session.attributes_changed = true;
    }
}

/// Gets the tokens to forward upstream, when the settings forward them and
/// `release` lets the caller have them; otherwise drops any the request read
/// or refreshed, so no header can carry them. Best effort: a session whose
/// token cannot be had right now is still a session (the request passes
/// without the token, as it always has) — unless getting it found the
/// session signed out ([`AuthRejection::SignedOut`], the only error).
async fn release_tokens(
    inner: &Inner,
    session: &mut CurrentSession,
    now: UnixTime,
    release: TokenRelease,
) -> Result<(), AuthRejection> {
    if release == TokenRelease::Withheld {
        session.tokens = None;
        return Ok(());
    }
    if !inner.settings.forwards_tokens() || session.account.is_none() {
        return Ok(());
    }
    match fresh_tokens(inner, session, now, true).await {
        Ok(_) => Ok(()),
        Err(AuthRejection::SignedOut) => Err(AuthRejection::SignedOut),
        Err(rejection) => {
            tracing::warn!(%rejection, "access token unavailable; forwarding without it");
            Ok(())
        }
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
        _ => {
            let mut refusal = match error {
                Some(REFRESH_TOKEN_ERROR) => AuthRejection::Revoked.http_error(),
                _ => AuthRejection::SessionRequired.http_error(),
            };
            // RFC 6750 §3: a route that takes bearer tokens says so.
            if access == Access::Api && inner.catalog.accepts_bearer() {
                refusal.www_authenticate = Some(HeaderValue::from_static("Bearer"));
            }
            Verdict::Deny(refusal)
        }
    }
}

/// The identity headers for the upstream (or the forward-auth response),
/// with the access token the decision got when the settings forward it.
pub(crate) fn identity_headers(settings: &GatewaySettings, session: &CurrentSession) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-auth-request-user", Some(&session.identity.id));
    put("x-auth-request-email", session.identity.email.as_deref());
    put("x-auth-request-name", session.identity.name.as_deref());
    put(
        "x-auth-request-preferred-username",
        session.attributes.preferred_username.as_deref(),
    );
    if !session.attributes.groups.is_empty() {
        // Comma-separated; a group whose name holds a comma (it would read
        // as two) or anything but visible ASCII and spaces (not a header
        // value) is left out of the header — rules still see it.
        let groups: Vec<&str> = session
            .attributes
            .groups
            .iter()
            .map(String::as_str)
            .filter(|g| g.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b','))
            .collect();
        if !groups.is_empty() {
            put("x-auth-request-groups", Some(&groups.join(",")));
        }
    }
    if let Some(tokens) = &session.tokens {
        let token = tokens.access_token.expose();
        if settings.pass_access_token {
            put("x-forwarded-access-token", Some(token));
        }
        if settings.pass_authorization_header {
            put("authorization", Some(&format!("Bearer {token}")));
        }
    }
    h
}
