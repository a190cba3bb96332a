//! Typed configuration for authgate: a TOML file plus `AUTHGATE_*` environment
//! overrides, validated at load time.
//!
//! Every key can come from the environment: `AUTHGATE_` + the key path in upper case with
//! `__` between levels (`AUTHGATE_SESSION__SECRET`, `AUTHGATE_REFRESH__SKEW`,
//! `AUTHGATE_PROVIDERS__0__CLIENT_SECRET`). The environment wins over the file. A single
//! string is accepted where a list is expected; lists and tables can also be written in
//! TOML syntax (`AUTHGATE_SESSION__SECRET='["new…", "old…"]'`). An empty value unsets an
//! optional key. Key levels are lower-cased (so are map keys such as
//! `authorization_params`). Only names with at least one `__` are configuration keys;
//! other `AUTHGATE_*` variables (such as `AUTHGATE_CONFIG`) are ignored here.
//!
//! Every error names the key, where its value came from, and what is wrong:
//!
//! ```text
//! session.secret[0] (environment variable AUTHGATE_SESSION__SECRET): must be at least 32 bytes, got 10
//! ```
//!
//! Secrets ([`Secret`]) and service URLs with passwords ([`ServiceUrl`]) never appear in
//! `Debug` output or in [`Config::redacted_summary`].

mod de;
mod duration;
mod error;
mod fields;
mod secret;
mod summary;
mod tree;
mod validate;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

pub use authgate_core::client_secret::SecretHash;
pub use authgate_core::rate::Rate;
pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, Origin, Problem};
pub use secret::{Secret, ServiceUrl};
pub use tree::{ENV_PREFIX, ENV_SEPARATOR, env_var_for, is_config_env_var};

/// Minimum length of every secret (session secrets, encryption keys), in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// The complete authgate configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listening address, public URL, upstream.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[session]`: session strategy, secrets, lifetimes, cookie format.
    #[serde(default)]
    pub session: SessionConfig,
    /// `[refresh]`: when and how access tokens are refreshed.
    #[serde(default)]
    pub refresh: RefreshConfig,
    /// `[store]`: the database that holds accounts, sessions and refresh tokens.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[cache]`: the in-process or Redis cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[[providers]]`: the OAuth 2.0 / OpenID Connect providers users sign in with.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// `[[routes]]`: access rules by path, first match wins.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[[upstreams]]`: several applications behind one gateway, each chosen
    /// by the request's `Host` (and an optional path prefix). Instead of
    /// `server.upstream`, never together with it.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// `[[service_clients]]`: servers and jobs that may call the token
    /// endpoint (never browsers).
    #[serde(default)]
    pub service_clients: Vec<ServiceClientConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:4180`.
    #[serde(
        default = "default_listen",
        deserialize_with = "fields::de_socket_addr"
    )]
    pub listen: SocketAddr,
    /// The URL browsers use to reach authgate (callback URLs are built from it).
    /// Default: `http://` + `listen` (required when `listen` is a wildcard address).
    #[serde(default = "default_public_url", deserialize_with = "fields::de_url")]
    pub public_url: Url,
    /// The application authgate proxies to (reverse-proxy mode); `None` for
    /// forward-auth only.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub upstream: Option<Url>,
    /// Proxies whose `X-Forwarded-*` headers are trusted: IP addresses or CIDR ranges
    /// (a bare address is a single-host range).
    #[serde(default, deserialize_with = "fields::de_ipnets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Path prefix of authgate's own endpoints. Default `/auth`.
    #[serde(default = "default_base_path")]
    pub base_path: String,
    /// Send the user's access token upstream in `X-Forwarded-Access-Token`.
    /// Default `false`.
    #[serde(default)]
    pub pass_access_token: bool,
    /// Send the user's access token upstream as `Authorization: Bearer …`.
    /// Default `false`.
    #[serde(default)]
    pub pass_authorization_header: bool,
    /// Send authgate's own cookies (the session cookie and its chunks, CSRF,
    /// the sign-in `state` / PKCE / `nonce` cookies, the callback URL) to the
    /// upstream. Default `false`: the upstream never sees them. Turn it on
    /// only for an upstream that reads the session itself (a Next.js app
    /// calling Auth.js's `auth()` with the same secret).
    #[serde(default)]
    pub pass_auth_cookies: bool,
    /// Send the client's `Host` to the upstream. Default `false`: the
    /// upstream receives its own authority (from `upstream`), and
    /// `X-Forwarded-Host` / `X-Forwarded-Proto` describe `public_url`.
    #[serde(default)]
    pub preserve_host: bool,
    /// Hosts besides `public_url`'s that a `callbackUrl` may name (sign-in
    /// and sign-out return there): `"admin.example.com"` or
    /// `"admin.example.com:8443"`, with `public_url`'s scheme. Exact hosts
    /// only, never patterns (lower-cased at load). The hosts of
    /// `[[upstreams]]` are allowed without being listed here; list the
    /// hosts served by forward-auth (an nginx or Traefik in front of
    /// another app). Default: none.
    #[serde(default)]
    pub allowed_redirect_hosts: Vec<String>,
    /// Serve `/metrics` on this address instead of `listen` (then `/metrics`
    /// on `listen` is the upstream's). Default: on `listen`.
    #[serde(default, deserialize_with = "fields::de_opt_socket_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// How long the upstream may take to answer with headers before the
    /// gateway answers 504. Default `60s`.
    #[serde(
        default = "default_upstream_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub upstream_timeout: Duration,
}

