//! [`GatewayBuilder`]: the one way a [`Gateway`] is assembled — by the
//! binary (`authgate serve`, `demo`), by the tower layer's users and by tests.
//!
//! What used to be passed twice is derived here once:
//! - the **clock** reaches both the gateway and the refresh service;
//! - the **skew** ([`GatewaySettings::policy`]) is the refresh service's
//!   staleness policy too;
//! - the **trusted proxies** ([`GatewaySettings::trusted_proxies`]) are the
//!   reverse proxy's too, and `pass_authorization_header` makes
//!   `Authorization` a header the gateway owns upstream;
//! - the **refresh service** is built from the store, the catalog and the
//!   signal, with the providers' refresh grant ([`CatalogRefresher`]).
//!
//! `build` also starts the background work the settings ask for: the
//! background refresher (refresh mode `background`) and the expired-session
//! sweep (session records of both strategies). Both stop when the gateway is
//! dropped, and both need a Tokio runtime: build inside one.

use crate::adopt::Adoption;
use crate::cookies::{CookiePolicy, OwnCookies};
use crate::service_client::{ServiceClient, ServiceClientError, ServiceClients};
use crate::settings::{GatewaySettings, RefreshMode, RevocationCheck, SessionStrategy};
use crate::state::{Gateway, Inner};
use authgate_core::cookie::{CheckCodec, CookieFormat, KeyError, SessionCodec};
use authgate_core::refresh::RefreshSettings;
use authgate_core::secret::Secret;
use authgate_core::time::{Clock, SystemClock};
use authgate_oauth::{Catalog, CatalogError};
use authgate_proxy::{ProxyError, ProxySettings, ReverseProxy, RouteRules, RuleError};
use authgate_refresh::{
    ActiveAccounts, BreakerSettings, CatalogRefresher, PollingSignal, RefreshDeps, RefreshService,
    RefreshSignal, TokenRefresher,
};
use authgate_store::Store;
use authgate_store::cache::{NoTokenCache, RevocationSet, TokenCache};
use authgate_store::sweep::{SESSION_SWEEP_INTERVAL, spawn_session_sweep};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How often waiters poll the store for another instance's refresh result
/// when no faster signal (Redis) is configured.
pub const DEFAULT_SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The session secrets are unusable (none, or shorter than 32 bytes).
    #[error("session.secret: {0}")]
    Keys(#[from] KeyError),
    /// No store was given ([`GatewayBuilder::store`]).
    #[error("a store is required")]
    NoStore,
    /// The provider catalog could not be built.
    #[error("providers: {0}")]
    Catalog(#[from] CatalogError),
    /// The route rules are invalid.
    #[error("routes: {0}")]
    Routes(#[from] RuleError),
    /// The upstream URL is unusable.
    #[error("upstream: {0}")]
    Upstream(#[from] ProxyError),
    /// Both one upstream for every host and upstreams chosen by host.
    #[error("set either one upstream for every host or upstreams chosen by host, not both")]
    Upstreams,
    /// The service clients are invalid (a duplicate or malformed id).
    #[error("service_clients: {0}")]
    ServiceClients(#[from] ServiceClientError),
    /// `revocation_check = Request` without a revocation set
    /// ([`GatewayBuilder::revocations`]).
    #[error("session.revocation_check = \"request\" needs a revocation set (the cache)")]
    NoRevocationSet,
    /// `adopt_guide_cookies` names no configured provider, or the session
    /// strategy is not `jwt`.
    #[error("session.adopt_guide_cookies: {0}")]
    AdoptGuideCookies(String),
    /// The gateway was built outside a Tokio runtime (its session sweep and
    /// background refresh run on it).
    #[error("the gateway's background tasks need a Tokio runtime")]
    NoRuntime,
}

/// The store as the gateway uses it: the source of truth, the store its
/// requests go through, and the token cache the refresh service keeps in line.
struct StoreParts {
    source_of_truth: Arc<dyn Store>,
    served: Arc<dyn Store>,
    token_cache: Arc<dyn TokenCache>,
}

/// Assembles a [`Gateway`]; start with [`Gateway::builder`].
#[must_use = "call build() to get the gateway"]
pub struct GatewayBuilder {
    settings: GatewaySettings,
    secrets: Vec<Secret>,
    cookie_format: CookieFormat,
    store: Option<StoreParts>,
    catalog: Option<Catalog>,
    clock: Arc<dyn Clock>,
    refresh: RefreshSettings,
    breaker: BreakerSettings,
    signal: Option<Arc<dyn RefreshSignal>>,
    refresher: Option<Arc<dyn TokenRefresher>>,
    instance: String,
    routes: Option<RouteRules>,
    upstream: Option<(Url, ProxySettings)>,
    host_upstreams: Vec<crate::hosts::HostUpstream>,
    service_clients: Vec<ServiceClient>,
    revocations: Option<Arc<dyn RevocationSet>>,
}

impl Gateway {
    /// A builder for a gateway with `settings`. Required: the session
    /// secrets and a store; everything else has a default (no providers, no
    /// route rules, no upstream, the system clock, polling hand-off).
    pub fn builder(settings: GatewaySettings) -> GatewayBuilder {
        GatewayBuilder {
            settings,
            secrets: Vec::new(),
            cookie_format: CookieFormat::AuthJs,
            store: None,
            catalog: None,
            clock: Arc::new(SystemClock),
            refresh: RefreshSettings::default(),
            breaker: BreakerSettings::default(),
            signal: None,
            refresher: None,
            instance: default_instance(),
            routes: None,
            upstream: None,
            host_upstreams: Vec::new(),
            service_clients: Vec::new(),
            revocations: None,
        }
    }
}

impl GatewayBuilder {
    /// Session secrets: the first encrypts and signs, all decrypt and verify.
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets = secrets.into_iter().collect();
        self
    }

    /// The cookie format (default: Auth.js v5).
    pub fn cookie_format(mut self, format: CookieFormat) -> Self {
        self.cookie_format = format;
        self
    }

    /// The store: `source_of_truth` is read and written (never through a
    /// cache) by the refresh service's decisions; `cached` — a caching
    /// decorator over it such as `authgate_store::cache::CachedStore` —
    /// serves everything else, and is told about every token write.
    pub fn store<C>(mut self, source_of_truth: Arc<dyn Store>, cached: Arc<C>) -> Self
    where
        C: Store + TokenCache + 'static,
    {
        self.store = Some(StoreParts {
            source_of_truth,
            served: Arc::clone(&cached) as Arc<dyn Store>,
            token_cache: cached,
        });
        self
    }

    /// The store without a cache in front of it: every read goes to it.
    pub fn uncached_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(StoreParts {
            source_of_truth: Arc::clone(&store),
            served: store,
            token_cache: Arc::new(NoTokenCache),
        });
        self
    }

    /// The identity providers (default: none).
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// The wall clock (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refresh tunables: lease, deadline, retries. Their staleness policy is
    /// replaced by the settings' ([`GatewaySettings::policy`]).
    pub fn refresh_settings(mut self, refresh: RefreshSettings) -> Self {
        self.refresh = refresh;
        self
    }

    /// The per-provider circuit breaker.
    pub fn breaker(mut self, breaker: BreakerSettings) -> Self {
        self.breaker = breaker;
        self
    }

    /// The cross-instance hand-off (default: polling every
    /// [`DEFAULT_SIGNAL_POLL`]; Redis with `RedisSignal`).
    pub fn signal(mut self, signal: Arc<dyn RefreshSignal>) -> Self {
        self.signal = Some(signal);
        self
    }

    /// Who runs the refresh grant (default: the catalog's providers).
    pub fn refresher(mut self, refresher: Arc<dyn TokenRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    /// This process's name in refresh lease owner ids (default: host name
    /// and process id).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = instance.into();
        self
    }

    /// Route rules, each with its allow-list, for the reverse proxy and
    /// forward-auth (default: none, so every path is `protected`).
    pub fn routes(mut self, routes: RouteRules) -> Self {
        self.routes = Some(routes);
        self
    }

    /// The upstream to proxy to. `proxy`'s trusted proxies and owned headers
    /// are completed from the gateway settings.
    pub fn upstream(mut self, url: Url, proxy: ProxySettings) -> Self {
        self.upstream = Some((url, proxy));
        self
    }

    /// One more application, chosen by the request's host (and path
    /// prefix) instead of the one [`upstream`](Self::upstream): not both.
    pub fn host_upstream(mut self, upstream: crate::hosts::HostUpstream) -> Self {
        self.host_upstreams.push(upstream);
        self
    }

    /// The set of revoked session ids that
    /// [`RevocationCheck::Request`](crate::RevocationCheck::Request) looks
    /// every JWT session up in. Give the same set to the store's cache
    /// (`CachedStore::with_revocations`) so the sessions it revokes land in it.
    pub fn revocations(mut self, revocations: Arc<dyn RevocationSet>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The servers and jobs that may call `POST {base}/token` (default:
    /// none, so every call is refused with 401).
    pub fn service_clients(mut self, clients: impl IntoIterator<Item = ServiceClient>) -> Self {
        self.service_clients = clients.into_iter().collect();
        self
    }

    /// Builds the gateway and starts the background work its settings ask
    /// for (see the module docs).
    pub fn build(self) -> Result<Gateway, BuildError> {
        let settings = self.settings;
        let StoreParts {
            source_of_truth,
            served: store,
            token_cache,
        } = self.store.ok_or(BuildError::NoStore)?;
        let catalog = match self.catalog {
            Some(catalog) => catalog,
            None => Catalog::from_providers(Vec::new())?,
        };
        let secure = settings.secure_cookies;
        let session_codec = SessionCodec::new(self.cookie_format, &self.secrets, secure)?;
        let checks = CheckCodec::new(&self.secrets, secure)?;
        let refresh = RefreshService::new(
            RefreshDeps {
                store: source_of_truth,
                token_cache,
                refresher: self
                    .refresher
                    .unwrap_or_else(|| Arc::new(CatalogRefresher::new(catalog.clone()))),
                signal: self
                    .signal
                    .unwrap_or_else(|| Arc::new(PollingSignal::new(DEFAULT_SIGNAL_POLL))),
                clock: Arc::clone(&self.clock),
            },
            RefreshSettings {
                policy: settings.policy,
                ..self.refresh
            },
            self.breaker,
            self.instance,
        );
        let upstream = match self.upstream {
            Some((url, mut proxy)) => {
                proxy.trusted_proxies = settings.trusted_proxies.clone();
                if settings.pass_authorization_header {
                    proxy.owned_headers = proxy.owned_headers.with("authorization");
                }
                Some(ReverseProxy::new(url, proxy)?)
            }
            None => None,
        };
        let hosts = crate::hosts::HostTable::new(
            self.host_upstreams,
            &settings.trusted_proxies,
            settings.pass_authorization_header,
        )?;
        if upstream.is_some() && !hosts.is_empty() {
            return Err(BuildError::Upstreams);
        }
        let redirect_hosts: Vec<String> = settings
            .redirect_hosts
            .iter()
            .map(String::as_str)
            .chain(hosts.authorities())
            .map(str::to_owned)
            .collect();
        let routes = match self.routes {
            Some(routes) => routes,
            None => RouteRules::new(Vec::new())?,
        };
        let service_clients = ServiceClients::new(self.service_clients)?;
        if settings.revocation_check == RevocationCheck::Request && self.revocations.is_none() {
            return Err(BuildError::NoRevocationSet);
        }
        let adoption = match &settings.adopt_guide_cookies {
            None => None,
            Some(_) if settings.strategy != SessionStrategy::Jwt => {
                return Err(BuildError::AdoptGuideCookies(
                    "guide cookies are JWT sessions: needs strategy \"jwt\"".to_owned(),
                ));
            }
            Some(provider) if catalog.get(provider).is_none() => {
                return Err(BuildError::AdoptGuideCookies(format!(
                    "no provider {provider:?} is configured"
                )));
            }
            Some(provider) => Some(Adoption::new(
                provider.clone(),
                self.secrets
                    .first()
                    .map(Secret::as_bytes)
                    .unwrap_or_default(),
            )),
        };
        let background = settings.refresh_mode == RefreshMode::Background;
        // Both strategies keep session records; expired ones are swept.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::NoRuntime);
        }
        let rules_use_attributes = routes.rules().any(|r| {
            !r.allow.groups.is_empty() || !r.allow.roles.is_empty() || !r.allow.claims.is_empty()
        });
        let gateway = Gateway {
            inner: Arc::new(Inner {
                cookies: CookiePolicy {
                    secure,
                    domain: settings.cookie_domain.clone(),
                },
                redirect: crate::redirect::RedirectOrigins::new(
                    &settings.public_url,
                    &redirect_hosts,
                ),
                hosts,
                own_cookies: OwnCookies::new(self.cookie_format),
                public_origin: crate::forward::PublicOrigin::of(&settings.public_url),
                request_metrics: Default::default(),
                settings,
                secrets: self.secrets,
                session_codec,
                checks,
                store,
                catalog,
                refresh,
                clock: self.clock,
                users: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(300))
                    .build(),
                account_providers: moka::sync::Cache::new(100_000),
                active: Arc::new(ActiveAccounts::default()),
                rule_claims: rule_claims(&routes),
                rules_use_attributes,
                routes,
                upstream,
                service_clients,
                revocations: self.revocations,
                seen_logout_tokens: crate::backchannel::SeenLogoutTokens::default(),
                adoption,
            }),
        };
        let inner = &gateway.inner;
        if background {
            authgate_refresh::spawn_background_refresh(
                inner.refresh.clone(),
                &inner.active,
                Arc::clone(&inner.clock),
            );
        }
        spawn_session_sweep(
            &inner.store,
            Arc::clone(&inner.clock),
            SESSION_SWEEP_INTERVAL,
        );
        Ok(gateway)
    }
}

/// A name for this process in lease owner ids: host name and pid.
fn default_instance() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "authgate".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The claim paths the route rules name, each once (a path the rules could
/// not name is never kept).
fn rule_claims(routes: &RouteRules) -> Vec<authgate_core::attributes::ClaimPath> {
    let mut paths: Vec<authgate_core::attributes::ClaimPath> = routes
        .rules()
        .flat_map(|r| &r.allow.claims)
        .filter_map(|c| authgate_core::attributes::ClaimPath::parse(&c.claim).ok())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
