//! The JSON endpoints (`session`, `csrf`, `providers`, `refresh`) and sign-out.

use crate::authjs;
use crate::cookies::request_cookies;
use crate::error::{HttpError, wants_json};
use crate::redirect::safe_callback;
use crate::session::{
    CurrentSession, Freshness, SessionSource, ensure_fresh, read_session, rewrite_cookie,
};
use crate::settings::RefreshMode;
use crate::signin::{csrf_for, csrf_ok, form_fields, store_failure};
use crate::state::{Gateway, Inner};
use authgate_core::time::UnixTime;
use authgate_oauth::TokenTypeHint;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cookie::time::OffsetDateTime;
use cookie::time::format_description::well_known::Rfc3339;
use serde_json::{Value, json};
use std::time::Duration;

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
        Err(unavailable) => return unavailable.render(true, "/"),
    };
    let Some(mut session) = session else {
        return no_store(Json(authjs::no_session_body(inner)).into_response());
    };
    let refresh = inner.settings.refresh_mode != RefreshMode::Lazy;
    let (freshness, _) = ensure_fresh(inner, &mut session, now, refresh).await;
    if let Freshness::Unavailable(retry_after) = freshness {
        return HttpError::unavailable(
            "RefreshUnavailable",
            "The identity provider is not reachable right now; the session is intact.",
            retry_after,
        )
        .render(true, "/");
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

/// Whether a state-changing request comes from this site: a valid CSRF
/// token, or an `Origin` equal to the gateway's public origin.
fn same_site(
    inner: &Inner,
    headers: &HeaderMap,
    fields: &std::collections::HashMap<String, String>,
) -> bool {
    if csrf_ok(inner, headers, fields) {
        return true;
    }
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    origin.is_some_and(|o| {
        url::Url::parse(o).is_ok_and(|u| u.origin() == inner.settings.public_url.origin())
    })
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
    let session = match read_session(inner, &request_cookies(&headers), now).await {
        Ok(session) => session,
        Err(unavailable) => return unavailable.render(true, "/"),
    };
    let Some(mut session) = session else {
        return HttpError::unauthorized("SessionRequired", "There is no session to refresh.")
            .render(true, "/");
    };
    let (freshness, _) = ensure_fresh(inner, &mut session, now, true).await;
    let cookies_out = rewrite_cookie(inner, &session, now);
    let mut response = match freshness {
        Freshness::Fresh | Freshness::Stale => Json(session_json(&session)).into_response(),
        Freshness::Revoked => HttpError::unauthorized(
            crate::session::REFRESH_TOKEN_ERROR,
            "The identity provider revoked the sign-in; sign in again.",
        )
        .render(true, "/"),
        Freshness::Unavailable(retry_after) => HttpError::unavailable(
            "RefreshUnavailable",
            "The identity provider is not reachable right now; the session is intact.",
            retry_after,
        )
        .render(true, "/"),
        Freshness::Rejected => HttpError::new(
            StatusCode::BAD_GATEWAY,
            "ProviderError",
            "The identity provider refused this gateway's refresh request.",
        )
        .render(true, "/"),
    };
    response.headers_mut().extend(cookies_out);
    no_store(response)
}

/// `POST {base}/signout`: revoke at the provider (RFC 7009, best effort),
/// end the session, expire every cookie, then redirect (or answer JSON).
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
        &inner.settings.public_url,
    );
    let session = match read_session(inner, &cookies, now).await {
        Ok(session) => session,
        Err(unavailable) => return unavailable.render(json, "/"),
    };
    if let Some(session) = &session {
        if let Some(account) = &session.account {
            revoke_grant(inner, account, now).await;
        }
        if let SessionSource::Database(token) = &session.source
            && let Err(e) = inner.store.delete_session(token).await
        {
            return store_failure(e).render(json, "/");
        }
        tracing::info!(user = session.identity.id, "signed out");
    }
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
    let session_name = inner.session_codec.cookie_name();
    for (name, _) in &cookies {
        let ours = name == session_name
            || name
                .strip_prefix(session_name)
                .is_some_and(|r| r.starts_with('.'));
        if ours {
            h.append(SET_COOKIE, inner.cookies.expire(name));
        }
    }
    no_store(response)
}

/// Revokes the account's refresh token at the provider (when it supports
/// RFC 7009) and clears the stored tokens. Failures are logged, not shown.
async fn revoke_grant(inner: &Inner, account: &crate::session::AccountRef, now: UnixTime) {
    inner.active.forget(&account.id);
    let Some(provider) = inner.catalog.get(&account.provider) else {
        return;
    };
    // A concurrent refresh may rotate the tokens between the read and the
    // write: the compare-and-swap then loses, and the newer tokens are
    // revoked in turn (a lost race also drops the cached copy).
    for _ in 0..3 {
        let stored = match inner.store.read_tokens(&account.id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "sign-out could not read the account's tokens; they stay stored");
                return;
            }
        };
        let Some(tokens) = stored.tokens else {
            return;
        };
        if provider.supports_revocation() {
            let (token, hint) = match &tokens.refresh_token {
                Some(rt) => (rt, TokenTypeHint::RefreshToken),
                None => (&tokens.access_token, TokenTypeHint::AccessToken),
            };
            match tokio::time::timeout(Duration::from_secs(5), provider.revoke(token, Some(hint)))
                .await
            {
                Ok(Ok(())) => {
                    tracing::info!(provider = account.provider, "grant revoked at the provider")
                }
                Ok(Err(error)) => tracing::warn!(%error, "revocation at the provider failed"),
                Err(_) => tracing::warn!(
                    provider = account.provider,
                    "revocation at the provider timed out"
                ),
            }
        }
        match inner
            .store
            .mark_grant_revoked(&account.id, stored.version, now, None)
            .await
        {
            Ok(authgate_store::ReplaceOutcome::Replaced { .. }) => return,
            Ok(authgate_store::ReplaceOutcome::LostRace { .. }) => continue,
            Err(error) => {
                tracing::warn!(%error, "clearing the signed-out account's tokens failed");
                return;
            }
        }
    }
    tracing::warn!(
        provider = account.provider,
        "sign-out kept losing to concurrent refreshes; tokens may remain stored"
    );
}
