//! Shared support for the refresh service's integration tests: the oidc-provider peer, signed-in
//! accounts in a real store, per-test PostgreSQL schemas, services wired like the gateway wires
//! them, and a storm runner that records every outcome and its latency.
#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use async_trait::async_trait;
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::{ExpiryPolicy, TokenSet};
use authgate_oauth::TokenTypeHint;
use authgate_oauth::{Catalog, HttpClient, HttpSettings, ProviderSettings};
use authgate_refresh::{
    BreakerSettings, CatalogRefresher, Clock, Outcome, PollingSignal, RefreshDeps, RefreshService,
    RefreshSettings, RefreshSignal, RetryPolicy, Revocation, SystemClock, TokenRefresher,
};
use authgate_store::cache::NoTokenCache;
use authgate_store::{AccountId, KeyRing, NewAccount, NewUser, Store};
use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, TokenResponse, random_token};
use futures_util::StreamExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

pub const CLIENT: &str = "gateway";
pub const CLIENT_SECRET: &str = "gateway-secret-0123456789";
pub const REDIRECT: &str = "http://127.0.0.1:9/auth/callback/op";
/// The provider id the accounts are linked under.
pub const PROVIDER: &str = "op";
const STORE_SECRET: &str = "refresh-tests-secret-at-least-32-bytes!!";

pub fn keys() -> KeyRing {
    KeyRing::from_secrets(&[STORE_SECRET]).unwrap()
}

pub fn now() -> UnixTime {
    SystemClock.now()
}

/// The peer with strict rotation and 5-minute access tokens (fresh after one refresh).
pub async fn start_peer() -> OidcProviderPeer {
    OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(CLIENT, CLIENT_SECRET, REDIRECT)],
        access_token_ttl_secs: 300,
        ..PeerOptions::default()
    })
    .await
}

/// Short settings so that every test stays fast: 2 s leases (renewed every ~0.67 s), 10 s
/// deadline, 3 provider attempts with 20–200 ms backoff, token writes retried for 10 s.
pub fn settings() -> RefreshSettings {
    RefreshSettings {
        policy: ExpiryPolicy {
            skew: Duration::from_secs(5),
        },
        lease_ttl: Duration::from_secs(2),
        // Generous: storms on a loaded 2-core machine (the provider, three
        // instances and PostgreSQL share it) must not fail calls by time.
        deadline: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
        persist_deadline: Duration::from_secs(10),
    }
}

/// A breaker that never opens during a test that is not about it.
pub fn lenient_breaker() -> BreakerSettings {
    BreakerSettings {
        failure_threshold: 1000,
        open_for: Duration::from_secs(1),
    }
}

pub fn http_client(timeout: Duration) -> HttpClient {
    HttpClient::new(&HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout,
        ..HttpSettings::default()
    })
    .unwrap()
}

/// Settings for the generic OIDC provider `id` at `issuer`, optionally with its token endpoint
/// overridden (to a fault proxy).
pub fn provider_settings(id: &str, issuer: Url, token: Option<Url>) -> ProviderSettings {
    let mut s = ProviderSettings::new(id, CLIENT, CLIENT_SECRET);
    s.issuer = Some(issuer);
    s.endpoints.token = token;
    s
}

/// The real refresher over a catalog resolved against the peer (discovery included).
pub async fn catalog_refresher(
    settings: Vec<ProviderSettings>,
    http: &HttpClient,
) -> Arc<dyn TokenRefresher> {
    let catalog = Catalog::resolve(settings, http).await.unwrap();
    Arc::new(CatalogRefresher::new(catalog))
}

/// Times every provider call (the provider's own refresh latency, seen from our client).
pub struct TimedRefresher {
    inner: Arc<dyn TokenRefresher>,
    durations: Mutex<Vec<Duration>>,
}

impl TimedRefresher {
    pub fn new(inner: Arc<dyn TokenRefresher>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            durations: Mutex::new(Vec::new()),
        })
    }

    /// Takes the recorded durations.
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.durations.lock().unwrap())
    }
}

#[async_trait]
impl TokenRefresher for TimedRefresher {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        let started = Instant::now();
        let r = self.inner.refresh(provider, refresh_token, now).await;
        self.durations.lock().unwrap().push(started.elapsed());
        r
    }

    async fn revoke(
        &self,
        provider: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<Revocation, ProviderError> {
        self.inner.revoke(provider, token, hint).await
    }
}

/// The system clock moved by a fixed offset: an instance whose clock is off.
#[derive(Debug)]
pub struct OffsetClock(pub Duration);

impl Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        SystemClock.now().saturating_add(self.0)
    }
}

