//! Process wiring: turns a validated [`Config`] into a running gateway.
//!
//! This is assembly only — which store, which cache, which providers, which
//! refresh coordination — with no decisions of its own. `serve`, `demo` and
//! the end-to-end tests all build the gateway through [`App::build`].

use crate::settings;
use authgate_config::Config;
use authgate_http::Gateway;
use authgate_oauth::{Catalog, HttpClient};
use authgate_refresh::{PollingSignal, RedisSignal, RefreshSignal};
use authgate_store::cache::{
    CacheBackend, CachedStore, RedisEndpoint, open_cache, open_revocation_set,
};
use authgate_store::{Backend, Store};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;

/// Liveness, on `server.listen`.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness (store and cache reachable), on `server.listen`.
pub const READY_PATH: &str = "/readyz";
/// Prometheus metrics, on `server.listen` or on `server.metrics_listen`.
pub const METRICS_PATH: &str = "/metrics";

/// Why the gateway could not be assembled. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The token encryption keys are unusable.
    #[error("store.encryption_keys: {0}")]
    Crypto(#[from] authgate_store::CryptoError),
    /// The store could not be opened or migrated.
    #[error("store.url: {0}")]
    Store(#[from] authgate_store::StoreError),
    /// The cache could not be opened.
    #[error("cache.url: {0}")]
    Cache(#[from] authgate_store::cache::CacheError),
    /// `cache.redis_ca_file` could not be read.
    #[error(transparent)]
    RedisCa(#[from] settings::RedisCaError),
    /// The outbound HTTP client could not be built.
    #[error("outbound HTTP client: {0}")]
    Http(#[from] authgate_oauth::HttpClientError),
    /// A provider could not be resolved (discovery failed, bad settings).
    #[error("providers: {0}")]
    Catalog(#[from] authgate_oauth::CatalogError),
    /// A route rule is invalid.
    #[error("routes: {0}")]
    Routes(#[from] authgate_http::RuleError),
    /// The gateway could not be assembled from its parts.
    #[error("{0}")]
    Gateway(#[from] authgate_http::BuildError),
    /// A route rule names a path that authgate answers itself.
    #[error(
        "routes[{index}].path: {pattern:?} names {reserved}, which authgate answers itself on server.listen (the upstream would never see it); reserved: server.base_path, /healthz, /readyz, and /metrics unless server.metrics_listen moves it"
    )]
    ReservedPath {
        /// Route position.
        index: usize,
        /// The rule's pattern.
        pattern: String,
        /// The reserved path it names.
        reserved: String,
    },
    /// A route's method is not an HTTP method.
    #[error("routes[{index}].methods: {method:?} is not an HTTP method")]
    Method {
        /// Route position.
        index: usize,
        /// The value.
        method: String,
    },
    /// One of an upstream's own routes is refused.
    #[error("upstreams[{upstream}].{source}")]
    UpstreamRoutes {
        /// Upstream position.
        upstream: usize,
        /// What is wrong with its routes.
        source: Box<AppError>,
    },
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
    /// `/metrics` has a listener of its own (`server.metrics_listen`).
    metrics_apart: bool,
}

/// Where [`App::serve`] listens: `server.listen`, and `server.metrics_listen`
/// when the configuration moves `/metrics` there.
pub struct Listeners {
    /// The gateway (`server.listen`).
    pub main: TcpListener,
    /// `/metrics` alone (`server.metrics_listen`).
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    /// Only the gateway's listener.
    fn from(main: TcpListener) -> Self {
        Listeners {
            main,
            metrics: None,
        }
    }
}

impl App {
    /// Builds the gateway for `config`: opens (and migrates) the store,
    /// the cache, resolves the providers, starts refresh coordination.
    pub async fn build(config: &Config, migrations: Migrations) -> Result<App, AppError> {
        let keys = settings::key_ring(config)?;
        let store = authgate_store::connect(config.store.url.as_str(), keys.clone()).await?;
        if store.backend() == Backend::Sqlite || migrations == Migrations::Apply {
            store.migrate().await?;
        }
        let cache_options = settings::cache_options(&config.cache)?;
        let cache = open_cache(config.cache.url.as_str(), &cache_options).await?;
        // Revoked session ids, kept as long as a session can live: every
        // revocation lands here; `revocation_check = "request"` reads it.
        let revocations = open_revocation_set(
            config.cache.url.as_str(),
            &cache_options,
            config.session.max_age,
        )?;
        let cached = Arc::new(
            CachedStore::new(Arc::clone(&store), Arc::clone(&cache), keys)
                .with_revocations(Arc::clone(&revocations)),
        );
        let http = HttpClient::new(&settings::http_settings(config))?;
        let providers = config
            .providers
            .iter()
            .map(|p| settings::provider_settings(p, config))
            .collect();
        let catalog = Catalog::resolve(providers, &http).await?;
        let signal: Arc<dyn RefreshSignal> = if config.cache.url.as_str().starts_with("redis") {
            Arc::new(RedisSignal::on(
                &RedisEndpoint::new(config.cache.url.as_str(), cache_options.redis_ca.as_deref())?,
                settings::REDIS_SIGNAL_PREFIX,
                authgate_http::DEFAULT_SIGNAL_POLL,
            )?)
        } else {
            Arc::new(PollingSignal::new(authgate_http::DEFAULT_SIGNAL_POLL))
        };
        let mut builder = Gateway::builder(settings::gateway_settings(config))
            .secrets(settings::session_secrets(config))
            .cookie_format(settings::cookie_format(config))
            .store(Arc::clone(&store), cached)
            .revocations(revocations)
            .catalog(catalog)
            .signal(signal)
            .refresh_settings(settings::refresh_settings(config))
            .breaker(settings::breaker_settings(config))
            .routes(settings::routes(config)?)
            .service_clients(settings::service_clients(config));
        if let Some(url) = &config.server.upstream {
            builder = builder.upstream(url.clone(), settings::proxy_settings(config));
        }
        for upstream in settings::host_upstreams(config)? {
            builder = builder.host_upstream(upstream);
        }
        Ok(App {
            gateway: builder.build()?,
            store,
            cache,
            metrics: prometheus(),
            metrics_apart: config.server.metrics_listen.is_some(),
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

    /// The HTTP application on `server.listen`: the gateway (`/auth/*` and
    /// the proxy), `/healthz`, `/readyz`, and `/metrics` unless it has a
    /// listener of its own ([`App::metrics_router`]).
    pub fn router(&self) -> Router {
        let store = Arc::clone(&self.store);
        let cache = Arc::clone(&self.cache);
        let mut router = Router::new()
            .route(HEALTH_PATH, get(|| async { "ok" }))
            .route(
                READY_PATH,
                get(move || {
                    let (store, cache) = (Arc::clone(&store), Arc::clone(&cache));
                    async move { readiness(&*store, &*cache).await }
                }),
            );
        if !self.metrics_apart {
            router = router.merge(self.metrics_endpoint());
        }
        router.merge(self.gateway.router())
    }

    /// `/metrics` alone, for `server.metrics_listen`; `None` when `/metrics`
    /// is served by [`App::router`].
    pub fn metrics_router(&self) -> Option<Router> {
        self.metrics_apart.then(|| self.metrics_endpoint())
    }

    fn metrics_endpoint(&self) -> Router {
        let metrics = self.metrics.clone();
        Router::new().route(
            METRICS_PATH,
            get(move || {
                let metrics = metrics.clone();
                async move {
                    match metrics {
                        Some(h) => (StatusCode::OK, h.render()).into_response(),
                        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
                    }
                }
            }),
        )
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

/// The most provider calls one request waits for: a sign-in's code exchange,
/// signing keys, userinfo and e-mail list (a refresh's deadline is two calls).
const PROVIDER_CALLS_PER_REQUEST: u32 = 4;

/// Slack for the work around the waits counted in [`drain_timeout`].
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// How long `authgate serve` lets in-flight requests finish after SIGTERM
/// or Ctrl-C before it exits anyway: the longest a request waits on others —
/// the upstream's response headers (`server.upstream_timeout`, reverse-proxy
/// mode), the provider (`refresh.timeout` per call, four calls at most) or a
/// refresh (its deadline, then up to `refresh.persist_deadline` of token writes) —
/// plus five seconds. Streams that outlive it (long downloads, WebSockets)
/// are cut. A supervisor's stop timeout (Kubernetes'
/// `terminationGracePeriodSeconds`, systemd's `TimeoutStopSec`) must be at
/// least this long.
pub fn drain_timeout(config: &Config) -> Duration {
    let upstream = if config.server.upstream.is_some() || !config.upstreams.is_empty() {
        config.server.upstream_timeout
    } else {
        Duration::ZERO
    };
    let provider = config
        .refresh
        .timeout
        .saturating_mul(PROVIDER_CALLS_PER_REQUEST);
    let refresh = config
        .refresh
        .timeout
        .saturating_mul(settings::DEADLINE_CALLS)
        .saturating_add(config.refresh.persist_deadline);
    upstream
        .max(provider)
        .max(refresh)
        .saturating_add(DRAIN_MARGIN)
}

impl App {
    /// Serves the application on `listeners` until `shutdown` resolves, then
    /// drains in-flight requests. `listeners.metrics` must be given exactly
    /// when the configuration sets `server.metrics_listen`.
    pub async fn serve(
        self,
        listeners: impl Into<Listeners>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listeners = listeners.into();
        let metrics = match (self.metrics_router(), listeners.metrics) {
            (Some(router), Some(listener)) => Some((router, listener)),
            (None, None) => None,
            (wanted, _) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    if wanted.is_some() {
                        "server.metrics_listen is set but no metrics listener was given"
                    } else {
                        "a metrics listener was given but server.metrics_listen is not set"
                    },
                ));
            }
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            // An error means the sender is gone: stop as well.
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let main = axum::serve(
            listeners.main,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(until_stopped(stopped.clone()));
        match metrics {
            Some((router, listener)) => {
                let metrics =
                    axum::serve(listener, router).with_graceful_shutdown(until_stopped(stopped));
                tokio::try_join!(main.into_future(), metrics.into_future()).map(drop)
            }
            None => main.await,
        }
    }
}
