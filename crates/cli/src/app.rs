//! Process wiring: turns a validated [`Config`] into a running gateway.
//!
//! This is assembly only — which store, which cache, which providers, which
//! refresh coordination — with no decisions of its own. `serve`, `demo` and
//! the end-to-end tests all build the gateway through [`App::build`].

use authgate_config::{CacheConfig, Config, ProviderConfig};
use authgate_core::refresh::{RefreshSettings, RetryPolicy};
use authgate_core::token::ExpiryPolicy;
use authgate_http::{
    Access, AllowList, Gateway, GatewayParts, GatewaySettings, OwnedHeaders, ProxySettings,
    RefreshMode, ReverseProxy, RouteRule, RouteRules, SessionStrategy, TrustedProxies,
};
use authgate_oauth::{Catalog, HttpClient, HttpSettings, Preset, ProviderSettings};
use authgate_refresh::{
    BreakerSettings, CatalogRefresher, PollingSignal, RedisSignal, RefreshDeps, RefreshService,
    RefreshSignal, SystemClock,
};
use authgate_store::cache::{CacheBackend, CacheOptions, CachedStore, open_cache};
use authgate_store::{Backend, KeyRing, Store};
use axum::Router;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

/// Why the gateway could not be assembled. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The session secrets are unusable.
    #[error("session.secret: {0}")]
    Keys(#[from] authgate_core::cookie::KeyError),
    /// The token encryption keys are unusable.
    #[error("store.encryption_keys: {0}")]
    Crypto(#[from] authgate_store::CryptoError),
    /// The store could not be opened or migrated.
    #[error("store.url: {0}")]
    Store(#[from] authgate_store::StoreError),
    /// The cache could not be opened.
    #[error("cache.url: {0}")]
    Cache(#[from] authgate_store::cache::CacheError),
    /// The outbound HTTP client could not be built.
    #[error("outbound HTTP client: {0}")]
    Http(#[from] authgate_oauth::HttpClientError),
    /// A provider could not be resolved (discovery failed, bad settings).
    #[error("providers: {0}")]
    Catalog(#[from] authgate_oauth::CatalogError),
    /// A provider preset name is unknown to the OAuth client.
    #[error("providers: unknown preset {0:?}")]
    Preset(String),
    /// Redis for refresh coordination could not be configured.
    #[error("cache.url (refresh coordination): {0}")]
    Redis(#[from] redis::RedisError),
    /// A route rule is invalid.
    #[error("routes: {0}")]
    Routes(#[from] authgate_http::RuleError),
    /// A route's method is not an HTTP method.
    #[error("routes[{index}].methods: {method:?} is not an HTTP method")]
    Method {
        /// Route position.
        index: usize,
        /// The value.
        method: String,
    },
    /// The upstream URL is unusable.
    #[error("server.upstream: {0}")]
    Upstream(#[from] authgate_http::ProxyError),
}

/// When to apply migrations while building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply them (SQLite always; PostgreSQL when asked).
    Apply,
    /// Apply them for SQLite only; PostgreSQL is migrated with `authgate migrate`.
    SqliteOnly,
}

/// An assembled gateway.
pub struct App {
    gateway: Gateway,
    store: Arc<dyn Store>,
    cache: Arc<dyn CacheBackend>,
    metrics: Option<PrometheusHandle>,
}

impl App {
    /// Builds the gateway for `config`: opens (and migrates) the store,
    /// the cache, resolves the providers, starts refresh coordination.
    pub async fn build(config: &Config, migrations: Migrations) -> Result<App, AppError> {
        let secrets: Vec<Vec<u8>> = config
            .session
            .secret
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let keys = key_ring(config)?;
        let store = authgate_store::connect(config.store.url.as_str(), keys.clone()).await?;
        if store.backend() == Backend::Sqlite || migrations == Migrations::Apply {
            store.migrate().await?;
        }
        let cache = open_cache(config.cache.url.as_str(), &cache_options(&config.cache)).await?;
        let cached: Arc<dyn Store> = Arc::new(CachedStore::new(
            Arc::clone(&store),
            Arc::clone(&cache),
            keys,
        ));
        let http = HttpClient::new(&HttpSettings {
            timeout: config.refresh.timeout,
            ..HttpSettings::default()
        })?;
        let settings = config
            .providers
            .iter()
            .map(provider_settings)
            .collect::<Result<Vec<_>, _>>()?;
        let catalog = Catalog::resolve(settings, &http).await?;
        let signal: Arc<dyn RefreshSignal> = if config.cache.url.as_str().starts_with("redis") {
            Arc::new(RedisSignal::open(
                config.cache.url.as_str(),
                "authgate:refresh:",
                Duration::from_millis(100),
            )?)
        } else {
            Arc::new(PollingSignal::new(Duration::from_millis(100)))
        };
        let policy = ExpiryPolicy {
            skew: config.refresh.skew,
        };
        let refresh = RefreshService::new(
            RefreshDeps {
                source_of_truth: Arc::clone(&store),
                writer: Arc::clone(&cached),
                refresher: Arc::new(CatalogRefresher::new(catalog.clone())),
                signal,
                clock: Arc::new(SystemClock),
            },
            RefreshSettings {
                policy,
                lease_ttl: config.refresh.timeout + Duration::from_secs(5),
                deadline: config.refresh.timeout * 2,
                retry: RetryPolicy {
                    max_attempts: config.refresh.retries + 1,
                    ..RetryPolicy::default()
                },
                persist_attempts: 3,
            },
            BreakerSettings {
                failure_threshold: config.refresh.circuit_breaker.failure_threshold,
                open_for: config.refresh.circuit_breaker.open_for,
            },
            instance_id(),
        );
        let gateway = Gateway::new(GatewayParts {
            settings: GatewaySettings {
                public_url: config.server.public_url.clone(),
                base_path: config.server.base_path.clone(),
                secure_cookies: config.session.secure_cookies,
                strategy: match config.session.strategy {
                    authgate_config::SessionStrategy::Jwt => SessionStrategy::Jwt,
                    authgate_config::SessionStrategy::Database => SessionStrategy::Database,
                },
                max_age: config.session.max_age,
                update_age: config.session.update_age,
                refresh_mode: match config.refresh.mode {
                    authgate_config::RefreshMode::Inline => RefreshMode::Inline,
                    authgate_config::RefreshMode::Lazy => RefreshMode::Lazy,
                    authgate_config::RefreshMode::Background => RefreshMode::Background,
                },
                policy,
                pass_access_token: config.server.pass_access_token,
                pass_authorization_header: config.server.pass_authorization_header,
                trusted_proxies: TrustedProxies::new(config.server.trusted_proxies.clone()),
            },
            secrets,
            cookie_format: match config.session.cookie_format {
                authgate_config::CookieFormat::AuthJs => {
                    authgate_core::cookie::CookieFormat::AuthJs
                }
                authgate_config::CookieFormat::NextAuthV4 => {
                    authgate_core::cookie::CookieFormat::NextAuthV4
                }
            },
            store: cached,
            catalog,
            refresh,
            clock: Arc::new(SystemClock),
            routes: routes(config)?,
            upstream: upstream(config)?,
        })?;
        if config.refresh.mode == authgate_config::RefreshMode::Background {
            gateway.spawn_background_refresh();
        }
        Ok(App {
            gateway,
            store,
            cache,
            metrics: prometheus(),
        })
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The store (uncached), e.g. for inspection in tests.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The HTTP application: the gateway (`/auth/*` and the proxy),
    /// `/healthz`, `/readyz` and `/metrics`.
    pub fn router(&self) -> Router {
        let store = Arc::clone(&self.store);
        let cache = Arc::clone(&self.cache);
        let metrics = self.metrics.clone();
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/metrics",
                get(move || {
                    let metrics = metrics.clone();
                    async move {
                        match metrics {
                            Some(h) => (StatusCode::OK, h.render()).into_response(),
                            None => {
                                (StatusCode::NOT_FOUND, "metrics are not enabled").into_response()
                            }
                        }
                    }
                }),
            )
            .route(
                "/readyz",
                get(move || {
                    let (store, cache) = (Arc::clone(&store), Arc::clone(&cache));
                    async move { readiness(&*store, &*cache).await }
                }),
            )
            .merge(self.gateway.router())
    }
}

/// `/readyz`: 200 when the store answers and the cache answers (an
/// unreachable Redis cache degrades to the store, so it is reported but
/// does not make the gateway unready).
async fn readiness(store: &dyn Store, cache: &dyn CacheBackend) -> axum::response::Response {
    let probe = authgate_store::UserId::new("authgate-readiness-probe");
    if let Err(error) = store.find_user(&probe).await {
        tracing::warn!(%error, "readiness: store unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response();
    }
    match cache.get("authgate:readiness-probe").await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness: cache unreachable; serving from the store");
            (
                StatusCode::OK,
                "ready (cache unreachable: serving from the store)",
            )
                .into_response()
        }
    }
}

/// The process-wide Prometheus recorder (installed once; `None` when another
/// recorder is already installed, e.g. by a test).
fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

fn routes(config: &Config) -> Result<RouteRules, AppError> {
    let mut rules = Vec::with_capacity(config.routes.len());
    for (index, r) in config.routes.iter().enumerate() {
        let access = match r.access {
            authgate_config::RouteAccess::Public => Access::Public,
            authgate_config::RouteAccess::Protected => Access::Protected,
            authgate_config::RouteAccess::Api => Access::Api,
        };
        let mut rule = RouteRule::new(r.path.clone(), access);
        if !r.methods.is_empty() {
            let methods = r
                .methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.as_bytes()).map_err(|_| AppError::Method {
                        index,
                        method: m.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rule = rule.with_methods(methods);
        }
        rules.push(rule.with_allow(AllowList {
            emails: r.allow_emails.clone(),
            domains: r.allow_domains.clone(),
        }));
    }
    Ok(RouteRules::new(rules)?)
}

fn upstream(config: &Config) -> Result<Option<ReverseProxy>, AppError> {
    let Some(url) = &config.server.upstream else {
        return Ok(None);
    };
    let mut owned = OwnedHeaders::default();
    if config.server.pass_authorization_header {
        owned = owned.with("authorization");
    }
    let settings = ProxySettings {
        response_timeout: config.server.upstream_timeout,
        trusted_proxies: TrustedProxies::new(config.server.trusted_proxies.clone()),
        owned_headers: owned,
        ..ProxySettings::default()
    };
    Ok(Some(ReverseProxy::new(url.clone(), settings)?))
}

/// The most provider calls one request waits for: a sign-in's code exchange,
/// signing keys, userinfo and e-mail list (a refresh's deadline is two calls).
const PROVIDER_CALLS_PER_REQUEST: u32 = 4;

/// Slack for the work around the waits counted in [`drain_timeout`].
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// How long `authgate serve` lets in-flight requests finish after SIGTERM
/// or Ctrl-C before it exits anyway: the longest a request waits on others —
/// the upstream's response headers (`server.upstream_timeout`, reverse-proxy
/// mode) or the provider (`refresh.timeout` per call, four calls at most) —
/// plus five seconds. Streams that outlive it (long downloads, WebSockets)
/// are cut. A supervisor's stop timeout (Kubernetes'
/// `terminationGracePeriodSeconds`, systemd's `TimeoutStopSec`) must be at
/// least this long.
pub fn drain_timeout(config: &Config) -> Duration {
    let upstream = match config.server.upstream {
        Some(_) => config.server.upstream_timeout,
        None => Duration::ZERO,
    };
    let provider = config
        .refresh
        .timeout
        .saturating_mul(PROVIDER_CALLS_PER_REQUEST);
    upstream.max(provider).saturating_add(DRAIN_MARGIN)
}

/// The token encryption keys: `store.encryption_keys`, or derived from the
/// session secrets when none are configured.
pub fn key_ring(config: &Config) -> Result<KeyRing, authgate_store::CryptoError> {
    let secrets = config
        .store
        .encryption_keys
        .as_ref()
        .unwrap_or(&config.session.secret);
    KeyRing::from_secrets(&secrets.iter().map(|s| s.as_bytes()).collect::<Vec<_>>())
}

fn cache_options(cache: &CacheConfig) -> CacheOptions {
    CacheOptions {
        ttl: cache.ttl,
        ..CacheOptions::default()
    }
}

fn provider_settings(p: &ProviderConfig) -> Result<ProviderSettings, AppError> {
    let mut s = ProviderSettings::new(p.id.clone(), p.client_id.clone(), p.client_secret.expose());
    s.name = p.name.clone();
    s.preset = p
        .preset
        .map(|preset| {
            Preset::from_str(preset.as_str())
                .map_err(|_| AppError::Preset(preset.as_str().to_owned()))
        })
        .transpose()?;
    s.issuer = p.issuer.clone();
    s.scopes = p.scopes.clone();
    s.authorization_params = p.authorization_params.clone();
    s.endpoints = authgate_oauth::EndpointOverrides {
        authorization: p.endpoints.authorization.clone(),
        token: p.endpoints.token.clone(),
        userinfo: p.endpoints.userinfo.clone(),
        revocation: p.endpoints.revocation.clone(),
        jwks_uri: p.endpoints.jwks.clone(),
        introspection: None,
        emails: p.endpoints.emails.clone(),
    };
    s.tenant = p.tenant.clone();
    s.link_by_email = p.link_by_email;
    Ok(s)
}

/// A name for this process in lease owner ids: host name and pid.
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "authgate".to_owned());
    format!("{host}:{}", std::process::id())
}

impl App {
    /// Serves the application on `listener` until `shutdown` resolves, then
    /// drains in-flight requests.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}
