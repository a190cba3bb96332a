//! Request parameters: form and query parsing, client credentials from a Basic header.

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::OAuthError;

/// RFC 6749 §2.3.1: `base64(urlencode(id) ":" urlencode(secret))`. Returns the
/// form-decoded reading first, then the raw one when it differs; empty when malformed.
pub(crate) fn decode_basic(encoded: &str) -> Vec<(String, String)> {
    let Some(raw) = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Vec::new();
    };
    let Some((id, secret)) = raw.split_once(':') else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(2);
    if let (Some(id), Some(secret)) = (form_decode(id), form_decode(secret)) {
        out.push((id, secret));
    }
    let raw_pair = (id.to_owned(), secret.to_owned());
    if !out.contains(&raw_pair) {
        out.push(raw_pair);
    }
    out
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub(crate) type Params = HashMap<String, String>;

/// Parse form or query parameters: repeated parameters are refused, empty ones ignored
/// (RFC 6749 §3.1).
pub(crate) fn parse_params(raw: &[u8]) -> Result<Params, &'static str> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(raw).map_err(|_| "malformed parameters")?;
    let mut seen = std::collections::HashSet::new();
    let mut params = Params::new();
    for (key, value) in pairs {
        if !seen.insert(key.clone()) {
            return Err("a parameter is repeated");
        }
        if !value.is_empty() {
            params.insert(key, value);
        }
    }
    Ok(params)
}

pub(crate) fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "expected an application/x-www-form-urlencoded body",
        ));
    }
    parse_params(body).map_err(OAuthError::invalid_request)
}

pub(crate) fn required<'a>(params: &'a Params, name: &'static str) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

pub(crate) fn split_scope(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_repeats_and_ignore_empty_values() {
        assert!(parse_params(b"a=1&a=2").is_err());
        let p = parse_params(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
        assert!(!p.contains_key("b"));
        assert_eq!(p.get("c").map(String::as_str), Some("x y!"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = STANDARD.encode("my%20app:s%3Acret+x");
        assert_eq!(
            decode_basic(&header),
            vec![
                ("my app".to_owned(), "s:cret x".to_owned()),
                ("my%20app".to_owned(), "s%3Acret+x".to_owned()),
            ]
        );
        assert_eq!(
            decode_basic(&STANDARD.encode("app:plain")),
            vec![("app".to_owned(), "plain".to_owned())]
        );
        assert_eq!(
            decode_basic(&STANDARD.encode("a:%zz")),
            vec![("a".to_owned(), "%zz".to_owned())]
        );
        assert!(decode_basic("!!!").is_empty());
        assert!(decode_basic(&STANDARD.encode("no-colon")).is_empty());
    }
}
