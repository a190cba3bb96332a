//! Several applications behind one gateway: the upstream a proxied request
//! goes to, chosen by the request's host and path prefix.
//!
//! The host is the request's own: the URI's authority (HTTP/2 `:authority`,
//! an absolute-form request line) or else its one `Host` header — never
//! `X-Forwarded-Host`, which any client can write (a proxy in front of the
//! gateway passes the browser's `Host` on: nginx `proxy_set_header Host
//! $host`). A configured host without a port matches the request's host on
//! any port, one with a port only that port; letter case is ignored, and
//! nothing else is (a trailing dot, another subdomain, userinfo: no match).
//! Among the entries of the matching host, the longest `path_prefix` that
//! the normalised path equals or continues with `/` wins. A request that
//! matches no entry is answered 421 Misdirected Request: never the first
//! upstream by accident.

use crate::redirect::RedirectOrigins;
use authgate_proxy::{ProxyError, ProxySettings, ReverseProxy, RouteRules};
use axum::http::header::HOST;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderName, Uri};
use url::Url;

/// One application behind the gateway, chosen by host (and path prefix):
/// `[[upstreams]]` of the configuration.
#[derive(Debug, Clone)]
pub struct HostUpstream {
    /// `host` (any port) or `host:port` (that port), lower case.
    pub host: String,
    /// Only paths equal to it or below it (`/admin`: `/admin`, `/admin/x`);
    /// `None`: every path.
    pub path_prefix: Option<String>,
    /// The application's URL.
    pub url: Url,
    /// Proxy settings (the builder adds the trusted proxies and, when this
    /// upstream gets `Authorization`, that owned header).
    pub proxy: ProxySettings,
    /// This upstream's route rules; `None`: the gateway's
    /// ([`GatewayBuilder::routes`](crate::GatewayBuilder::routes)).
    pub routes: Option<RouteRules>,
    /// Send `X-Forwarded-Access-Token` (only effective when the gateway's
    /// settings have `pass_access_token`: an upstream can only turn it off).
    pub pass_access_token: bool,
    /// Send `Authorization: Bearer` (only effective when the gateway's
    /// settings have `pass_authorization_header`).
    pub pass_authorization_header: bool,
    /// Send the gateway's own cookies to this upstream.
    pub pass_auth_cookies: bool,
}

/// A [`HostUpstream`] ready to serve.
pub(crate) struct HostRoute {
    host: String,
    port: Option<u16>,
    prefix: String,
    /// The configured `host[:port]`: where sign-in returns to.
    pub authority: String,
    pub proxy: ReverseProxy,
    pub routes: Option<RouteRules>,
    /// Identity headers this upstream must not get.
    pub withheld: Vec<HeaderName>,
    pub pass_auth_cookies: bool,
}

/// Every host-matched upstream.
#[derive(Default)]
pub(crate) struct HostTable {
    entries: Vec<HostRoute>,
}

impl HostTable {
    /// Builds the table; `authorization` says whether the gateway forwards
    /// `Authorization` at all.
    pub fn new(
        upstreams: Vec<HostUpstream>,
        trusted: &authgate_proxy::TrustedProxies,
        authorization: bool,
    ) -> Result<Self, ProxyError> {
        let mut entries = Vec::with_capacity(upstreams.len());
        for u in upstreams {
            let mut proxy = u.proxy;
            proxy.trusted_proxies = trusted.clone();
            let gets_authorization = authorization && u.pass_authorization_header;
            if gets_authorization {
                proxy.owned_headers = proxy.owned_headers.with("authorization");
            }
            let mut withheld = Vec::new();
            if !u.pass_access_token {
                withheld.push(HeaderName::from_static("x-forwarded-access-token"));
            }
            if !gets_authorization {
                withheld.push(HeaderName::from_static("authorization"));
            }
            let (host, port) = split_authority(&u.host).unwrap_or_default();
            entries.push(HostRoute {
                host,
                port,
                prefix: u.path_prefix.unwrap_or_else(|| "/".to_owned()),
                authority: u.host,
                proxy: ReverseProxy::new(u.url, proxy)?,
                routes: u.routes,
                withheld,
                pass_auth_cookies: u.pass_auth_cookies,
            });
        }
        Ok(HostTable { entries })
    }

