//! The original request a forward-auth caller asks about.
//!
//! nginx's `auth_request` names it with `X-Original-URI` / `X-Original-Method`,
//! Traefik's ForwardAuth and Caddy's `forward_auth` with `X-Forwarded-Uri` /
//! `X-Forwarded-Method`, and each passes the client's copies of the other pair
//! through untouched. Trusting either pair first would let a client choose the
//! path that is judged, so [`original_request`] refuses two different values
//! for the same thing, and a request that names no path at all.

use crate::path::{NormalizedPath, PathError, normalize};
use axum::http::{HeaderMap, Method};

/// The request a forward-auth call asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    /// Its method (`GET` when the caller names none).
    pub method: Method,
    /// Its path and query, normalised.
    pub path: NormalizedPath,
    /// Whether the caller is nginx (`X-Original-URI` present), which only
    /// understands 2xx/401/403 answers.
    pub nginx: bool,
}

/// Why a forward-auth call names no usable original request. Every variant
/// means "answer 400".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginalRequestError {
    /// Neither `X-Original-URI` nor `X-Forwarded-Uri` is present.
    #[error("the call names no original request")]
    Missing,
    /// `X-Original-*` and `X-Forwarded-*` name different requests, or one of
    /// them is not text.
    #[error("X-Original-* and X-Forwarded-* name different requests")]
    Ambiguous,
    /// The original method is not a valid method token.
    #[error("the original request method is not valid")]
    InvalidMethod,
    /// The original path cannot be normalised.
    #[error("the original request path is not valid: {0}")]
    InvalidPath(#[source] PathError),
}

/// Reads the original request from a forward-auth call's headers (see the
/// [module documentation](self)).
pub fn original_request(headers: &HeaderMap) -> Result<OriginalRequest, OriginalRequestError> {
    let uri = one_of(headers, "x-original-uri", "x-forwarded-uri");
    let method = one_of(headers, "x-original-method", "x-forwarded-method");
    let (uri, method) = match (uri, method) {
        (Ok(Some(uri)), Ok(method)) => (uri, method.unwrap_or("GET")),
        (Ok(None), _) => return Err(OriginalRequestError::Missing),
        _ => return Err(OriginalRequestError::Ambiguous),
    };
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| OriginalRequestError::InvalidMethod)?;
    let path = normalize(uri).map_err(OriginalRequestError::InvalidPath)?;
    Ok(OriginalRequest {
        method,
        path,
        nginx: headers.contains_key("x-original-uri"),
    })
}

/// The value of one of two headers naming the same thing: `Ok(None)` when
/// neither is present, `Err` when both are and they differ, or when one is
/// not text or repeated.
fn one_of<'h>(headers: &'h HeaderMap, a: &str, b: &str) -> Result<Option<&'h str>, ()> {
    let read = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v.to_str().map(Some).map_err(|_| ()),
            (Some(_), Some(_)) => Err(()),
        }
    };
    match (read(a)?, read(b)?) {
        (Some(x), Some(y)) if x != y => Err(()),
        (x, y) => Ok(x.or(y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn either_pair_names_the_original_request() {
        let nginx = original_request(&headers(&[
            ("x-original-uri", "/a/../admin?x=1"),
            ("x-original-method", "POST"),
        ]));
        let nginx = nginx.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nginx.path.path(), "/admin");
        assert_eq!(nginx.path.query(), Some("x=1"));
        assert_eq!(nginx.method, Method::POST);
        assert!(nginx.nginx);
        let traefik = original_request(&headers(&[("x-forwarded-uri", "/x")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(traefik.method, Method::GET);
        assert!(!traefik.nginx);
    }

    #[test]
    fn the_same_value_in_both_pairs_is_accepted() {
        let both = original_request(&headers(&[
            ("x-original-uri", "/x"),
            ("x-forwarded-uri", "/x"),
        ]));
        assert!(both.is_ok());
    }

    #[test]
    fn different_or_repeated_original_headers_are_ambiguous() {
        for pairs in [
            &[("x-original-uri", "/public"), ("x-forwarded-uri", "/admin")][..],
            &[("x-original-uri", "/public"), ("x-original-uri", "/admin")][..],
            &[
                ("x-forwarded-uri", "/x"),
                ("x-original-method", "GET"),
                ("x-forwarded-method", "POST"),
            ][..],
        ] {
            assert_eq!(
                original_request(&headers(pairs)),
                Err(OriginalRequestError::Ambiguous),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn a_call_without_a_path_or_with_a_bad_one_is_refused() {
        assert_eq!(
            original_request(&headers(&[("x-original-method", "GET")])),
            Err(OriginalRequestError::Missing)
        );
        assert_eq!(
            original_request(&headers(&[
                ("x-forwarded-uri", "/x"),
                ("x-forwarded-method", "G T")
            ])),
            Err(OriginalRequestError::InvalidMethod)
        );
        assert!(matches!(
            original_request(&headers(&[("x-forwarded-uri", "/%2F")])),
            Err(OriginalRequestError::InvalidPath(_))
        ));
    }
}
