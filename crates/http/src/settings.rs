//! The gateway's behaviour settings (built from `[server]`, `[session]` and
//! `[refresh]` by the binary; set directly by library users).

use authgate_core::token::ExpiryPolicy;
use std::time::Duration;
use url::Url;

/// Where session state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionStrategy {
    /// Everything in the encrypted cookie (Auth.js `jwt` strategy).
    #[default]
    Jwt,
    /// An opaque token in the cookie, the session in the store (Auth.js
    /// `database` strategy).
    Database,
}

/// When stale provider tokens are refreshed (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshMode {
    /// The request that finds a stale token refreshes it and waits.
    #[default]
    Inline,
    /// API requests with a stale token get 401 `TokenExpired`; the client
    /// calls `POST /auth/refresh`. Page navigations still refresh inline (a
    /// browser cannot call the endpoint before navigating).
    Lazy,
    /// Active sessions are refreshed ahead of expiry in the background;
    /// a request that still finds a stale token refreshes inline.
    Background,
}

/// When a JWT session's record is checked for revocation (DESIGN.md §2:
/// sign-out that copies of the cookie do not survive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevocationCheck {
    /// Whenever the gateway consults the store anyway (a refresh, the token
    /// endpoint): no I/O on the fast path, and a copy of a signed-out cookie
    /// lives until its access token needs a refresh.
    #[default]
    Refresh,
    /// On every request too: one lookup in the revocation set
    /// ([`GatewayBuilder::revocations`](crate::GatewayBuilder::revocations)).
    Request,
}

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The gateway's public origin (redirect URIs, same-origin checks).
    pub public_url: Url,
    /// Where the `/auth/*` endpoints live, e.g. `/auth`.
    pub base_path: String,
    /// Whether cookies get `Secure` and the `__Secure-`/`__Host-` names.
    pub secure_cookies: bool,
    /// Session storage strategy.
    pub strategy: SessionStrategy,
    /// Session lifetime.
    pub max_age: Duration,
    /// Database sessions: extend at most once per this interval.
    pub update_age: Duration,
    /// Refresh mode.
    pub refresh_mode: RefreshMode,
    /// When JWT sessions are checked for revocation.
    pub revocation_check: RevocationCheck,
    /// Staleness policy (skew).
    pub policy: ExpiryPolicy,
    /// Send the access token upstream as `X-Forwarded-Access-Token`.
    pub pass_access_token: bool,
    /// Send the access token upstream as `Authorization: Bearer`.
    pub pass_authorization_header: bool,
    /// Send the gateway's own cookies (session and its chunks, CSRF, sign-in
    /// checks, callback URL) to the upstream; by default the proxy removes
    /// them from `Cookie` ([`OwnCookies`](crate::cookies::OwnCookies)).
    pub pass_auth_cookies: bool,
    /// Proxies whose `X-Forwarded-For` and `X-Request-Id` are believed, and
    /// the only forward-auth callers that receive provider tokens
    /// ([`TokenRelease`](crate::gate::TokenRelease)).
    pub trusted_proxies: authgate_proxy::TrustedProxies,
    /// Adopt Auth.js session cookies written by the refresh-token-rotation
    /// guide (tokens inside the JWT) as sessions of this provider; `None`
    /// (default): such cookies are plain Auth.js cookies. JWT strategy only.
    pub adopt_guide_cookies: Option<String>,
    /// The parent domain the session cookie is shared with (`Domain=`
    /// attribute; `None`: host-only). Only the session cookie and its
    /// chunks carry it.
    pub cookie_domain: Option<String>,
    /// Hosts besides `public_url`'s that a `callbackUrl` may name (`host`
    /// or `host:port`, with `public_url`'s scheme), exact; the builder adds
    /// the hosts of the upstreams.
    pub redirect_hosts: Vec<String>,
}

impl GatewaySettings {
    /// Settings for `public_url` with Auth.js's defaults: `/auth`, JWT
    /// sessions of 30 days, inline refresh with a 60 s skew.
    pub fn new(public_url: Url) -> Self {
        Self {
            secure_cookies: public_url.scheme() == "https",
            public_url,
            base_path: "/auth".to_owned(),
            strategy: SessionStrategy::Jwt,
            max_age: Duration::from_secs(30 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
            refresh_mode: RefreshMode::Inline,
            revocation_check: RevocationCheck::Refresh,
            policy: ExpiryPolicy::default(),
            pass_access_token: false,
            pass_authorization_header: false,
            pass_auth_cookies: false,
            trusted_proxies: authgate_proxy::TrustedProxies::none(),
            adopt_guide_cookies: None,
            cookie_domain: None,
            redirect_hosts: Vec::new(),
        }
    }

    /// Whether the access token goes upstream (either header).
    pub fn forwards_tokens(&self) -> bool {
        self.pass_access_token || self.pass_authorization_header
    }

    /// `{public_url}{base_path}{path}` as a string.
    pub fn auth_url(&self, path: &str) -> String {
        format!(
            "{}{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            self.base_path,
            path
        )
    }
}