fn default_upstream_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: default_public_url(),
            upstream: None,
            trusted_proxies: Vec::new(),
            base_path: default_base_path(),
            pass_access_token: false,
            pass_authorization_header: false,
            pass_auth_cookies: false,
            preserve_host: false,
            allowed_redirect_hosts: Vec::new(),
            metrics_listen: None,
            upstream_timeout: default_upstream_timeout(),
        }
    }
}

/// How sessions are kept (`session.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStrategy {
    /// The session lives in an encrypted cookie (JWE), as Auth.js's `jwt` strategy.
    #[default]
    Jwt,
    /// The cookie holds an opaque session token; the session lives in the store.
    Database,
}

/// Session cookie compatibility (`session.cookie_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum CookieFormat {
    /// Auth.js v5: `authjs.session-token`, A256CBC-HS512.
    #[default]
    #[serde(rename = "authjs")]
    AuthJs,
    /// next-auth v4: `next-auth.session-token`, A256GCM.
    #[serde(rename = "next-auth-v4")]
    NextAuthV4,
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// `jwt` (default) or `database`.
    #[serde(default)]
    pub strategy: SessionStrategy,
    /// Session secrets: the first encrypts, all decrypt (rotation). Each at least
    /// [`MIN_SECRET_BYTES`] bytes; at least one is required. A single string is accepted.
    #[serde(default)]
    pub secret: Vec<Secret>,
    /// Session lifetime. Default `30d`.
    #[serde(
        default = "default_max_age",
        deserialize_with = "duration::deserialize"
    )]
    pub max_age: Duration,
    /// How often a database session's expiry is extended (Auth.js `updateAge`).
    /// Default `24h`.
    #[serde(
        default = "default_update_age",
        deserialize_with = "duration::deserialize"
    )]
    pub update_age: Duration,
    /// `authjs` (default) or `next-auth-v4`.
    #[serde(default)]
    pub cookie_format: CookieFormat,
    /// Whether cookies get the `Secure` attribute and `__Secure-` prefix. When not set,
    /// true exactly when `server.public_url` is `https` (resolved at load time).
    #[serde(default)]
    pub secure_cookies: bool,
    /// When a JWT session's record is checked for revocation: `refresh`
    /// (default) or `request`.
    #[serde(default)]
    pub revocation_check: RevocationCheck,
    /// Adopt Auth.js session cookies written by its refresh-token-rotation
    /// guide (`access_token`, `expires_at`, `refresh_token` inside the JWT)
    /// as sessions of this provider (`[[providers]] id`). Unset (default):
    /// such cookies are plain Auth.js cookies. Needs `strategy = "jwt"`.
    #[serde(default)]
    pub adopt_guide_cookies: Option<String>,
    /// The parent domain the session cookie is shared with
    /// (`"example.com"`: the cookie carries `Domain=example.com`, so one
    /// sign-in covers `app.example.com` and `admin.example.com`). Lower-cased
    /// at load, a leading `.` dropped; no scheme, port or IP address;
    /// `server.public_url`'s host must be the domain or below it. Only the
    /// session cookie (and its chunks) is shared; the CSRF and sign-in check
    /// cookies stay host-only. Default: host-only session cookie.
    #[serde(default)]
    pub cookie_domain: Option<String>,
}