    /// Whether no upstream is chosen by host.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured hosts (permitted `callbackUrl` hosts).
    pub fn authorities(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.authority.as_str())
    }

    /// The upstream for a request to `uri` with `headers` whose normalised
    /// path is `path`, or `None` (no host, several `Host` headers, no entry).
    pub fn choose(&self, uri: &Uri, headers: &HeaderMap, path: &str) -> Option<&HostRoute> {
        let (host, port) = request_host(uri, headers)?;
        self.entries
            .iter()
            .filter(|e| e.host == host && e.port.is_none_or(|p| Some(p) == port))
            .filter(|e| {
                e.prefix == "/"
                    || path == e.prefix
                    || path
                        .strip_prefix(e.prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|e| e.prefix.len())
    }
}

impl HostRoute {
    /// `public_url`'s scheme + this upstream's host + `path_and_query`: the
    /// `callbackUrl` that brings a browser back here after sign-in, unless
    /// this host is `public_url`'s own (then the path alone).
    pub fn return_to(&self, origins: &RedirectOrigins, path_and_query: &str) -> String {
        let base = origins.base();
        let own = base.host_str().is_some_and(|h| h == self.host)
            && self
                .port
                .is_none_or(|p| base.port_or_known_default() == Some(p));
        if own {
            path_and_query.to_owned()
        } else {
            format!("{}://{}{path_and_query}", base.scheme(), self.authority)
        }
    }
}

/// A sign-in page or link opened on one of the `[[upstreams]]` hosts other
/// than `public_url`'s: `302` to the same path and query on `public_url`,
/// where the sign-in's check cookies must live (the provider's callback
/// arrives there). `None` otherwise (any other host is left alone: a proxy
/// may reach the gateway by an internal name).
pub(crate) fn to_public_host(
    inner: &crate::state::Inner,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<axum::response::Response> {
    use axum::http::header::{CACHE_CONTROL, LOCATION};
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    if inner.hosts.is_empty() {
        return None;
    }
    let (host, port) = request_host(uri, headers)?;
    let public = &inner.settings.public_url;
    let on_public = public.host_str() == Some(host.as_str())
        && port.is_none_or(|p| public.port_or_known_default() == Some(p));
    let ours = inner
        .hosts
        .entries
        .iter()
        .any(|e| e.host == host && e.port.is_none_or(|p| Some(p) == port));
    if on_public || !ours {
        return None;
    }
    let target = format!(
        "{}{}",
        public.as_str().trim_end_matches('/'),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut response = StatusCode::FOUND.into_response();
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_str(&target).ok()?);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(response)
}

/// The request's host (lower case) and port: the URI's authority, else the
/// one `Host` header.
fn request_host(uri: &Uri, headers: &HeaderMap) -> Option<(String, Option<u16>)> {
    if let Some(authority) = uri.authority() {
        return split_authority(authority.as_str());
    }
    let mut hosts = headers.get_all(HOST).iter();
    let host = hosts.next()?;
    if hosts.next().is_some() {
        return None;
    }
    split_authority(host.to_str().ok()?)
}

fn split_authority(raw: &str) -> Option<(String, Option<u16>)> {
    if raw.contains('@') {
        return None;
    }
    let authority: Authority = raw.parse().ok()?;
    let host = authority.host();
    if host.is_empty() {
        return None;
    }
    Some((host.to_ascii_lowercase(), authority.port_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn upstream(host: &str, prefix: Option<&str>, port: u16) -> HostUpstream {
        HostUpstream {
            host: host.to_owned(),
            path_prefix: prefix.map(str::to_owned),
            url: Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            proxy: ProxySettings::default(),
            routes: None,
            pass_access_token: true,
            pass_authorization_header: true,
            pass_auth_cookies: false,
        }
    }

    fn table() -> HostTable {
        HostTable::new(
            vec![
                upstream("app.example.com", None, 9001),
                upstream("admin.example.com:8443", None, 9002),
                upstream("admin.example.com:8443", Some("/console"), 9003),
            ],
            &authgate_proxy::TrustedProxies::none(),
            true,
        )
        .unwrap()
    }

    fn chosen(host: Option<&str>, path: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(HOST, HeaderValue::from_str(host).unwrap());
        }
        let t = table();
        t.choose(&Uri::from_static("/"), &h, path)
            .map(|e| format!("{}{}", e.authority, e.prefix))
    }

    #[test]
    fn hosts_match_exactly_ignoring_case_and_the_port_only_when_configured() {
        assert_eq!(
            chosen(Some("app.example.com"), "/").as_deref(),
            Some("app.example.com/")
        );
        assert_eq!(
            chosen(Some("APP.Example.COM:4180"), "/x").as_deref(),
            Some("app.example.com/")
        );
        assert_eq!(
            chosen(Some("admin.example.com:8443"), "/x").as_deref(),
            Some("admin.example.com:8443/")
        );
        for unknown in [
            "admin.example.com",
            "admin.example.com:443",
            "app.example.com.",
            "evil-app.example.com",
            "x.app.example.com",
            "app.example.com.evil.net",
            "user@app.example.com",
            "example.com",
            "",
        ] {
            assert_eq!(chosen(Some(unknown), "/"), None, "{unknown:?}");
        }
        assert_eq!(chosen(None, "/"), None);
    }

    #[test]
    fn the_longest_matching_path_prefix_wins_segment_by_segment() {
        let host = Some("admin.example.com:8443");
        assert_eq!(
            chosen(host, "/console").as_deref(),
            Some("admin.example.com:8443/console")
        );
        assert_eq!(
            chosen(host, "/console/a").as_deref(),
            Some("admin.example.com:8443/console")
        );
        assert_eq!(
            chosen(host, "/consoleX").as_deref(),
            Some("admin.example.com:8443/")
        );
        assert_eq!(
            chosen(host, "/").as_deref(),
            Some("admin.example.com:8443/")
        );
    }

    #[test]
    fn several_host_headers_or_a_forwarded_host_choose_nothing() {
        let t = table();
        let mut h = HeaderMap::new();
        h.append(HOST, HeaderValue::from_static("app.example.com"));
        h.append(HOST, HeaderValue::from_static("admin.example.com:8443"));
        assert!(t.choose(&Uri::from_static("/"), &h, "/").is_none());
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("app.example.com"),
        );
        assert!(t.choose(&Uri::from_static("/"), &h, "/").is_none());
        // The URI's authority (HTTP/2, absolute form) is the request's host.
        let h = HeaderMap::new();
        let uri: Uri = "http://app.example.com/x".parse().unwrap();
        assert!(t.choose(&uri, &h, "/x").is_some());
    }
}
