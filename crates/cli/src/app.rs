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
use authgate_store::cache::{CacheBackend, CachedStore, open_cache};
use authgate_store::{Backend, Store};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::sync::OnceLock;

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
    /// The outbound HTTP client could not be built.
    #[error("outbound HTTP client: {0}")]
    Http(#[from] authgate_oauth::HttpClientError),
    /// A provider could not be resolved (discovery failed, bad settings).
    #[error("providers: {0}")]
    Catalog(#[from] authgate_oauth::CatalogError),
    /// Redis for refresh coordination could not be configured.
    #[error("cache.url (refresh coordination): {0}")]
    Redis(#[from] redis::RedisError),
    /// A route rule is invalid.
    #[error("routes: {0}")]
    Routes(#[from] authgate_http::RuleError),
    /// The gateway could not be assembled from its parts.
    #[error("{0}")]
    Gateway(#[from] authgate_http::BuildError),
    /// A route's method is not an HTTP method.
    #[error("routes[{index}].methods: {method:?} is not an HTTP method")]
    Method {
        /// Route position.
        index: usize,
        /// The value.
        method: String,
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
        let cache = open_cache(
            config.cache.url.as_str(),
            &settings::cache_options(&config.cache),
        )
        .await?;
        let cached: Arc<dyn Store> = Arc::new(CachedStore::new(
            Arc::clone(&store),
            Arc::clone(&cache),
            keys,
        ));
        let http = HttpClient::new(&settings::http_settings(config))?;
        let providers = config
            .providers
            .iter()
            .map(settings::provider_settings)
            .collect();
        let catalog = Catalog::resolve(providers, &http).await?;
        let signal: Arc<dyn RefreshSignal> = if config.cache.url.as_str().starts_with("redis") {
            Arc::new(RedisSignal::open(
                config.cache.url.as_str(),
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
            .catalog(catalog)
            .signal(signal)
            .refresh_settings(settings::refresh_settings(config))
            .breaker(settings::breaker_settings(config))
            .routes(settings::routes(config)?)
            .service_clients(settings::service_clients(config));
        if let Some(url) = &config.server.upstream {
            builder = builder.upstream(url.clone(), settings::proxy_settings(config));
        }
        Ok(App {
            gateway: builder.build()?,
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
