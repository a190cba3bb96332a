//! authgate's development identity provider: a small, real OpenID Connect provider.
//!
//! It is what `authgate demo` signs in against, and what tests use as a provider that
//! behaves like the strict ones: authorization code flow with PKCE (S256), ES256 ID tokens,
//! opaque access tokens, **strict refresh-token rotation with reuse detection** (replaying a
//! consumed refresh token revokes the whole grant; there is no grace period), RFC 7009
//! revocation and RFC 7662 introspection. The gateway talks to it over HTTP exactly as it
//! talks to any other provider.
//!
//! It only ever binds a loopback address, and keeps all state in memory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), authgate_devidp::Error> {
//! use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
//! let config = DevIdpConfig::default().with_client(
//!     DevClient::new("authgate", "dev-secret")
//!         .with_redirect_uri("http://127.0.0.1:4180/auth/callback/dev"),
//! );
//! let idp = DevIdp::bind("127.0.0.1:0".parse().unwrap(), config).await?;
//! println!("issuer: {}", idp.issuer_str());
//! # Ok(()) }
//! ```
//!
//! Layout: [`grants`] holds every token rule as pure functions of `now`; the HTTP layer is
//! a thin shell: `state` (configuration, keys, counters, client authentication, ID-token
//! claims), `params` (form and query parsing), `login` (the login form's fields),
//! `error` (RFC 6749 error responses), `page` (HTML) and `handlers` (one per endpoint),
//! which read the clock and render outcomes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

mod error;
pub mod grants;
mod handlers;
mod keys;
mod login;
mod page;
mod params;
mod state;

pub use handlers::router;
pub use state::DevIdpState;

/// Errors from starting the provider.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The development provider only listens on loopback addresses.
    #[error(
        "the development identity provider only binds loopback addresses (127.0.0.0/8, ::1); refusing {0}"
    )]
    NotLoopback(SocketAddr),
    /// The issuer must be an `http(s)` URL on a loopback host.
    #[error("invalid development provider issuer: {0}")]
    InvalidIssuer(String),
    /// Invalid configuration.
    #[error("invalid development provider configuration: {0}")]
    InvalidConfig(String),
    /// Binding or serving failed.
    #[error("development identity provider I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Key generation or signing failed.
    #[error("development identity provider key error: {0}")]
    Key(&'static str),
}

/// A registered client (relying party).
#[derive(Clone)]
pub struct DevClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret` (client_secret_basic or client_secret_post).
    pub client_secret: String,
    /// Allowed redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// Also accept any `http` redirect URI on a loopback host (127.0.0.0/8, `[::1]`,
    /// `localhost`), any port and path. Handy for the demo and tests.
    pub allow_any_loopback_redirect: bool,
}

impl fmt::Debug for DevClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field(
                "allow_any_loopback_redirect",
                &self.allow_any_loopback_redirect,
            )
            .finish()
    }
}

impl DevClient {
    /// A client with no redirect URIs yet.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: Vec::new(),
            allow_any_loopback_redirect: false,
        }
    }

    /// Register one exact redirect URI.
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Accept any loopback `http` redirect URI.
    pub fn allow_any_loopback_redirect(mut self) -> Self {
        self.allow_any_loopback_redirect = true;
        self
    }

    /// Whether `uri` is an allowed redirect URI for this client.
    pub fn redirect_allowed(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        self.allow_any_loopback_redirect
            && Url::parse(uri).is_ok_and(|u| {
                u.scheme() == "http" && u.fragment().is_none() && is_loopback_url(&u)
            })
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Provider configuration.
#[derive(Clone, Debug)]
pub struct DevIdpConfig {
    /// The issuer. [`DevIdp::bind`] sets it to `http://<bound address><base_path>`; set it
    /// yourself only when serving [`router`] on your own listener. Must be a loopback URL.
    pub issuer: Option<Url>,
    /// Path prefix under which [`DevIdp::bind`] serves the endpoints (`""` or e.g. `"/idp"`).
    pub base_path: String,
    /// Access-token lifetime (default 30 s).
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime; every rotation starts a new one (default 1 day).
    pub refresh_token_ttl: Duration,
    /// ID-token lifetime (default 10 min).
    pub id_token_ttl: Duration,
    /// Authorization-code lifetime (default 60 s).
    pub code_ttl: Duration,
    /// How long the login form stays valid (default 10 min).
    pub login_ttl: Duration,
    /// Registered clients.
    pub clients: Vec<DevClient>,
    /// Require PKCE S256 on every authorization request (default true).
    pub require_pkce: bool,
    /// Play a multi-tenant Entra endpoint (default false): the issuer's first path
    /// segment (e.g. `common` in `http://127.0.0.1:PORT/common/v2.0`) is published as
    /// `{tenantid}` in discovery, and each ID token's `iss` carries the signed-in user's
    /// `tid` there instead.
    pub tenant_issuer_template: bool,
    /// Play Google's offline access (default false): `access_type=offline`
    /// asks for a refresh token (as the `offline_access` scope does), and a
    /// refresh token is issued only at a user's first consent to the client,
    /// or when the request says `prompt=consent`.
    pub google_offline_access: bool,
}

impl Default for DevIdpConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            base_path: String::new(),
            access_token_ttl: Duration::from_secs(30),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            id_token_ttl: Duration::from_secs(600),
            code_ttl: Duration::from_secs(60),
            login_ttl: Duration::from_secs(600),
            clients: Vec::new(),
            require_pkce: true,
            tenant_issuer_template: false,
            google_offline_access: false,
        }
    }
}

