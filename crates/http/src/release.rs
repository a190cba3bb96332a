//! Who may receive the session's provider tokens — the enforcement point of
//! the invariant "provider tokens leave only toward the upstream or a trusted
//! caller: the proxied request, a trusted proxy's forward-auth call, an
//! authenticated service client — never a browser".
//!
//! The reverse proxy sends tokens to its upstream and the tower layer hands
//! them to the service it wraps, in process: both ask for
//! [`TokenRelease::AsConfigured`]. Forward-auth (`GET {base}/verify`) answers
//! whoever can reach it, so its answer carries tokens only when
//! [`forward_auth_release`] says the caller is a proxy:
//!
//! 1. the TCP peer — never a forwarded address — is in `trusted_proxies`, and
//! 2. the request carries no browser metadata: no `Origin` and no `Sec-*`
//!    header (`Sec-Fetch-Site`, `-Mode`, `-Dest`, `-User`, `Sec-CH-UA…`,
//!    `Sec-GPC`). Scripts cannot set or remove those (they are forbidden
//!    request headers), and browsers send them on every request to an https
//!    or loopback origin, so a script calling `fetch('/auth/verify')` through
//!    a trusted proxy is recognised. A proxy's auth subrequest must therefore
//!    not pass the client's headers on: nginx `proxy_pass_request_headers
//!    off`, Traefik `authRequestHeaders`, Caddy `header_up -Sec-*` (see
//!    `docs/forward-auth.md`).
//!
//! A withheld caller gets the identity headers (not secret), and no token is
//! fetched or refreshed to hand to it: the decision still refreshes a stale
//! token on a route that needs a session, as it would for the browser's own
//! navigation, but never on a `public` route just to hand a token out.

use authgate_proxy::TrustedProxies;
use axum::http::HeaderMap;
use axum::http::header::ORIGIN;
use std::net::IpAddr;

/// Whether a decision may hand the session's provider tokens to its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRelease {
    /// When the settings forward tokens (`pass_access_token`,
    /// `pass_authorization_header`), the decision gets them fresh and the
    /// allowed session carries them: the reverse proxy's upstream, a trusted
    /// proxy's forward-auth call, the service the tower layer wraps.
    AsConfigured,
    /// The decision fetches and refreshes no token to hand to this caller,
    /// and the session it allows carries none.
    Withheld,
}

/// Why forward-auth withholds tokens from a caller (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Withheld {
    /// The TCP peer is not in `trusted_proxies` (or unknown).
    #[error("the peer is not a trusted proxy")]
    UntrustedPeer,
    /// The request carries a header only browsers send.
    #[error("the request carries browser metadata (Origin or Sec-*)")]
    BrowserMetadata,
}

/// The release for a forward-auth call from `peer` (`None`: unknown, served
/// without connection info) with `headers`: see the module docs.
pub(crate) fn forward_auth_release(
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<TokenRelease, Withheld> {
    if !peer.is_some_and(|ip| trusted.contains(ip)) {
        return Err(Withheld::UntrustedPeer);
    }
    if has_browser_metadata(headers, &[]) {
        return Err(Withheld::BrowserMetadata);
    }
    Ok(TokenRelease::AsConfigured)
}

/// Whether `headers` carry `Origin` or a `Sec-*` header — metadata that
/// only a browser sets and a script cannot remove — not counting the
/// `ignored` names (lower case, as header names are here). Forward-auth
/// ignores none; the service endpoints ignore `sec-fetch-mode`, which
/// Node's `fetch` also sends.
pub(crate) fn has_browser_metadata(headers: &HeaderMap, ignored: &[&str]) -> bool {
    headers.contains_key(ORIGIN)
        || headers.keys().any(|name| {
            let name = name.as_str();
            name.starts_with("sec-") && !ignored.contains(&name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};

    fn headers(names: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for name in names {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                HeaderValue::from_static("x"),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn tokens_go_only_to_a_trusted_peer_without_browser_metadata() {
        let trusted =
            TrustedProxies::parse(["10.0.0.0/8", "::1"]).unwrap_or_else(|e| panic!("{e}"));
        let proxy = headers(&["cookie", "accept", "x-original-uri", "x-forwarded-for"]);
        assert_eq!(
            forward_auth_release(&trusted, ip("10.1.2.3"), &proxy),
            Ok(TokenRelease::AsConfigured)
        );
        assert_eq!(
            forward_auth_release(&trusted, ip("::ffff:10.1.2.3"), &proxy),
            Ok(TokenRelease::AsConfigured)
        );
        for peer in [ip("192.0.2.1"), ip("127.0.0.1"), None] {
            assert_eq!(
                forward_auth_release(&trusted, peer, &proxy),
                Err(Withheld::UntrustedPeer),
                "{peer:?}"
            );
        }
        assert_eq!(
            forward_auth_release(&TrustedProxies::none(), ip("10.1.2.3"), &proxy),
            Err(Withheld::UntrustedPeer)
        );
        for browser in [
            "sec-fetch-mode",
            "sec-fetch-site",
            "sec-fetch-dest",
            "sec-fetch-user",
            "sec-ch-ua",
            "sec-gpc",
            "origin",
        ] {
            let mut h = proxy.clone();
            h.extend(headers(&[browser]));
            assert_eq!(
                forward_auth_release(&trusted, ip("10.1.2.3"), &h),
                Err(Withheld::BrowserMetadata),
                "{browser}"
            );
        }
        assert!(!has_browser_metadata(
            &headers(&["secret", "x-sec-fetch-mode", "se"]),
            &[]
        ));
    }
}