/// When a JWT session's record is checked (`session.revocation_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationCheck {
    /// Only when the gateway consults the store anyway (a refresh, the
    /// token endpoint): no I/O on the fast path; a copied cookie lives until
    /// then.
    #[default]
    Refresh,
    /// On every request: one lookup in the cache's revocation set, so a
    /// sign-out ends every copy of the cookie at once.
    Request,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            strategy: SessionStrategy::default(),
            secret: Vec::new(),
            max_age: default_max_age(),
            update_age: default_update_age(),
            cookie_format: CookieFormat::default(),
            secure_cookies: false,
            revocation_check: RevocationCheck::default(),
            adopt_guide_cookies: None,
            cookie_domain: None,
        }
    }
}

/// When access tokens are refreshed (`refresh.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshMode {
    /// The request that finds a stale token refreshes it and waits.
    #[default]
    Inline,
    /// Stale tokens are reported; the client calls `POST /auth/refresh`.
    Lazy,
    /// Active sessions are refreshed ahead of expiry.
    Background,
}

/// `[refresh]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshConfig {
    /// `inline` (default), `lazy` or `background`.
    #[serde(default)]
    pub mode: RefreshMode,
    /// A token is stale when `now >= expires_at - skew`. Default `60s`.
    #[serde(default = "default_skew", deserialize_with = "duration::deserialize")]
    pub skew: Duration,
    /// Retries of a refresh call after transient failures. Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Timeout of one refresh call to the provider. Default `10s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
    /// How long a token write that fails right after the provider rotated
    /// the tokens is retried before the new tokens are given up (the old
    /// refresh token is consumed by then). Default `30s`.
    #[serde(
        default = "default_persist_deadline",
        deserialize_with = "duration::deserialize"
    )]
    pub persist_deadline: Duration,
    /// `[refresh.circuit_breaker]`: per-provider circuit breaker.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            mode: RefreshMode::default(),
            skew: default_skew(),
            retries: default_retries(),
            timeout: default_timeout(),
            persist_deadline: default_persist_deadline(),
            circuit_breaker: CircuitBreakerConfig::default(),
        }
    }
}

/// `[refresh.circuit_breaker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Consecutive transient failures that open the circuit. Default 5.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long the circuit stays open before a trial call. Default `30s`.
    #[serde(
        default = "default_open_for",
        deserialize_with = "duration::deserialize"
    )]
    pub open_for: Duration,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            failure_threshold: default_failure_threshold(),
            open_for: default_open_for(),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://…` (default `sqlite://authgate.db`, relative to the working directory)
    /// or `postgres://…`.
    #[serde(default = "default_store_url")]
    pub url: ServiceUrl,
    /// Keys for encrypting tokens at rest: the first encrypts, all decrypt. When `None`,
    /// keys are derived from the session secrets.
    #[serde(default)]
    pub encryption_keys: Option<Vec<Secret>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            encryption_keys: None,
        }
    }
}

