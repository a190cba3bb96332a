//! Reading the `Cookie` header and writing `Set-Cookie` headers.
//!
//! Every cookie authgate writes is `HttpOnly; SameSite=Lax; Path=/`, plus
//! `Secure` when the gateway is served over https, as Auth.js writes them.
//!
//! With `[session] cookie_domain`, the session cookie and its chunks (and
//! only they) also carry `Domain=`, so every host under that domain
//! receives them. Their names use the `__Secure-` prefix on https, which
//! permits `Domain` (`__Host-` forbids it); the CSRF cookie keeps its
//! `__Host-` name and, like the `state` / PKCE / `nonce` cookies of a
//! sign-in in progress, stays host-only on `public_url`'s host, the only
//! host that reads them.

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
        .flat_map(Cookie::split_parse)
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
#[derive(Debug, Clone, Default)]
pub struct CookiePolicy {
    /// Adds `Secure` (https deployments).
    pub secure: bool,
    /// The `Domain` of the session cookie and its chunks (`None`:
    /// host-only); the other cookies are always host-only.
    pub domain: Option<String>,
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

    /// Appends the `Set-Cookie` headers for a list of session cookie chunk
    /// writes (with the session `Domain` when one is configured).
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        writes: &[CookieWrite],
        max_age: Option<Duration>,
    ) {
        for w in writes {
            if w.expire {
                self.expire_session(headers, &w.name);
            } else {
                let mut c = self.base(&w.name, &w.value);
                if let Some(domain) = &self.domain {
                    c.set_domain(domain.as_str());
                }
                if let Some(age) = max_age {
                    c.set_max_age(cookie::time::Duration::seconds(
                        i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
                    ));
                }
                headers.append(SET_COOKIE, header_value(&c));
            }
        }
    }

    /// Appends the `Set-Cookie` headers that delete the session cookie piece
    /// `name`: with the session `Domain` (a browser deletes a cookie only
    /// with the attributes it was set with) and, when there is one, host-only
    /// too (a cookie written before `cookie_domain` was configured).
    pub fn expire_session(&self, headers: &mut HeaderMap, name: &str) {
        if let Some(domain) = &self.domain {
            let mut c = self.base(name, "");
            c.set_domain(domain.as_str());
            c.set_max_age(cookie::time::Duration::ZERO);
            c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
            headers.append(SET_COOKIE, header_value(&c));
        }
        headers.append(SET_COOKIE, self.expire(name));
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
        let v = CookiePolicy {
            secure: true,
            domain: None,
        }
        .set("n", "v", Some(Duration::from_secs(60)));
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
        let v = CookiePolicy {
            secure: false,
            domain: None,
        }
        .expire("n");
        let s = v.to_str().unwrap();
        assert!(s.contains("Max-Age=0") && !s.contains("Secure"), "{s}");
    }

    #[test]
    fn only_session_cookie_pieces_carry_the_configured_domain() {
        let policy = CookiePolicy {
            secure: true,
            domain: Some("example.com".to_owned()),
        };
        let mut h = HeaderMap::new();
        let writes = [
            CookieWrite {
                name: "__Secure-authjs.session-token.0".to_owned(),
                value: "v".to_owned(),
                expire: false,
            },
            CookieWrite {
                name: "__Secure-authjs.session-token.1".to_owned(),
                value: String::new(),
                expire: true,
            },
        ];
        policy.apply(&mut h, &writes, Some(Duration::from_secs(60)));
        let all: Vec<&str> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(
            all[0].starts_with("__Secure-authjs.session-token.0=v")
                && all[0].contains("Domain=example.com"),
            "{all:?}"
        );
        assert!(
            all[1].contains("Domain=example.com") && all[1].contains("Max-Age=0"),
            "{all:?}"
        );
        assert!(
            !all[2].contains("Domain") && all[2].contains("Max-Age=0"),
            "{all:?}"
        );
        let csrf = policy.set("__Host-authjs.csrf-token", "t", None);
        assert!(!csrf.to_str().unwrap().contains("Domain"));
        assert!(
            !policy
                .expire("authjs.state")
                .to_str()
                .unwrap()
                .contains("Domain")
        );
    }
}