pub fn service(
    store: Arc<dyn Store>,
    refresher: Arc<dyn TokenRefresher>,
    signal: Arc<dyn RefreshSignal>,
    settings: RefreshSettings,
    breaker: BreakerSettings,
    instance: &str,
) -> RefreshService {
    service_with_clock(
        store,
        refresher,
        signal,
        settings,
        breaker,
        instance,
        Arc::new(SystemClock),
    )
}

/// [`service`] with the instance's wall clock given.
pub fn service_with_clock(
    store: Arc<dyn Store>,
    refresher: Arc<dyn TokenRefresher>,
    signal: Arc<dyn RefreshSignal>,
    settings: RefreshSettings,
    breaker: BreakerSettings,
    instance: &str,
    clock: Arc<dyn Clock>,
) -> RefreshService {
    RefreshService::new(
        RefreshDeps {
            store,
            token_cache: Arc::new(NoTokenCache),
            refresher,
            signal,
            clock,
        },
        settings,
        breaker,
        instance,
    )
}

pub fn polling() -> Arc<dyn RefreshSignal> {
    Arc::new(PollingSignal::new(Duration::from_millis(50)))
}

/// A migrated SQLite store in a temporary directory.
pub async fn sqlite_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("authgate.db").display());
    let store = authgate_store::connect(&url, keys()).await.unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

/// A random PostgreSQL schema for one test, dropped on drop. Every [`PgSchema::store`] is its
/// own pool (as separate gateway processes have), opened with `authgate_store::connect`.
pub struct PgSchema {
    base_url: String,
    schema: String,
}

impl PgSchema {
    /// `None` (after a note) when `AUTHGATE_TEST_POSTGRES_URL` is unset; a panic instead with
    /// `AUTHGATE_REQUIRE_SERVICES=1`.
    pub async fn create() -> Option<Self> {
        let base_url = authgate_testkit::require_url("AUTHGATE_TEST_POSTGRES_URL")?;
        let schema =
            format!("authgate_refresh_{}", random_token(9).to_ascii_lowercase()).replace('-', "_");
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base_url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Some(Self { base_url, schema })
    }

    /// The base URL with `search_path` set to this schema.
    pub fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options%5Bsearch_path%5D={}",
            self.base_url, self.schema
        )
    }

    /// A new pool on this schema (migrations applied by the first caller).
    pub async fn store(&self) -> Arc<dyn Store> {
        Self::store_at(&self.url()).await
    }

    /// A new pool at `url` (this schema's URL, perhaps through a proxy or with more options).
    pub async fn store_at(url: &str) -> Arc<dyn Store> {
        let store = authgate_store::connect(url, keys()).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base_url, schema) = (self.base_url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&base_url)
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A random Redis key prefix for one test.
pub fn redis_prefix() -> String {
    format!("authgate-test:{}:", random_token(9))
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub account: AccountId,
    /// The login at the peer (its `sub`).
    pub login: String,
}

/// The token set a sign-in stores, with the access token already stale.
pub fn stale_token_set(r: &TokenResponse) -> TokenSet {
    TokenSet {
        access_token: Secret::new(r.access_token.clone()),
        refresh_token: r.refresh_token.clone().map(Secret::new),
        expires_at: Some(now().saturating_sub(Duration::from_secs(60))),
        token_type: Some(r.token_type.clone()),
        scope: r.scope.clone(),
        id_token: r.id_token.clone().map(Secret::new),
    }
}