/// `[cache]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// `memory://` (default), `redis://…`, `rediss://…` (TLS),
    /// `redis+sentinel://host1:26379,host2:26379/<master>[/db]` or
    /// `rediss+sentinel://…` (see [`authgate_core::redis_url`]).
    #[serde(default = "default_cache_url")]
    pub url: ServiceUrl,
    /// A PEM file of the CA certificate(s) trusted for TLS to Redis instead
    /// of the system roots (a private CA). Only with `rediss://` or
    /// `rediss+sentinel://`.
    #[serde(default)]
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// How long cached entries live. Default `5m`.
    #[serde(
        default = "default_cache_ttl",
        deserialize_with = "duration::deserialize"
    )]
    pub ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            url: default_cache_url(),
            redis_ca_file: None,
            ttl: default_cache_ttl(),
        }
    }
}

/// Built-in provider settings (`providers[].preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProviderPreset {
    /// Google (OIDC).
    #[serde(rename = "google")]
    Google,
    /// GitHub (OAuth 2.0, not OIDC).
    #[serde(rename = "github")]
    GitHub,
    /// Microsoft Entra ID (OIDC); `tenant` (or `issuer`) selects the directory.
    #[serde(rename = "microsoft-entra-id")]
    MicrosoftEntraId,
    /// GitLab (OIDC); `issuer` for self-managed instances.
    #[serde(rename = "gitlab")]
    GitLab,
    /// Keycloak (OIDC); `issuer` (the realm URL) is required.
    #[serde(rename = "keycloak")]
    Keycloak,
    /// Okta (OIDC); `issuer` is required.
    #[serde(rename = "okta")]
    Okta,
    /// Auth0 (OIDC); `issuer` (the tenant URL) is required.
    #[serde(rename = "auth0")]
    Auth0,
}

impl ProviderPreset {
    /// The preset's name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderPreset::Google => "google",
            ProviderPreset::GitHub => "github",
            ProviderPreset::MicrosoftEntraId => "microsoft-entra-id",
            ProviderPreset::GitLab => "gitlab",
            ProviderPreset::Keycloak => "keycloak",
            ProviderPreset::Okta => "okta",
            ProviderPreset::Auth0 => "auth0",
        }
    }

    /// Whether this preset is per-tenant and so needs an `issuer`.
    pub fn requires_issuer(self) -> bool {
        matches!(
            self,
            ProviderPreset::Keycloak | ProviderPreset::Okta | ProviderPreset::Auth0
        )
    }
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Identifier used in URLs (`/auth/signin/{id}`): letters, digits, `-`, `_`; unique.
    pub id: String,
    /// Display name on the sign-in page.
    #[serde(default)]
    pub name: Option<String>,
    /// Built-in settings for a well-known provider.
    #[serde(default)]
    pub preset: Option<ProviderPreset>,
    /// OpenID Connect issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    /// A provider needs `preset` or `issuer`.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub issuer: Option<Url>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Scopes to request; empty means the preset's (or OIDC's) defaults.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra authorization request parameters (e.g. `prompt = "consent"`).
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    /// Explicit endpoint URLs, overriding the preset's or the discovered ones
    /// (GitHub Enterprise, a provider without discovery).
    #[serde(default)]
    pub endpoints: ProviderEndpoints,
    /// `microsoft-entra-id` only: the directory whose users may sign in — its
    /// tenant ID, or `"common"`, `"organizations"` or `"consumers"` to admit
    /// other directories (never a default: anyone can set any e-mail address
    /// in a directory of their own). Every ID token's `tid` is checked
    /// against it.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Link a new account at this provider whose verified e-mail address
    /// belongs to an existing user (whose address is verified too) to that
    /// user, instead of refusing the sign-in. Default `false`.
    #[serde(default)]
    pub link_by_email: bool,
    /// What `POST {base}/signout` does at the provider: `local` (default:
    /// the gateway's session and the grant end, the provider's session
    /// stays) or `provider` (then the browser goes to the provider's
    /// `end_session_endpoint`: OpenID Connect RP-Initiated Logout).
    #[serde(default)]
    pub signout: SignOutMode,
    /// With `signout = "provider"`: where the provider sends the browser
    /// after its logout (registered there as a post-logout redirect URI).
    /// Default `{server.public_url}/`.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub post_logout_redirect_uri: Option<Url>,
    /// The claim (a dotted path) that lists the user's groups, replacing
    /// the preset's (`groups` for generic OpenID Connect, Keycloak, Okta,
    /// GitLab and Entra).
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// The claim (a dotted path) that lists the user's roles, replacing the
    /// preset's (`realm_access.roles` for Keycloak, `roles` for Entra and
    /// generic OpenID Connect).
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Accept this provider's JWT access tokens as `Authorization: Bearer`
    /// on `api` routes: `{ audiences = [...], algorithms = [...] }`.
    #[serde(default)]
    pub bearer: Option<BearerConfig>,
    /// `google` only: read the user's Google Workspace groups (named by
    /// their addresses) with a service account holding domain-wide
    /// delegation: `{ service_account_file = "…json", admin_email = "…" }`.
    #[serde(default)]
    pub google_groups: Option<GoogleGroupsConfig>,
}

