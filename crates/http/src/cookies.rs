//! Reading the `Cookie` header and writing `Set-Cookie` headers.
//!
//! Every cookie authgate writes is `HttpOnly; SameSite=Lax; Path=/`, plus
//! `Secure` when the gateway is served over https, as Auth.js writes them.

use authgate_core::cookie::chunk::{CookieWrite, is_chunk_of};
use authgate_core::cookie::{CheckKind, CookieFormat};
use authgate_core::csrf::csrf_cookie_name;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use std::time::Duration;

/// The most cookies read from one request; the rest are ignored.
const MAX_COOKIES: usize = 128;

/// The request's cookies as `(name, value)` pairs, in order, from every
/// `Cookie` header. Unparseable pieces and non-UTF-8 headers are skipped.
pub fn request_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .take(MAX_COOKIES)
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}

/// The value of the first cookie called `name`.
pub fn cookie_value<'a>(cookies: &'a [(String, String)], name: &str) -> Option<&'a str> {
    cookies
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The cookies that are the gateway's own: the session cookie and its `.0`,
/// `.1`… chunks, the CSRF cookie, the sign-in check cookies (`state`, PKCE
/// verifier, `nonce`) and Auth.js's callback-URL cookie — each by its exact
/// name, with and without its `__Secure-` / `__Host-` prefix. The reverse
/// proxy removes them from the request unless `pass_auth_cookies` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCookies {
    sessions: [&'static str; 2],
    names: Vec<&'static str>,
}

impl OwnCookies {
    /// The gateway's cookie names under `format`.
    pub fn new(format: CookieFormat) -> Self {
        let callback_url = match format {
            CookieFormat::AuthJs => ["authjs.callback-url", "__Secure-authjs.callback-url"],
            CookieFormat::NextAuthV4 => {
                ["next-auth.callback-url", "__Secure-next-auth.callback-url"]
            }
        };
        let mut names = callback_url.to_vec();
        for secure in [false, true] {
            names.push(csrf_cookie_name(secure));
            for kind in [CheckKind::State, CheckKind::PkceVerifier, CheckKind::Nonce] {
                names.push(kind.cookie_name(secure));
            }
        }
        OwnCookies {
            sessions: [
                format.session_cookie_name(false),
                format.session_cookie_name(true),
            ],
            names,
        }
    }

    /// Whether `name` (as written in a `Cookie` header) is one of them.
    pub fn contains(&self, name: &[u8]) -> bool {
        let Ok(name) = std::str::from_utf8(name) else {
            return false;
        };
        self.names.contains(&name) || self.sessions.iter().any(|s| is_chunk_of(s, name))
    }
}

/// Cookie attributes shared by every cookie of one gateway.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    /// Adds `Secure` (https deployments).
    pub secure: bool,
}

impl CookiePolicy {
    /// A `Set-Cookie` value storing `value` for `max_age` (`None`: a
    /// browser-session cookie).
    pub fn set(&self, name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
        let mut c = self.base(name, value);
        if let Some(age) = max_age {
            c.set_max_age(cookie::time::Duration::seconds(
                i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
            ));
        }
        header_value(&c)
    }

    /// A `Set-Cookie` value that deletes `name`.
    pub fn expire(&self, name: &str) -> HeaderValue {
        let mut c = self.base(name, "");
        c.set_max_age(cookie::time::Duration::ZERO);
        c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        header_value(&c)
    }

    /// Appends the `Set-Cookie` headers for a list of chunk writes.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        writes: &[CookieWrite],
        max_age: Option<Duration>,
    ) {
        for w in writes {
            let v = if w.expire {
                self.expire(&w.name)
            } else {
                self.set(&w.name, &w.value, max_age)
            };
            headers.append(SET_COOKIE, v);
        }
    }

    fn base<'c>(&self, name: &'c str, value: &'c str) -> Cookie<'c> {
        let mut c = Cookie::new(name, value);
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_path("/");
        c.set_secure(self.secure);
        c
    }
}

fn header_value(c: &Cookie<'_>) -> HeaderValue {
    // Names and values are our own ASCII (token characters, base64url), so the
    // rendering is always a valid header value; an impossible failure yields
    // an empty, harmless header rather than a panic.
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(COOKIE, HeaderValue::from_static("c=3;;  junk ; d=4"));
        let c = request_cookies(&h);
        assert_eq!(cookie_value(&c, "a"), Some("1"));
        assert_eq!(cookie_value(&c, "d"), Some("4"));
        assert_eq!(cookie_value(&c, "junk"), None);
    }

    #[test]
    fn own_cookies_are_the_exact_names_the_gateway_writes() {
        let own = OwnCookies::new(CookieFormat::AuthJs);
        for name in [
            "authjs.session-token",
            "authjs.session-token.0",
            "authjs.session-token.12",
            "__Secure-authjs.session-token",
            "__Secure-authjs.session-token.1",
            "authjs.csrf-token",
            "__Host-authjs.csrf-token",
            "authjs.state",
            "__Secure-authjs.pkce.code_verifier",
            "authjs.nonce",
            "authjs.callback-url",
            "__Secure-authjs.callback-url",
        ] {
            assert!(own.contains(name.as_bytes()), "{name}");
        }
        for name in [
            "authjs.session-tokens",
            "authjs.session-token.",
            "authjs.session-token.x",
            "Authjs.session-token",
            "__Host-authjs.session-token",
            "next-auth.session-token",
            "authjs.csrf",
            "session",
            "",
        ] {
            assert!(!own.contains(name.as_bytes()), "{name}");
        }
        assert!(!own.contains(b"authjs.state\xff"));
        let v4 = OwnCookies::new(CookieFormat::NextAuthV4);
        assert!(v4.contains(b"__Secure-next-auth.session-token.0"));
        assert!(v4.contains(b"next-auth.callback-url"));
        assert!(!v4.contains(b"authjs.session-token"));
    }

    #[test]
    fn set_cookie_has_authjs_attributes() {
        let v = CookiePolicy { secure: true }.set("n", "v", Some(Duration::from_secs(60)));
        let s = v.to_str().unwrap();
        for part in [
            "n=v",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(s.contains(part), "{s} lacks {part}");
        }
        let v = CookiePolicy { secure: false }.expire("n");
        let s = v.to_str().unwrap();
        assert!(s.contains("Max-Age=0") && !s.contains("Secure"), "{s}");
    }
}
