//! Turning provider answers into data or into a classified [`ProviderError`].
//!
//! The rules, in order:
//! 1. A body carrying an OAuth `error` code is classified by that code with
//!    [`classify_oauth_error`], whatever the HTTP status (GitHub answers
//!    errors with 200, Auth0 with 403), using the provider's revoking codes.
//! 2. Any other non-2xx status is classified by [`classify_status`]: 5xx,
//!    429, 408 are transient (with `Retry-After`), anything else — a 302
//!    included, since redirects are never followed — is a protocol error.
//! 3. A 2xx body that is neither a JSON object nor form-encoded is a
//!    protocol error.

use crate::http::{HttpClient, RawResponse};
use authgate_core::provider_error::{
    ProviderError, ProviderErrorKind, classify_oauth_error, classify_status,
};
use serde_json::{Map, Value};

/// A `Protocol` error with a description.
pub(crate) fn protocol(provider: &str, description: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Protocol, provider).with_description(description)
}

/// A `Misconfigured` error with a description.
pub(crate) fn misconfigured(provider: &str, description: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Misconfigured, provider).with_description(description)
}

/// Parses a body as a JSON object or, failing that, as
/// `application/x-www-form-urlencoded` (GitHub's default token answer).
/// HTML, plain text and other garbage yield `None`.
pub(crate) fn parse_body(raw: &RawResponse) -> Option<Map<String, Value>> {
    let content_type = raw
        .content_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&raw.body).ok()?.trim();
    if body.is_empty() {
        return None;
    }
    let looks_like_json = body.starts_with('{');
    if content_type.contains("json") || looks_like_json {
        return match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        };
    }
    let form_typed = content_type.contains("application/x-www-form-urlencoded");
    let looks_like_form = body.contains('=')
        && !body.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"');
    if form_typed || looks_like_form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(body).ok()?;
        if pairs.is_empty() {
            return None;
        }
        return Some(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        );
    }
    None
}

/// The OAuth error carried by `body`, if any, classified (rule 1).
pub(crate) fn oauth_error(
    provider: &str,
    raw: &RawResponse,
    body: &Map<String, Value>,
    revoking_codes: &[&str],
) -> Option<ProviderError> {
    let code = body.get("error")?.as_str()?.trim();
    if code.is_empty() {
        return None;
    }
    let kind = classify_oauth_error(raw.status, code, revoking_codes, raw.retry_after);
    let mut error = ProviderError::new(kind, provider)
        .with_status(raw.status)
        .with_code(code);
    if let Some(d) = body.get("error_description").and_then(Value::as_str) {
        error = error.with_description(d);
    }
    Some(error)
}

/// Applies rules 1–3: the parsed body of a successful answer, or the error.
pub(crate) fn check(
    provider: &str,
    raw: &RawResponse,
    revoking_codes: &[&str],
) -> Result<Map<String, Value>, ProviderError> {
    let body = parse_body(raw);
    if let Some(map) = &body
        && let Some(error) = oauth_error(provider, raw, map, revoking_codes)
    {
        return Err(error);
    }
    if !raw.is_success() {
        return Err(status_error(provider, raw));
    }
    body.ok_or_else(|| {
        protocol(
            provider,
            "response is neither a JSON object nor form-encoded",
        )
        .with_status(raw.status)
    })
}

/// Rule 2: a non-2xx answer without an OAuth error code.
pub(crate) fn status_error(provider: &str, raw: &RawResponse) -> ProviderError {
    let kind = classify_status(raw.status, raw.retry_after);
    let description = if (300..400).contains(&raw.status) {
        "unexpected redirect (redirects are not followed)".to_owned()
    } else {
        format!("HTTP {} without an OAuth error", raw.status)
    };
    ProviderError::new(kind, provider)
        .with_status(raw.status)
        .with_description(description)
}

/// GETs a JSON document (discovery, JWKS): `Accept: application/json`, the
/// same error rules, and the body must be JSON.
pub(crate) async fn fetch_json(
    http: &HttpClient,
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<Value, ProviderError> {
    let raw = http
        .send(
            provider,
            request.header(reqwest::header::ACCEPT, "application/json"),
        )
        .await?;
    let map = check(provider, &raw, &[])?;
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, content_type: Option<&str>, body: &str) -> RawResponse {
        RawResponse {
            status,
            content_type: content_type.map(str::to_owned),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn form_encoded_bodies_parse_with_or_without_content_type() {
        for ct in [
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            None,
        ] {
            let map = parse_body(&raw(200, ct, "access_token=a%20b&token_type=bearer")).unwrap();
            assert_eq!(map["access_token"], "a b");
        }
    }

    #[test]
    fn html_and_garbage_are_not_bodies() {
        assert!(parse_body(&raw(200, Some("text/html"), "<html>hi</html>")).is_none());
        assert!(parse_body(&raw(200, None, "not oauth at all")).is_none());
        assert!(parse_body(&raw(200, Some("application/json"), "[1,2]")).is_none());
        assert!(parse_body(&raw(200, Some("application/json"), "")).is_none());
    }

    #[test]
    fn form_encoded_errors_are_classified() {
        let r = raw(200, None, "error=bad_refresh_token&error_description=gone");
        let e = check("gh", &r, &["bad_refresh_token"]).unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::GrantRevoked);
        assert_eq!(e.description.as_deref(), Some("gone"));
    }
}