/// Signs `n` users in at the peer (a few at a time) and links their tokens into `store`, with
/// the access tokens already stale.
pub async fn seed_accounts(
    peer: &OidcProviderPeer,
    store: &Arc<dyn Store>,
    n: usize,
) -> Vec<Seeded> {
    let run = random_token(6).to_ascii_lowercase();
    let mut seeded: Vec<(usize, Seeded)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let login = format!("u{i}-{run}");
            let store = Arc::clone(store);
            async move {
                let tokens = peer.obtain_tokens(CLIENT, &login).await;
                assert!(tokens.refresh_token.is_some(), "no refresh token issued");
                let user = store
                    .create_user(NewUser {
                        name: Some(login.clone()),
                        email: Some(format!("{login}@example.test")),
                        email_verified: None,
                        image: None,
                    })
                    .await
                    .unwrap();
                let account = store
                    .link_account(NewAccount {
                        user_id: user.id,
                        kind: "oidc".into(),
                        provider: PROVIDER.into(),
                        provider_account_id: login.clone(),
                        tokens: stale_token_set(&tokens),
                        session_state: None,
                    })
                    .await
                    .unwrap();
                (
                    i,
                    Seeded {
                        account: account.id,
                        login,
                    },
                )
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    seeded.sort_by_key(|(i, _)| *i);
    seeded.into_iter().map(|(_, s)| s).collect()
}

/// Writes `expires_at` in the past for each account (compare-and-swap, like any token write).
pub async fn make_stale(store: &Arc<dyn Store>, accounts: &[Seeded]) {
    for s in accounts {
        let v = store.read_tokens(&s.account).await.unwrap().unwrap();
        let mut tokens = v.tokens.expect("live tokens");
        tokens.expires_at = Some(now().saturating_sub(Duration::from_secs(60)));
        let r = store
            .replace_tokens(&s.account, v.version, &tokens, None)
            .await
            .unwrap();
        assert!(r.is_replaced(), "{r:?}");
    }
}

/// One call's result in a storm.
#[derive(Debug, Clone)]
pub struct Call {
    pub account: usize,
    pub instance: usize,
    pub outcome: Outcome,
    pub latency: Duration,
}

/// `per_account` concurrent `refresh()` calls for every account, spread round-robin over
/// `services`, all started at once.
pub async fn storm(
    services: &[RefreshService],
    accounts: &[Seeded],
    per_account: usize,
) -> (Vec<Call>, Duration) {
    storm_with(services, accounts, per_account, |_| Duration::ZERO).await
}

/// Like [`storm`], but call `k` (0-based, in spawn order) starts after `start_at(k)`.
pub async fn storm_with(
    services: &[RefreshService],
    accounts: &[Seeded],
    per_account: usize,
    start_at: impl Fn(usize) -> Duration,
) -> (Vec<Call>, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(accounts.len() * per_account);
    let mut k = 0;
    for j in 0..per_account {
        for (i, s) in accounts.iter().enumerate() {
            let instance = (i + j) % services.len();
            let svc = services[instance].clone();
            let account = s.account.clone();
            let delay = start_at(k);
            k += 1;
            tasks.push(tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let t = Instant::now();
                let outcome = svc.refresh(&account, PROVIDER).await;
                Call {
                    account: i,
                    instance,
                    outcome,
                    latency: t.elapsed(),
                }
            }));
        }
    }
    let mut calls = Vec::with_capacity(tasks.len());
    for t in tasks {
        calls.push(t.await.unwrap());
    }
    (calls, started.elapsed())
}

/// The access token an outcome hands out, if it hands one out.
pub fn access_token(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => {
            Some(tokens.access_token.expose())
        }
        _ => None,
    }
}

/// Every call got fresh tokens, every caller of one account got the same access token, and it is
/// the one in the store. Returns each account's access token.
pub async fn assert_every_call_fresh(
    calls: &[Call],
    accounts: &[Seeded],
    store: &Arc<dyn Store>,
) -> Vec<String> {
    let mut by_account: HashMap<usize, String> = HashMap::new();
    let mut bad = Vec::new();
    for c in calls {
        match access_token(&c.outcome) {
            Some(at) => {
                let first = by_account.entry(c.account).or_insert_with(|| at.to_owned());
                assert_eq!(
                    first, at,
                    "account {} got two different access tokens",
                    c.account
                );
            }
            None => bad.push((c.account, c.instance, c.outcome.clone())),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} calls did not end fresh: {:?}",
        bad.len(),
        calls.len(),
        &bad[..bad.len().min(10)]
    );
    let mut tokens = Vec::with_capacity(accounts.len());
    for (i, s) in accounts.iter().enumerate() {
        let v = store.read_tokens(&s.account).await.unwrap().unwrap();
        let stored = v.tokens.expect("tokens kept");
        assert_eq!(
            Some(stored.access_token.expose()),
            by_account.get(&i).map(String::as_str),
            "account {i}: callers got another access token than the store holds"
        );
        assert!(v.revoked_at.is_none());
        tokens.push(stored.access_token.expose().to_owned());
    }
    tokens
}

/// Counts outcomes by label.
pub fn tally(calls: &[Call]) -> HashMap<&'static str, usize> {
    let mut t = HashMap::new();
    for c in calls {
        let label = match c.outcome {
            Outcome::Refreshed { .. } => "refreshed",
            Outcome::AlreadyFresh { .. } => "already_fresh",
            Outcome::Revoked => "revoked",
            Outcome::NoRefreshToken => "no_refresh_token",
            Outcome::AccountMissing => "account_missing",
            Outcome::Unavailable { .. } => "unavailable",
            Outcome::ProviderRejected(_) => "rejected",
        };
        *t.entry(label).or_insert(0) += 1;
    }
    t
}

/// The `q`-quantile (0..=1) of `samples` (nearest rank).
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut s = samples.to_vec();
    s.sort();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits until `ok()` holds, at most `within`; whether it did.
pub async fn eventually(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
