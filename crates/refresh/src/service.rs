//! The refresh service and the driver that executes the pure machine's commands.

use crate::metrics::{
    CIRCUIT_STATE, COALESCED, LEASE_RENEWALS, LOCK_WAIT, PROVIDER_CALLS, REFRESH_DURATION,
    REFRESH_TOTAL,
};
use crate::signal::{RefreshSignal, SignalWaiter};
use async_trait::async_trait;
use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use authgate_core::refresh::{
    CircuitBreaker, Command, Event, Outcome, RefreshMachine, RefreshSettings, TokenSnapshot,
    WriteResult, lease_renewal_interval,
};
use authgate_core::secret::Secret;
use authgate_core::time::{Clock, UnixTime};
use authgate_core::token::TokenSet;
use authgate_store::{AccountId, ReplaceOutcome, Store, StoreError, VersionedTokens};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs a provider's refresh grant. Implemented over the OAuth client by the
/// gateway; tests may implement it over any real provider.
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Presents `refresh_token` to `provider`'s token endpoint. `Ok` carries
    /// the provider's answer as is (no refresh token when it sent none).
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError>;
}

/// What the refresh service talks to.
#[derive(Clone)]
pub struct RefreshDeps {
    /// Where decisions read from: the store itself, never a cache.
    pub source_of_truth: Arc<dyn Store>,
    /// Where tokens and leases are written: the store, or a caching
    /// decorator over it that replaces its entries on write.
    pub writer: Arc<dyn Store>,
    /// The provider side.
    pub refresher: Arc<dyn TokenRefresher>,
    /// Cross-instance hand-off.
    pub signal: Arc<dyn RefreshSignal>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
}

/// Circuit breaker tunables, per provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive transient failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before one probe.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

type Flight = Shared<BoxFuture<'static, Outcome>>;

/// The shortest lease: lease times are whole seconds of the instances' wall
/// clocks, so a shorter one could lapse as soon as it is claimed.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(3);

/// Removes a finished (or panicked) flight from the map.
struct FlightGuard {
    inner: Arc<Inner>,
    account: String,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.account);
    }
}

/// Refreshes accounts' tokens: one flight per account in this process, one
/// lease per account across all processes. Cheap to clone.
#[derive(Clone)]
pub struct RefreshService {
    inner: Arc<Inner>,
}

struct Inner {
    deps: RefreshDeps,
    settings: RefreshSettings,
    breaker: BreakerSettings,
    instance: String,
    flights: Mutex<HashMap<String, Flight>>,
    breakers: Mutex<HashMap<String, CircuitBreaker>>,
}