/// `providers[].google_groups`: the service account that reads Workspace
/// groups through the Admin SDK Directory API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleGroupsConfig {
    /// The JSON key file Google issues for the service account
    /// (`client_email`, `private_key`, `token_uri`).
    pub service_account_file: std::path::PathBuf,
    /// The Workspace administrator the service account acts as.
    pub admin_email: String,
    /// The Directory API's base URL; default `https://admin.googleapis.com`.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub directory_url: Option<Url>,
}

/// Why a service account key file is unusable (its content never appears).
pub fn check_service_account_key(text: &str) -> Result<(), String> {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err("not a JSON object (expected a Google service account key file)".into());
    };
    if doc.get("type").and_then(|t| t.as_str()) != Some("service_account") {
        return Err("not a service account key (\"type\" is not \"service_account\")".into());
    }
    for field in ["client_email", "private_key", "token_uri"] {
        if doc
            .get(field)
            .and_then(|v| v.as_str())
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(format!("the key has no {field}"));
        }
    }
    if !doc
        .get("private_key")
        .and_then(|v| v.as_str())
        .is_some_and(|k| k.contains("-----BEGIN PRIVATE KEY-----"))
    {
        return Err("private_key is not a PEM private key".into());
    }
    Ok(())
}

/// `providers[].bearer`: which access tokens of the provider API clients
/// may present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerConfig {
    /// Accepted `aud` values (at least one; a token passes when one of its
    /// audiences is listed).
    pub audiences: Vec<String>,
    /// Accepted signature algorithms; default: every algorithm accepted on
    /// ID tokens. Never `none`, never `HS*`.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Check opaque (non-JWT) tokens at the provider's RFC 7662
    /// introspection endpoint (from discovery). At most one provider.
    #[serde(default)]
    pub introspect: bool,
}

/// The signature algorithms `providers[].bearer.algorithms` may name (those
/// accepted on ID tokens).
pub const BEARER_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// `providers[].signout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignOutMode {
    /// Sign-out ends the gateway's session and the grant only.
    #[default]
    Local,
    /// Sign-out then sends the browser to the provider's end-session endpoint.
    Provider,
}

/// `[providers.endpoints]`: explicit endpoint URLs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEndpoints {
    /// Authorization endpoint.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub authorization: Option<Url>,
    /// Token endpoint.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub token: Option<Url>,
    /// UserInfo (profile) endpoint.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub userinfo: Option<Url>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub revocation: Option<Url>,
    /// JWKS of an OpenID Connect provider.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub jwks: Option<Url>,
    /// RP-initiated logout endpoint, for `signout = "provider"` with a
    /// provider whose discovery does not publish `end_session_endpoint`.
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub end_session: Option<Url>,
    /// The user's e-mail addresses with their verification (GitHub's
    /// `GET /user/emails`; default: the userinfo endpoint + `/emails`).
    #[serde(default, deserialize_with = "fields::de_opt_url")]
    pub emails: Option<Url>,
}

