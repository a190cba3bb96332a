//! The refresh service: its dependencies, settings and in-process flights.
//!
//! A *flight* is the one task per account that this process runs at a time:
//! a refresh (`driver.rs`) or the end of a grant (`end.rs`). Concurrent
//! callers share it; it runs in its own task, so a caller that goes away
//! never abandons a rotated token halfway.

use crate::metrics::COALESCED;
use crate::provider::TokenRefresher;
use crate::signal::RefreshSignal;
use authgate_core::refresh::{CircuitBreaker, Outcome, RefreshSettings};
use authgate_core::time::Clock;
use authgate_core::token::TokenSet;
use authgate_store::cache::TokenCache;
use authgate_store::{AccountId, Store, StoreError};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the refresh service talks to.
#[derive(Clone)]
pub struct RefreshDeps {
    /// The store itself, never a cache: every decision reads it, and every
    /// lease operation and token write goes to it.
    pub store: Arc<dyn Store>,
    /// The caches in front of the store, told about every token write the
    /// service makes (`authgate_store::cache::CachedStore`, or
    /// `authgate_store::cache::NoTokenCache` without a cache).
    pub token_cache: Arc<dyn TokenCache>,
    /// The provider side.
    pub refresher: Arc<dyn TokenRefresher>,
    /// Cross-instance hand-off.
    pub signal: Arc<dyn RefreshSignal>,
    /// The wall clock (token expiry and the circuit breaker; leases use the
    /// store's clock).
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

/// The shortest lease: it is renewed every third of its lifetime, so a
/// shorter one would only add store writes.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(1);

/// Why a grant is ended (a log field and a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The user signed out.
    SignOut,
    /// An administrator ended the user's sessions.
    Admin,
    /// The provider ended the user's session there (OpenID Connect
    /// Back-Channel Logout naming the user).
    ProviderLogout,
}

impl EndReason {
    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignOut => "sign_out",
            Self::Admin => "admin",
            Self::ProviderLogout => "provider_logout",
        }
    }
}

/// How ending a grant went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEnd {
    /// The stored tokens were cleared under the lease, after the newest
    /// refresh token was sent to the provider's revocation endpoint;
    /// `revoked_at_provider` says whether the provider confirmed it (it
    /// may have no revocation endpoint, or have failed: RFC 7009 then
    /// says to assume the token lives on).
    Ended {
        /// Whether the provider confirmed the revocation.
        revoked_at_provider: bool,
    },
    /// The account has no live grant (already ended or revoked, or gone).
    NothingToEnd,
    /// The lease or the store was not available in time: the tokens are
    /// still stored. End the session anyway.
    Unavailable,
}

