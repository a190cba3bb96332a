//! The JSON endpoints (`session`, `csrf`, `providers`, `refresh`) and sign-out.

use crate::audit::{AuditEvent, SignOutVia};
use crate::authjs;
use crate::cookies::request_cookies;
use crate::csrf::{csrf_for, csrf_ok, form_fields, same_site};
use crate::error::{HttpError, wants_json};
use crate::redirect::safe_callback;
use crate::rejection::AuthRejection;
use crate::session::{
    AccountRef, CurrentSession, SessionSource, expire_cookies, read_session, rewrite_cookie,
    session_cookie_names,
};
use crate::settings::RefreshMode;
use crate::state::{Gateway, Inner};
use crate::tokens::ensure_fresh;
use authgate_core::time::UnixTime;
use authgate_oauth::SignOut;
use authgate_refresh::EndReason;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cookie::time::OffsetDateTime;
use cookie::time::format_description::well_known::Rfc3339;
use serde_json::{Value, json};

/// The session as Auth.js clients expect it, plus authgate's fields.
pub(crate) fn session_json(session: &CurrentSession) -> Value {
    let expires = OffsetDateTime::from_unix_timestamp(session.expires.as_secs())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    json!({
        "user": {
            "id": session.identity.id,
            "name": session.identity.name,
            "email": session.identity.email,
            "image": session.identity.image,
        },
        "expires": expires,
        "provider": session.account.as_ref().map(|a| a.provider.clone()),
        "accessTokenExpiresAt": session.access_expires_at.map(UnixTime::as_secs),
        "error": session.error,
    })
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET {base}/session`: the current session, refreshing stale tokens
/// (inline and background modes), or `null`.
pub(crate) async fn session(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let inner = &gw.inner;
    let now = inner.clock.now();
    let cookies = request_cookies(&headers);
    let session = match read_session(inner, &cookies, now).await {
        Ok(session) => session,
        Err(AuthRejection::SignedOut) => {
            let mut response = Json(authjs::no_session_body(inner)).into_response();
            let expired = expire_cookies(inner, &session_cookie_names(inner, &cookies));
            response.headers_mut().extend(expired);
            return no_store(response);
        }
        Err(rejection) => return rejection.http_error().render(true, "/"),
    };
    let Some(mut session) = session else {
        return no_store(Json(authjs::no_session_body(inner)).into_response());
    };
    let refresh = inner.settings.refresh_mode != RefreshMode::Lazy;
    // Only an outage is an error here; a revoked grant or a stale token is
    // what the session JSON reports (`error`, `accessTokenExpiresAt`); a
    // signed-out cookie is no session.
    match ensure_fresh(inner, &mut session, now, refresh).await {
        Err(rejection @ AuthRejection::RefreshUnavailable { .. }) => {
            return rejection.http_error().render(true, "/");
        }
        Err(AuthRejection::SignedOut) => {
            let mut response = Json(authjs::no_session_body(inner)).into_response();
            let expired = expire_cookies(inner, &session.cookie_names);
            response.headers_mut().extend(expired);
            return no_store(response);
        }
        _ => {}
    }
    let mut response = Json(session_json(&session)).into_response();
    // Rolling session, as Auth.js's session endpoint does: a fresh expiry.
    let cookies_out = rewrite_cookie(inner, &session, now);
    response.headers_mut().extend(cookies_out);
    no_store(response)
}

/// `GET {base}/csrf`: `{"csrfToken": …}`, minting the cookie when needed.
pub(crate) async fn csrf(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let (token, set_cookie) = csrf_for(&gw.inner, &request_cookies(&headers));
    let mut response = Json(json!({ "csrfToken": token })).into_response();
    if let Some(c) = set_cookie {
        response.headers_mut().append(SET_COOKIE, c);
    }
    no_store(response)
}

/// `GET {base}/providers`: the configured providers, Auth.js-shaped.
pub(crate) async fn providers(State(gw): State<Gateway>) -> Response {
    let inner = &gw.inner;
    let map: serde_json::Map<String, Value> = inner
        .catalog
        .iter()
        .map(|p| {
            (
                p.id().to_owned(),
                json!({
                    "id": p.id(),
                    "name": p.name(),
                    "type": match p.kind() { authgate_oauth::ProviderKind::Oidc => "oidc", authgate_oauth::ProviderKind::OAuth2 => "oauth" },
                    "signinUrl": inner.settings.auth_url(&format!("/signin/{}", p.id())),
                    "callbackUrl": inner.settings.auth_url(&format!("/callback/{}", p.id())),
                }),
            )
        })
        .collect();
    Json(Value::Object(map)).into_response()
}

/// `POST {base}/refresh`: refresh now (the lazy mode's endpoint), then
/// answer with the session JSON and the rewritten cookie.
pub(crate) async fn refresh(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &gw.inner;
    let fields = form_fields(&headers, &body);
    if !same_site(inner, &headers, &fields) {
        return HttpError::forbidden(
            "MissingCSRF",
            "Send the CSRF token or call from the same origin.",
        )
        .render(true, "/");
    }
    let now = inner.clock.now();
    let cookies = request_cookies(&headers);
    let session = match read_session(inner, &cookies, now).await {
        Ok(session) => session,
        Err(AuthRejection::SignedOut) => {
            let mut response = AuthRejection::SessionRequired
                .http_error()
                .render(true, "/");
            let expired = expire_cookies(inner, &session_cookie_names(inner, &cookies));
            response.headers_mut().extend(expired);
            return no_store(response);
        }
        Err(rejection) => return rejection.http_error().render(true, "/"),
    };
    let Some(mut session) = session else {
        return AuthRejection::SessionRequired
            .http_error()
            .render(true, "/");
    };
    let refreshed = ensure_fresh(inner, &mut session, now, true).await;
    let cookies_out = match refreshed {
        Err(AuthRejection::SignedOut) => expire_cookies(inner, &session.cookie_names),
        _ => rewrite_cookie(inner, &session, now),
    };
    let mut response = match refreshed {
        Ok(()) => Json(session_json(&session)).into_response(),
        Err(rejection) => rejection.http_error().render(true, "/"),
    };
    response.headers_mut().extend(cookies_out);
    no_store(response)
}

/// `POST {base}/signout`: revoke the session record, end the grant (RFC
/// 7009 at the provider, best effort), expire every cookie, then redirect
/// (or answer JSON `{"url"}`) to `callbackUrl` — or, for a provider with
/// `signout = "provider"`, to its end-session endpoint (OpenID Connect
/// RP-Initiated Logout) with the sign-in's ID token as `id_token_hint`,
/// read before the grant ends. The ID token is never logged.
pub(crate) async fn signout(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inner = &gw.inner;
    let fields = form_fields(&headers, &body);
    // next-auth/react's `signOut()` posts with `fetch` and wants `{"url": …}`.
    let url_json = authjs::wants_redirect_url(&headers, &fields);
    let json = wants_json(&headers) || url_json;
    if !csrf_ok(inner, &headers, &fields) {
        let error = HttpError::forbidden(
            "MissingCSRF",
            "The sign-out request was not sent by this site.",
        );
        if url_json {
            return authjs::error_url(inner, &error);
        }
        return error.render(json, &inner.settings.auth_url("/signin"));
    }
    let now = inner.clock.now();
    let cookies = request_cookies(&headers);
    let target = safe_callback(
        fields.get("callbackUrl").map(String::as_str),
        &inner.redirect,
    );
    let session = match read_session(inner, &cookies, now).await {
        Ok(session) => session,
        // Signed out already: nothing to end, the cookies are expired below.
        Err(AuthRejection::SignedOut) => None,
        Err(rejection) => return rejection.http_error().render(json, "/"),
    };
    // RP-Initiated Logout replaces the local target.
    let mut end_session: Option<String> = None;
    if let Some(session) = &session {
        // The record first: from here on no copy of this cookie passes a
        // store check, whatever the provider does with the grant.
        let ended = match (&session.source, &session.sid) {
            (SessionSource::Database(token), _) => {
                inner.store.delete_session(token).await.map(drop)
            }
            (SessionSource::Jwt(_), Some(sid)) => {
                inner.store.revoke_session(sid, now).await.map(drop)
            }
            (SessionSource::Jwt(_), None) | (SessionSource::Bearer, _) => Ok(()),
        };
        if let Err(e) = ended {
            return AuthRejection::store_unavailable(&e)
                .http_error()
                .render(json, "/");
        }
        if let Some(account) = &session.account {
            end_session = end_session_url(inner, account).await;
            // Serialised with any refresh of the account (the same lease),
            // so the newest refresh token is the one revoked.
            inner.active.forget(&account.id);
            let end = inner
                .refresh
                .end_grant(&account.id, &account.provider, EndReason::SignOut)
                .await;
            tracing::debug!(?end, "sign-out ended the grant");
        }
        AuditEvent::SignOut {
            via: SignOutVia::User,
            user: Some(&session.identity.id),
            provider: None,
            sessions: Some(1),
        }
        .emit();
    }
    let target = match end_session {
        Some(url) => url,
        None => target,
    };
    let mut response = if json {
        let url = authjs::absolute_url(&inner.settings.public_url, &target);
        Json(json!({ "url": url })).into_response()
    } else {
        let mut r = StatusCode::FOUND.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert(LOCATION, v);
        }
        r
    };
    let h = response.headers_mut();
    for name in session_cookie_names(inner, &cookies) {
        inner.cookies.expire_session(h, &name);
    }
    no_store(response)
}

/// The provider's end-session URL for a sign-out of `account`, when its
/// provider is configured with `signout = "provider"`: with the account's
/// ID token as `id_token_hint` (read now, before the grant ends; without a
/// hint when the store cannot say, as `client_id` still names the client).
async fn end_session_url(inner: &Inner, account: &AccountRef) -> Option<String> {
    let provider = inner.catalog.get(&account.provider)?;
    if !matches!(provider.signout(), SignOut::Provider { .. }) {
        return None;
    }
    let id_token = match inner.refresh.current_tokens(&account.id).await {
        Ok(tokens) => tokens.and_then(|t| t.id_token),
        Err(error) => {
            tracing::warn!(%error, "sign-out: the ID token is not readable; the end-session request goes without id_token_hint");
            None
        }
    };
    let url = provider.end_session_url(id_token.as_ref().map(|t| t.expose()))?;
    tracing::info!(
        provider = provider.id(),
        id_token_hint = id_token.is_some(),
        "sign-out continues at the provider's end-session endpoint"
    );
    Some(url.into())
}
