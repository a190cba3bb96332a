//! Auth.js's double-submit CSRF protection for the gateway's POST endpoints:
//! minting the token and its cookie, reading the submitted token from a form
//! or JSON body (or `X-CSRF-Token`), and the same-site check of
//! `POST /refresh`. The token format itself is `authgate_core::csrf`.

use crate::cookies::{cookie_value, request_cookies};
use crate::error::sends_json;
use crate::state::Inner;
use authgate_core::csrf::{issue_csrf, verified_cookie_token, verify_csrf};
use axum::body::Bytes;
use axum::http::header::ORIGIN;
use axum::http::{HeaderMap, HeaderValue};
use std::collections::HashMap;

/// The CSRF cookie's name for this gateway.
fn csrf_cookie_name(inner: &Inner) -> &'static str {
    authgate_core::csrf::csrf_cookie_name(inner.settings.secure_cookies)
}

/// The CSRF token to show, and a `Set-Cookie` when a new one was minted.
pub(crate) fn csrf_for(
    inner: &Inner,
    cookies: &[(String, String)],
) -> (String, Option<HeaderValue>) {
    let name = csrf_cookie_name(inner);
    if let Some(token) =
        cookie_value(cookies, name).and_then(|v| verified_cookie_token(v, &inner.secrets))
    {
        return (token.to_owned(), None);
    }
    let minted = issue_csrf(inner.signing_secret(), &mut rand::rngs::OsRng);
    let cookie = inner.cookies.set(name, &minted.cookie_value, None);
    (minted.token, Some(cookie))
}

/// Parses a form or JSON body into string fields.
pub(crate) fn form_fields(headers: &HeaderMap, body: &Bytes) -> HashMap<String, String> {
    if sends_json(headers) {
        serde_json::from_slice::<HashMap<String, serde_json::Value>>(body)
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }
}

/// Whether a POST carries a valid double-submit CSRF token (form field
/// `csrfToken`, or the `X-CSRF-Token` header).
pub(crate) fn csrf_ok(
    inner: &Inner,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> bool {
    let cookies = request_cookies(headers);
    let Some(cookie) = cookie_value(&cookies, csrf_cookie_name(inner)) else {
        return false;
    };
    let submitted = fields
        .get("csrfToken")
        .map(String::as_str)
        .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    verify_csrf(cookie, submitted, &inner.secrets)
}

/// Whether a state-changing request comes from this site: a valid CSRF
/// token, or an `Origin` equal to the gateway's public origin.
pub(crate) fn same_site(
    inner: &Inner,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> bool {
    if csrf_ok(inner, headers, fields) {
        return true;
    }
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    origin.is_some_and(|o| {
        url::Url::parse(o).is_ok_and(|u| u.origin() == inner.settings.public_url.origin())
    })
}