impl GrantEnd {
    /// What a refresh that joined this flight gets.
    fn as_refresh_outcome(self) -> Outcome {
        match self {
            Self::Ended { .. } | Self::NothingToEnd => Outcome::Revoked,
            Self::Unavailable => Outcome::Unavailable {
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

/// How a flight landed.
#[derive(Debug, Clone)]
pub(crate) enum Landing {
    Refreshed(Outcome),
    Ended(GrantEnd),
}

type Flight = Shared<BoxFuture<'static, Landing>>;

/// Refreshes accounts' tokens: one flight per account in this process, one
/// lease per account across all processes. Cheap to clone.
#[derive(Clone)]
pub struct RefreshService {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) deps: RefreshDeps,
    pub(crate) settings: RefreshSettings,
    pub(crate) breaker: BreakerSettings,
    pub(crate) instance: String,
    flights: Mutex<HashMap<String, Flight>>,
    pub(crate) breakers: Mutex<HashMap<String, CircuitBreaker>>,
}

impl std::fmt::Debug for RefreshService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshService")
            .field("instance", &self.inner.instance)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

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

impl RefreshService {
    /// A service for one process. `instance` names this process in lease
    /// owner ids (a random suffix is added per flight). `lease_ttl` is
    /// raised to at least [`MIN_LEASE_TTL`].
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
        self.refresh_with(account, provider, self.inner.settings)
            .await
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
        self.refresh_with(account, provider, settings).await
    }

    /// The account's tokens as the gateway's fast path reads them (a cached
    /// copy, else the store, whose answer is then cached), stale or not;
    /// `None` when the grant ended (revoked, cleared, or no such account).
    /// With [`Self::refresh`], this is how the HTTP edge gets tokens: it
    /// never reads the store itself. Refresh decisions never use it.
    pub async fn current_tokens(
        &self,
        account: &AccountId,
    ) -> Result<Option<TokenSet>, StoreError> {
        let deps = &self.inner.deps;
        let stored = match deps.token_cache.cached_tokens(account).await {
            Some(cached) => Some(cached),
            None => {
                let read = deps.store.read_tokens(account).await?;
                if let Some(read) = &read {
                    deps.token_cache.publish_tokens(account, read).await;
                }
                read
            }
        };
        Ok(stored
            .filter(|v| v.revoked_at.is_none())
            .and_then(|v| v.tokens))
    }

    /// Ends `account`'s grant for good (sign-out, an administrator),
    /// serialised with every refresh: it waits for this process's flight,
    /// then holds the store lease (so no other instance is refreshing) while
    /// it revokes the newest refresh token at the provider (RFC 7009) and
    /// clears the stored tokens with a compare-and-swap. A rotation racing
    /// the sign-out therefore cannot leave a live refresh token behind.
    /// Refreshes that arrive meanwhile join it and end `Revoked`.
    pub async fn end_grant(
        &self,
        account: &AccountId,
        provider: &str,
        reason: EndReason,
    ) -> GrantEnd {
        loop {
            let flight = self.flight(account, Landing::Ended(GrantEnd::Unavailable), || {
                let (inner, acc, prov) = (
                    Arc::clone(&self.inner),
                    account.clone(),
                    provider.to_owned(),
                );
                async move { Landing::Ended(inner.end(&acc, &prov, reason).await) }.boxed()
            });
            match flight.0.await {
                Landing::Ended(end) => return end,
                // A refresh was in flight: it has landed, now end the grant.
                Landing::Refreshed(_) => {}
            }
        }
    }

    async fn refresh_with(
        &self,
        account: &AccountId,
        provider: &str,
        settings: RefreshSettings,
    ) -> Outcome {
        let unavailable = Landing::Refreshed(Outcome::Unavailable {
            retry_after: Duration::from_secs(1),
        });
        let (flight, joined) = self.flight(account, unavailable, || {
            let (inner, acc, prov) = (
                Arc::clone(&self.inner),
                account.clone(),
                provider.to_owned(),
            );
            async move { Landing::Refreshed(inner.run(&acc, &prov, settings).await) }.boxed()
        });
        if joined {
            metrics::counter!(COALESCED, "provider" => provider.to_owned()).increment(1);
        }
        match flight.await {
            Landing::Refreshed(outcome) => outcome,
            Landing::Ended(end) => end.as_refresh_outcome(),
        }
    }

    /// The account's flight in this process: the running one (`true`), or a
    /// new one started from `start` (`false`), which lands as `if_panicked`
    /// should its task panic.
    fn flight(
        &self,
        account: &AccountId,
        if_panicked: Landing,
        start: impl FnOnce() -> BoxFuture<'static, Landing>,
    ) -> (Flight, bool) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = flights.get(account.as_str()) {
            return (flight.clone(), true);
        }
        let guard = FlightGuard {
            inner: Arc::clone(&self.inner),
            account: account.as_str().to_owned(),
        };
        let work = start();
        let task = tokio::spawn(async move {
            // Removes the flight even if the work panics, so one bad flight
            // cannot block the account for good.
            let _landed = guard;
            work.await
        });
        let flight: Flight = async move {
            task.await.unwrap_or_else(|_| {
                tracing::error!("a refresh flight panicked");
                if_panicked
            })
        }
        .boxed()
        .shared();
        flights.insert(account.as_str().to_owned(), flight.clone());
        (flight, false)
    }
}

/// A random suffix that makes a flight's lease owner id unique.
pub(crate) fn owner_id(instance: &str, kind: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let suffix = uuid::Builder::from_random_bytes(bytes).into_uuid();
    format!("{instance}:{kind}:{suffix}")
}
