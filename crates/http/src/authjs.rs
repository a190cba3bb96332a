//! What Auth.js's own client code (`next-auth/react`, v5 and v4) sends and
//! expects beyond the plain REST API, so an app's `signIn()`, `signOut()`
//! and `useSession().update()` work against the gateway unchanged.
//!
//! - `signIn()` and `signOut()` POST their form with `fetch`: a `302` is no
//!   use to them (the browser would follow it, cross-origin, inside the
//!   `fetch`). They ask for the target as JSON `{"url": …}` instead — v5 with
//!   the header `X-Auth-Return-Redirect` (Auth.js checks only that it is
//!   present), v4 with the form field `json=true` — and then navigate there.
//! - A refusal is answered the same way, with the sign-in page and Auth.js's
//!   error code as the URL (`{base}/signin?error=MissingCSRF`), and the real
//!   status, so `signIn(…, { redirect: false })` reports `error` and `ok`.
//! - `update()` POSTs `{csrfToken, data}` as JSON to `{base}/session`; the
//!   gateway checks the token and answers with the current session (the
//!   identity is what the provider vouches for: `data` is not merged).

use crate::csrf::{csrf_ok, form_fields};
use crate::endpoints;
use crate::error::HttpError;
use crate::state::{Gateway, Inner};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use url::Url;

/// The header `next-auth/react` v5 sends when it wants `{"url": …}`.
const RETURN_REDIRECT: &str = "x-auth-return-redirect";

/// Whether the client asked for the redirect target as JSON: the
/// `X-Auth-Return-Redirect` header (v5) or the form field `json=true` (v4).
pub(crate) fn wants_redirect_url(headers: &HeaderMap, fields: &HashMap<String, String>) -> bool {
    headers.contains_key(RETURN_REDIRECT) || fields.get("json").is_some_and(|v| v == "true")
}

/// `target` (a same-origin path, or already absolute) as an absolute URL on
/// the gateway's public origin, as Auth.js answers.
pub(crate) fn absolute_url(public_url: &Url, target: &str) -> String {
    public_url
        .join(target)
        .map_or_else(|_| target.to_owned(), String::from)
}

/// Turns a redirect into `200 {"url": <Location>}`, keeping its other headers
/// (the `Set-Cookie`s that start or end the flow). Other responses pass as
/// they are.
pub(crate) fn redirect_as_url(response: Response, public_url: &Url) -> Response {
    if !response.status().is_redirection() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let Some(location) = parts.headers.remove(LOCATION) else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let url = absolute_url(public_url, location.to_str().unwrap_or("/"));
    let mut out = Json(json!({ "url": url })).into_response();
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            headers.append(name, value.clone());
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// A refusal for a client that asked for `{"url": …}`: the sign-in page with
/// Auth.js's error code (`{"url": ".../signin?error=MissingCSRF"}`), plus
/// `error` and `error_description` for other callers, with `error`'s status.
pub(crate) fn error_url(inner: &Inner, error: &HttpError) -> Response {
    let url = inner
        .settings
        .auth_url(&format!("/signin?error={}", error.code));
    tracing::info!(
        status = error.status.as_u16(),
        code = error.code,
        "request refused: {}",
        error.description
    );
    let mut response = (
        error.status,
        Json(json!({
            "url": url,
            "error": error.code,
            "error_description": error.description,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST {base}/session` (`useSession().update(data)`): CSRF-checked, then
/// the same answer as `GET {base}/session` (refreshing stale tokens). A
/// missing or wrong token is `400`, as Auth.js answers.
pub(crate) async fn update_session(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(&headers, &body);
    if !csrf_ok(&gw.inner, &headers, &fields) {
        return HttpError::bad_request(
            "MissingCSRF",
            "A session update needs the CSRF token from the csrf endpoint.",
        )
        .render(true, "/");
    }
    endpoints::session(State(gw), headers).await
}

/// The body for "no session": `null` (Auth.js v5), or `{}` with
/// next-auth v4's cookie format, whose client reads `Object.keys(body)`.
pub(crate) fn no_session_body(inner: &Inner) -> serde_json::Value {
    match inner.session_codec.format() {
        authgate_core::cookie::CookieFormat::NextAuthV4 => json!({}),
        authgate_core::cookie::CookieFormat::AuthJs => serde_json::Value::Null,
    }
}

/// `404 UnknownProvider`, as the sign-in start reports it.
pub(crate) fn unknown_provider() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "UnknownProvider",
        "No such sign-in provider is configured.",
    )
}