impl std::fmt::Debug for RefreshService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshService")
            .field("instance", &self.inner.instance)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl RefreshService {
    /// A service for one process. `instance` names this process in lease
    /// owner ids (a random suffix is added per flight). Leases are kept in
    /// whole seconds, so `lease_ttl` is raised to at least
    /// [`MIN_LEASE_TTL`].
    pub fn new(
        deps: RefreshDeps,
        mut settings: RefreshSettings,
        breaker: BreakerSettings,
        instance: impl Into<String>,
    ) -> Self {
        settings.lease_ttl = settings.lease_ttl.max(MIN_LEASE_TTL);
        Self {
            inner: Arc::new(Inner {
                deps,
                settings,
                breaker,
                instance: instance.into(),
                flights: Mutex::new(HashMap::new()),
                breakers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RefreshSettings {
        &self.inner.settings
    }

    /// Makes `account`'s tokens fresh (refreshing them if the store's copy is
    /// stale) and returns the outcome. Concurrent calls for one account share
    /// one flight; the flight runs in its own task and completes even if every
    /// caller goes away.
    pub async fn refresh(&self, account: &AccountId, provider: &str) -> Outcome {
        self.fly(account, provider, self.inner.settings).await
    }

    /// Like [`Self::refresh`], but treats tokens as stale `lead` earlier than
    /// the policy does: background refresh renews active sessions' tokens
    /// before any request finds them stale.
    pub async fn refresh_ahead(
        &self,
        account: &AccountId,
        provider: &str,
        lead: Duration,
    ) -> Outcome {
        let mut settings = self.inner.settings;
        settings.policy.skew = settings.policy.skew.saturating_add(lead);
        self.fly(account, provider, settings).await
    }

    /// The account's tokens as the gateway reads them (through the cache in
    /// front of the store), stale or not; `None` when the grant ended
    /// (revoked, cleared, or no such account). With [`Self::refresh`], this
    /// is how the HTTP edge gets tokens: it never reads the store itself.
    pub async fn current_tokens(
        &self,
        account: &AccountId,
    ) -> Result<Option<TokenSet>, StoreError> {
        let stored = self.inner.deps.writer.read_tokens(account).await?;
        Ok(stored
            .filter(|v| v.revoked_at.is_none())
            .and_then(|v| v.tokens))
    }

    async fn fly(&self, account: &AccountId, provider: &str, settings: RefreshSettings) -> Outcome {
        let flight = {
            let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(account.as_str()) {
                Some(flight) => {
                    metrics::counter!(COALESCED, "provider" => provider.to_owned()).increment(1);
                    flight.clone()
                }
                None => {
                    let inner = Arc::clone(&self.inner);
                    let (acc, prov) = (account.clone(), provider.to_owned());
                    let task = tokio::spawn(async move {
                        // Removes the flight even if `run` panics, so one bad
                        // flight cannot block the account for good.
                        let _landed = FlightGuard {
                            inner: Arc::clone(&inner),
                            account: acc.as_str().to_owned(),
                        };
                        inner.run(&acc, &prov, settings).await
                    });
                    let flight: Flight = async move {
                        task.await.unwrap_or(Outcome::Unavailable {
                            retry_after: Duration::from_secs(1),
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(account.as_str().to_owned(), flight.clone());
                    flight
                }
            }
        };
        flight.await
    }
}

fn snapshot(v: VersionedTokens) -> TokenSnapshot {
    TokenSnapshot {
        revoked: v.revoked_at.is_some(),
        tokens: v.tokens,
        version: v.version,
    }
}

fn write_result(r: Result<ReplaceOutcome, StoreError>) -> WriteResult {
    match r {
        Ok(ReplaceOutcome::Replaced { new_version }) => WriteResult::Replaced(new_version),
        Ok(ReplaceOutcome::LostRace { .. }) => WriteResult::LostRace,
        Err(error) => {
            tracing::warn!(%error, "token write failed during refresh");
            WriteResult::Failed
        }
    }
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Refreshed { .. } => "refreshed",
        Outcome::AlreadyFresh { .. } => "already_fresh",
        Outcome::Revoked => "revoked",
        Outcome::NoRefreshToken => "no_refresh_token",
        Outcome::AccountMissing => "account_missing",
        Outcome::Unavailable { .. } => "unavailable",
        Outcome::ProviderRejected(_) => "rejected",
    }
}

/// What this flight holds right now, so that finishing can let go of it.
#[derive(Default)]
struct Held {
    lease: bool,
    fast_lock: bool,
}

impl Inner {
    async fn run(&self, account: &AccountId, provider: &str, settings: RefreshSettings) -> Outcome {
        let started = Instant::now();
        let owner = format!("{}:{}", self.instance, uuid_suffix());
        let mut machine = RefreshMachine::new(settings);
        let mut held = Held::default();
        let mut waiter: Option<SignalWaiter> = None;
        let mut persist_failures: u32 = 0;
        let mut event = Event::Start;
        let outcome = loop {
            let now = self.deps.clock.now();
            let command = machine.step(event, now, started.elapsed());
            event = match command {
                Command::ReadTokens => match self.deps.source_of_truth.read_tokens(account).await {
                    Ok(v) => Event::TokensRead(v.map(snapshot)),
                    Err(error) => {
                        tracing::warn!(%error, account = account.as_str(), "token read failed during refresh");
                        Event::StoreFailed
                    }
                },
                Command::ClaimLease { until } => {
                    waiter = Some(self.deps.signal.subscribe(account));
                    self.claim(account, &owner, now, until, &mut held).await
                }
                Command::WaitForHolder { max_wait } => {
                    let wait_started = Instant::now();
                    match waiter.take() {
                        Some(w) => w.wait(max_wait).await,
                        None => self.deps.signal.subscribe(account).wait(max_wait).await,
                    }
                    metrics::histogram!(LOCK_WAIT).record(wait_started.elapsed().as_secs_f64());
                    Event::HolderWaitOver
                }
                Command::CallProvider { refresh_token } => {
                    // Confirm the lease at the store right before presenting the
                    // refresh token: after a store outage it may have lapsed.
                    if self.renew_once(account, &owner, settings.lease_ttl).await {
                        self.renewing(
                            account,
                            &owner,
                            settings.lease_ttl,
                            self.call_provider(provider, &refresh_token, started, settings),
                        )
                        .await
                    } else {
                        Event::StoreFailed
                    }
                }
                Command::Sleep { duration } => {
                    self.renewing(account, &owner, settings.lease_ttl, async {
                        tokio::time::sleep(duration).await;
                        Event::Slept
                    })
                    .await
                }
                Command::Persist {
                    tokens,
                    expected_version,
                } => {
                    // The provider has rotated: keep the lease alive while the
                    // write (and its retries, with a pause) goes on.
                    let pause = Duration::from_millis(200) * persist_failures;
                    let r = self
                        .renewing(account, &owner, settings.lease_ttl, async {
                            tokio::time::sleep(pause).await;
                            let r = self
                                .deps
                                .writer
                                .replace_tokens(account, expected_version, &tokens, Some(&owner))
                                .await;
                            Event::Persisted(write_result(r))
                        })
                        .await;
                    let r = match r {
                        Event::Persisted(r) => r,
                        _ => WriteResult::Failed,
                    };
                    if r == WriteResult::Failed {
                        persist_failures += 1;
                    }
                    if matches!(r, WriteResult::Replaced(_)) {
                        held.lease = false;
                    }
                    Event::Persisted(r)
                }
                Command::MarkRevoked { expected_version } => {
                    let r = self
                        .deps
                        .writer
                        .mark_grant_revoked(account, expected_version, now, Some(&owner))
                        .await;
                    let r = write_result(r);
                    if matches!(r, WriteResult::Replaced(_)) {
                        held.lease = false;
                    }
                    Event::RevocationRecorded(r)
                }
                Command::ReleaseAndFinish(outcome) | Command::Finish(outcome) => break outcome,
            };
        };
        self.let_go(account, &owner, &mut held).await;
        if matches!(outcome, Outcome::AlreadyFresh { .. }) {
            // Someone else refreshed; a cache in front of the store may still
            // hold the stale set that sent the caller here.
            self.deps.writer.forget_cached_tokens(account).await;
        }
        metrics::counter!(REFRESH_TOTAL, "provider" => provider.to_owned(), "outcome" => outcome_label(&outcome))
            .increment(1);
        metrics::histogram!(REFRESH_DURATION, "provider" => provider.to_owned())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Claims the store lease, after the fast Redis lock says nobody else
    /// holds it (or cannot say).
    async fn claim(
        &self,
        account: &AccountId,
        owner: &str,
        now: UnixTime,
        until: UnixTime,
        held: &mut Held,
    ) -> Event {
        if !held.fast_lock {
            match self
                .deps
                .signal
                .try_lock(account, owner, self.settings.lease_ttl)
                .await
            {
                Some(false) => return Event::LeaseClaimed(false),
                Some(true) => held.fast_lock = true,
                None => {}
            }
        }
        match self
            .deps
            .writer
            .try_claim_refresh_lease(account, owner, now, until)
            .await
        {
            Ok(claimed) => {
                held.lease = claimed;
                Event::LeaseClaimed(claimed)
            }
            Err(error) => {
                tracing::warn!(%error, "refresh lease claim failed");
                Event::StoreFailed
            }
        }
    }

    /// Releases whatever this flight still holds and wakes waiters.
    async fn let_go(&self, account: &AccountId, owner: &str, held: &mut Held) {
        let was_holder = held.lease || held.fast_lock;
        if held.lease {
            if let Err(error) = self.deps.writer.release_refresh_lease(account, owner).await {
                tracing::warn!(%error, "refresh lease release failed; it lapses on its own");
            }
            held.lease = false;
        }
        if held.fast_lock {
            self.deps.signal.unlock(account, owner).await;
            held.fast_lock = false;
        }
        if was_holder {
            self.deps.signal.publish(account).await;
        }
    }

    /// Extends `owner`'s lease once; `false` when it is no longer held (a
    /// failed store call is not proof of loss: the lease may still hold).
    async fn renew_once(&self, account: &AccountId, owner: &str, ttl: Duration) -> bool {
        let until = self.deps.clock.now().saturating_add(ttl);
        let (held, result) = match self
            .deps
            .writer
            .renew_refresh_lease(account, owner, until)
            .await
        {
            Ok(true) => (true, "renewed"),
            Ok(false) => {
                tracing::error!(account = account.as_str(), "refresh lease lost");
                (false, "lost")
            }
            Err(error) => {
                tracing::warn!(%error, "refresh lease renewal failed");
                (true, "error")
            }
        };
        metrics::counter!(LEASE_RENEWALS, "result" => result).increment(1);
        held
    }

    /// Runs `work` while renewing the lease every [`lease_renewal_interval`], and
    /// stops it (as a store failure) as soon as the lease is found taken.
    async fn renewing<F: std::future::Future<Output = Event>>(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
        work: F,
    ) -> Event {
        let renew = async {
            loop {
                tokio::time::sleep(lease_renewal_interval(ttl)).await;
                if !self.renew_once(account, owner, ttl).await {
                    return;
                }
            }
        };
        tokio::select! {
            event = work => event,
            () = renew => Event::StoreFailed,
        }
    }

    /// One provider call, gated by the provider's circuit breaker and bounded
    /// by the refresh deadline.
    async fn call_provider(
        &self,
        provider: &str,
        refresh_token: &Secret,
        started: Instant,
        settings: RefreshSettings,
    ) -> Event {
        let jitter = rand::random::<f64>();
        let now = self.deps.clock.now();
        let admitted = self.with_breaker(provider, |b| b.try_acquire(now));
        if let Err(wait) = admitted {
            metrics::counter!(PROVIDER_CALLS, "provider" => provider.to_owned(), "result" => "circuit_open")
                .increment(1);
            return Event::ProviderFailed {
                kind: ProviderErrorKind::Transient {
                    retry_after: Some(wait),
                },
                jitter,
            };
        }
        let remaining = settings.deadline.saturating_sub(started.elapsed());
        let answer = tokio::time::timeout(
            remaining,
            self.deps.refresher.refresh(provider, refresh_token, now),
        )
        .await;
        let kind = match &answer {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.kind),
            Err(_) => Some(ProviderErrorKind::Transient { retry_after: None }),
        };
        let transient = kind.is_some_and(ProviderErrorKind::is_retryable);
        let later = self.deps.clock.now();
        self.with_breaker(provider, |b| b.record(transient, later));
        let label = kind.map_or("granted", ProviderErrorKind::as_str);
        metrics::counter!(PROVIDER_CALLS, "provider" => provider.to_owned(), "result" => label)
            .increment(1);
        match answer {
            Ok(Ok(tokens)) => Event::ProviderGranted(tokens),
            Ok(Err(error)) => {
                tracing::warn!(%error, "refresh grant failed");
                Event::ProviderFailed {
                    kind: error.kind,
                    jitter,
                }
            }
            Err(_) => {
                tracing::warn!(provider, "refresh grant timed out at the refresh deadline");
                Event::ProviderFailed {
                    kind: ProviderErrorKind::Transient { retry_after: None },
                    jitter,
                }
            }
        }
    }

    fn with_breaker<T>(&self, provider: &str, f: impl FnOnce(&mut CircuitBreaker) -> T) -> T {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let breaker = breakers.entry(provider.to_owned()).or_insert_with(|| {
            CircuitBreaker::new(self.breaker.failure_threshold, self.breaker.open_for)
        });
        let out = f(breaker);
        metrics::gauge!(CIRCUIT_STATE, "provider" => provider.to_owned())
            .set(breaker.state().as_gauge());
        out
    }
}

fn uuid_suffix() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The refresh grant over the configured providers' OAuth clients.
#[derive(Debug, Clone)]
pub struct CatalogRefresher {
    catalog: authgate_oauth::Catalog,
}

impl CatalogRefresher {
    /// Refreshes through `catalog`'s providers.
    pub fn new(catalog: authgate_oauth::Catalog) -> Self {
        Self { catalog }
    }
}

#[async_trait]
impl TokenRefresher for CatalogRefresher {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        match self.catalog.get(provider) {
            Some(p) => p.refresh(refresh_token, now).await,
            None => Err(
                ProviderError::new(ProviderErrorKind::Misconfigured, provider)
                    .with_description("no such provider is configured"),
            ),
        }
    }
}