/// What a route requires (`routes[].access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAccess {
    /// No session needed; identity headers are added when signed in.
    Public,
    /// A session is needed; browsers without one are redirected to sign in.
    Protected,
    /// A session is needed; requests without one get `401` JSON, never a redirect.
    Api,
}

impl RouteAccess {
    /// The access kind as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteAccess::Public => "public",
            RouteAccess::Protected => "protected",
            RouteAccess::Api => "api",
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path pattern starting with `/`: `*` matches within a segment, `**` across segments.
    pub path: String,
    /// `public`, `protected` or `api`.
    pub access: RouteAccess,
    /// HTTP methods this rule applies to (upper-cased at load); empty means all.
    /// `GET` also covers `HEAD`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Only these e-mail addresses may pass (lower-cased at load); empty means anyone
    /// signed in (subject to `allow_domains`).
    #[serde(default)]
    pub allow_emails: Vec<String>,
    /// Only e-mail addresses in these domains may pass (lower-cased at load).
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// Only members of one of these groups may pass (exact names, as the
    /// provider's groups source lists them; see the README).
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// Only holders of one of these roles may pass.
    #[serde(default)]
    pub allow_roles: Vec<String>,
    /// Only users one of whose claims (a dotted path into the ID token's or
    /// userinfo's claims) holds one of the listed values may pass.
    #[serde(default)]
    pub allow_claims: Vec<ClaimRuleConfig>,
    /// A `protected` route that also accepts API clients' bearer tokens
    /// (`api` routes always do when a provider has `bearer`). Default `false`.
    #[serde(default)]
    pub bearer: bool,
}

/// One `routes[].allow_claims` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRuleConfig {
    /// A dotted path into nested claims, e.g. `realm_access.roles`.
    pub claim: String,
    /// The values that admit (at least one; exact comparison, numbers and
    /// booleans in their JSON spelling: `"42"`, `"true"`).
    pub values: Vec<String>,
}

/// One `[[upstreams]]` entry: the application that requests for `host`
/// (and under `path_prefix`) are proxied to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The host browsers use for this application: `"admin.example.com"`
    /// (any port) or `"admin.example.com:8443"` (that port only); exact and
    /// case-insensitive, compared with the request's `Host` (never
    /// `X-Forwarded-Host`). Lower-cased at load. Also a permitted
    /// `callbackUrl` host.
    pub host: String,
    /// Only paths equal to this prefix or below it (`"/admin"` matches
    /// `/admin` and `/admin/x`, not `/administrator`); the longest matching
    /// prefix of the host's entries wins. Default `/`. The path is forwarded
    /// as it is.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The application's URL (`http://127.0.0.1:9001`).
    #[serde(deserialize_with = "fields::de_url")]
    pub url: Url,
    /// `[[upstreams.routes]]`: this upstream's access rules (as
    /// `[[routes]]`). Empty: the top-level `[[routes]]` apply.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `server.pass_access_token` for this upstream (default: the
    /// server's). May turn off what `[server]` turns on, not the reverse.
    #[serde(default)]
    pub pass_access_token: Option<bool>,
    /// `server.pass_authorization_header` for this upstream (default: the
    /// server's). May turn off what `[server]` turns on, not the reverse.
    #[serde(default)]
    pub pass_authorization_header: Option<bool>,
    /// `server.pass_auth_cookies` for this upstream (default: the server's).
    #[serde(default)]
    pub pass_auth_cookies: Option<bool>,
    /// `server.preserve_host` for this upstream (default: the server's).
    #[serde(default)]
    pub preserve_host: Option<bool>,
}

/// What a service client may do (`service_clients[].allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum ServicePermission {
    /// `POST {base_path}/token` for the user whose session cookie the
    /// client forwards.
    #[serde(rename = "token")]
    Token,
    /// `POST {base_path}/token` for any user, named by `user_id` and
    /// `provider` (jobs acting for users who are not online).
    #[serde(rename = "token:offline")]
    TokenOffline,
    /// The session administration API.
    #[serde(rename = "sessions")]
    Sessions,
}