impl DevIdpConfig {
    /// Add a client.
    pub fn with_client(mut self, client: DevClient) -> Self {
        self.clients.push(client);
        self
    }

    /// Serve under `base_path` (e.g. `"/common/v2.0"`).
    pub fn with_base_path(mut self, base_path: impl Into<String>) -> Self {
        self.base_path = base_path.into();
        self
    }

    /// Publish the issuer as a multi-tenant template (see
    /// [`DevIdpConfig::tenant_issuer_template`]).
    pub fn with_tenant_issuer_template(mut self) -> Self {
        self.tenant_issuer_template = true;
        self
    }
}

/// Counters, for tests and the demo page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful refresh-token grants.
    pub refresh_grants: u64,
    /// Successful authorization-code grants.
    pub code_grants: u64,
    /// Consumed refresh tokens presented again (each revokes the grant if still active).
    pub reuse_detections: u64,
    /// Grants or tokens revoked (by `/revoke`, refresh-token reuse or code replay).
    pub revocations: u64,
}

/// A running provider on its own loopback listener. Dropping it stops the server.
pub struct DevIdp {
    state: Arc<DevIdpState>,
    local_addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevIdp")
            .field("issuer", &self.state.issuer_str())
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl DevIdp {
    /// Bind `addr` (loopback only, port 0 for any), fix the issuer to
    /// `http://<addr>:<port><base_path>`, and serve on the current tokio runtime.
    pub async fn bind(addr: SocketAddr, mut config: DevIdpConfig) -> Result<Self, Error> {
        if !addr.ip().is_loopback() {
            return Err(Error::NotLoopback(addr));
        }
        let base_path = normalise_base_path(&config.base_path)?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let host = match local_addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let issuer = format!("http://{host}:{}{base_path}", local_addr.port());
        config.issuer = Some(Url::parse(&issuer).map_err(|e| Error::InvalidIssuer(e.to_string()))?);
        config.base_path = base_path.clone();
        let state = DevIdpState::new(config)?;
        let app = if base_path.is_empty() {
            router(state.clone())
        } else {
            axum::Router::new().nest(&base_path, router(state.clone()))
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "development identity provider stopped");
            }
        });
        tracing::info!(issuer = %state.issuer_str(), "development identity provider listening");
        Ok(Self {
            state,
            local_addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The issuer URL. Its canonical string form (in discovery and ID tokens) has no
    /// trailing slash: see [`DevIdp::issuer_str`].
    pub fn issuer(&self) -> Url {
        self.state.issuer().clone()
    }

    /// The issuer exactly as it appears in discovery and in ID tokens' `iss`.
    pub fn issuer_str(&self) -> &str {
        self.state.issuer_str()
    }

    /// Mints a JWT access token (RFC 9068, header `typ: at+jwt`) with
    /// exactly `claims`, signed with the provider's published key: what an
    /// authorization server issues for a resource, for API clients' bearer
    /// tokens in tests. Nothing is recorded as a grant.
    pub fn mint_access_jwt(&self, claims: &serde_json::Value) -> Result<String, Error> {
        self.mint_jwt(claims, "at+jwt")
    }

    /// Like [`DevIdp::mint_access_jwt`] with another header `typ` (`JWT`, as
    /// many providers' access tokens have, or a hostile one).
    pub fn mint_jwt(&self, claims: &serde_json::Value, typ: &str) -> Result<String, Error> {
        self.state.key.sign_typed(claims, typ)
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The shared state (to mount [`router`] elsewhere too, or to read stats).
    pub fn state(&self) -> Arc<DevIdpState> {
        self.state.clone()
    }

    /// Stop accepting connections and wait (up to 5 s) for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `""` or `/segment(/segment)*` without a trailing slash.
fn normalise_base_path(path: &str) -> Result<String, Error> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && trimmed[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::InvalidConfig(format!(
            "base_path {path:?} must look like \"/idp\""
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_exactly_unless_loopback_allowed() {
        let c = DevClient::new("a", "s").with_redirect_uri("http://127.0.0.1:4180/cb");
        assert!(c.redirect_allowed("http://127.0.0.1:4180/cb"));
        assert!(!c.redirect_allowed("http://127.0.0.1:4180/cb/"));
        assert!(!c.redirect_allowed("http://127.0.0.1:4181/cb"));
        let c = c.allow_any_loopback_redirect();
        assert!(c.redirect_allowed("http://127.0.0.1:9999/x?y=1"));
        assert!(c.redirect_allowed("http://localhost:3000/cb"));
        assert!(c.redirect_allowed("http://[::1]:3000/cb"));
        assert!(!c.redirect_allowed("http://evil.example/cb"));
        assert!(!c.redirect_allowed("https://127.0.0.1.evil.example/cb"));
        assert!(!c.redirect_allowed("http://127.0.0.1:1/cb#frag"));
        assert!(!c.redirect_allowed("javascript:alert(1)"));
    }

    #[test]
    fn base_path_is_normalised_or_refused() {
        assert_eq!(normalise_base_path("").unwrap(), "");
        assert_eq!(normalise_base_path("/").unwrap(), "");
        assert_eq!(normalise_base_path("/idp/").unwrap(), "/idp");
        assert!(normalise_base_path("idp").is_err());
        assert!(normalise_base_path("/../x").is_err());
        assert!(normalise_base_path("/a b").is_err());
    }

    #[test]
    fn client_debug_redacts_secret() {
        let c = DevClient::new("a", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