impl ServicePermission {
    /// The permission as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ServicePermission::Token => "token",
            ServicePermission::TokenOffline => "token:offline",
            ServicePermission::Sessions => "sessions",
        }
    }
}

/// One `[[service_clients]]` entry: a server or job that authenticates with
/// its id and secret (HTTP Basic, or `Bearer` plus `X-Service-Client`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceClientConfig {
    /// The client's name: letters, digits, `.`, `-`, `_`; unique.
    pub id: String,
    /// The hash of its secret, as printed by `authgate secret --hash`
    /// (`$hmac-sha256$…`); the secret itself is never configured.
    pub secret_hash: SecretHash,
    /// What it may do: `"token"`, `"token:offline"`, `"sessions"`.
    pub allow: Vec<ServicePermission>,
    /// Its rate limit (`"600/min"`, `"10/s"`, `"5000/h"`): bursts of the
    /// count, then the count per period. Default `600/min`.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: Rate,
}

impl Config {
    /// Loads the configuration from an optional TOML file plus the process environment
    /// (`AUTHGATE_*`; the environment wins). Without a file, defaults plus environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.to_owned(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let mut env = Vec::new();
        let mut problems = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| is_config_env_var(n)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => env.push((name.to_owned(), value)),
                Err(_) => problems.push(Problem {
                    key: name[ENV_PREFIX.len()..]
                        .to_ascii_lowercase()
                        .replace(ENV_SEPARATOR, "."),
                    origin: Origin::Env {
                        var: name.to_owned(),
                    },
                    message: "value is not valid UTF-8".to_owned(),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let source_name = path.map(|p| p.display().to_string());
        let file = match (&source_name, &text) {
            (Some(name), Some(text)) => Some((name.as_str(), text.as_str())),
            _ => None,
        };
        Config::from_sources(file, env)
    }

    /// Loads from explicit sources, without touching the process: optional TOML text
    /// (`(source_name, text)`, the name is used in error messages) and environment
    /// variables as name/value pairs (only `AUTHGATE_*__*` names are used).
    pub fn from_sources(
        toml_text: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut root = match toml_text {
            Some((name, text)) => tree::Node::parse_file(name, text)?,
            None => tree::Node::empty_root(),
        };
        let problems = root.apply_env(env);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let mut config = Config::deserialize(de::NodeDe {
            node: &root,
            path: String::new(),
        })
        .map_err(|e| ConfigError::Invalid(vec![e.into_problem()]))?;
        let problems = validate::validate(&mut config, &root);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 4180))
}

#[allow(clippy::expect_used)] // a constant URL; pinned by the defaults test
fn default_public_url() -> Url {
    Url::parse("http://127.0.0.1:4180").expect("constant URL parses")
}

/// `http://` + the listen address (IPv6 in brackets).
pub(crate) fn url_from_listen(listen: SocketAddr) -> Result<Url, url::ParseError> {
    Url::parse(&format!("http://{listen}"))
}

/// A service client's rate limit when it sets none: 600 calls a minute.
pub const DEFAULT_SERVICE_RATE_LIMIT: Rate = Rate {
    count: match std::num::NonZeroU32::new(600) {
        Some(count) => count,
        None => unreachable!(),
    },
    per: authgate_core::rate::Period::Minute,
};

fn default_rate_limit() -> Rate {
    DEFAULT_SERVICE_RATE_LIMIT
}

fn default_base_path() -> String {
    "/auth".to_owned()
}
fn default_max_age() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_update_age() -> Duration {
    Duration::from_secs(86_400)
}
fn default_skew() -> Duration {
    Duration::from_secs(60)
}
fn default_retries() -> u32 {
    3
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_persist_deadline() -> Duration {
    Duration::from_secs(30)
}
fn default_failure_threshold() -> u32 {
    5
}
fn default_open_for() -> Duration {
    Duration::from_secs(30)
}
fn default_store_url() -> ServiceUrl {
    ServiceUrl::new("sqlite://authgate.db")
}
fn default_cache_url() -> ServiceUrl {
    ServiceUrl::new("memory://")
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(300)
}
