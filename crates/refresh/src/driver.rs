//! One refresh flight: executes the pure machine's commands against the
//! store (never a cache), the provider and the signal.

use crate::lease::{Claim, LeaseHold, OwnLease, WhileRenewing, may_call_provider};
use crate::metrics::{CIRCUIT_STATE, LOCK_WAIT, PROVIDER_CALLS, REFRESH_DURATION, REFRESH_TOTAL};
use crate::service::{Inner, owner_id};
use crate::signal::SignalWaiter;
use authgate_core::provider_error::ProviderErrorKind;
use authgate_core::refresh::{
    CircuitBreaker, Command, Event, Outcome, RefreshMachine, RefreshSettings, TokenSnapshot,
    WriteResult,
};
use authgate_core::secret::Secret;
use authgate_core::token::TokenSet;
use authgate_store::{AccountId, ReplaceOutcome, StoreError, VersionedTokens};
use std::time::Duration;
use tokio::time::Instant;

/// What this flight may hold right now, so that finishing can let go of it.
#[derive(Default)]
pub(crate) struct Held {
    /// The store lease (or a claim whose answer was lost).
    pub(crate) lease: bool,
    /// The fast Redis lock.
    pub(crate) fast_lock: bool,
}

fn snapshot(v: VersionedTokens) -> TokenSnapshot {
    TokenSnapshot {
        revoked: v.revoked_at.is_some(),
        tokens: v.tokens,
        version: v.version,
    }
}

pub(crate) fn write_result(r: Result<ReplaceOutcome, StoreError>) -> WriteResult {
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

impl Inner {
    /// Runs one refresh of `account` to its outcome.
    pub(crate) async fn run(
        &self,
        account: &AccountId,
        provider: &str,
        settings: RefreshSettings,
    ) -> Outcome {
        let started = Instant::now();
        let owner = owner_id(&self.instance, "refresh");
        let mut machine = RefreshMachine::new(settings);
        let lease = OwnLease {
            store: &*self.deps.store,
            account,
            owner: &owner,
            ttl: settings.lease_ttl,
            interval: machine.lease_renewal_interval(),
        };
        let mut held = Held::default();
        let mut hold = LeaseHold::default();
        let mut waiter: Option<SignalWaiter> = None;
        let mut event = Event::Start;
        let outcome = loop {
            let now = self.deps.clock.now();
            let command = machine.step(event, now, started.elapsed());
            event = match command {
                Command::ReadTokens => match self.deps.store.read_tokens(account).await {
                    Ok(v) => Event::TokensRead(v.map(snapshot)),
                    Err(error) => {
                        tracing::warn!(%error, account = account.as_str(), "token read failed during refresh");
                        Event::StoreFailed
                    }
                },
                Command::ClaimLease => {
                    waiter = Some(self.deps.signal.subscribe(account));
                    self.claim(&lease, &mut held, &mut hold).await
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
                    self.call_under_lease(&lease, &mut hold, provider, &refresh_token, started)
                        .await
                }
                Command::Sleep { duration } => lease
                    .renewing(
                        &mut hold,
                        WhileRenewing::StopWhenUnconfirmed,
                        tokio::time::sleep(duration),
                    )
                    .await
                    .map_or(Event::StoreFailed, |()| Event::Slept),
                Command::Persist {
                    tokens,
                    expected_version,
                    after,
                    within,
                } => {
                    let r = self
                        .persist(&lease, &mut hold, &tokens, expected_version, after, within)
                        .await;
                    if matches!(r, WriteResult::Replaced(_)) {
                        held.lease = false;
                    }
                    Event::Persisted(r)
                }
                Command::MarkRevoked { expected_version } => {
                    let r = self
                        .deps
                        .store
                        .mark_grant_revoked(account, expected_version, now, Some(&owner))
                        .await;
                    let r = write_result(r);
                    match r {
                        WriteResult::Replaced(version) => {
                            held.lease = false;
                            let revoked = VersionedTokens {
                                tokens: None,
                                version,
                                revoked_at: Some(now),
                            };
                            self.deps
                                .token_cache
                                .publish_tokens(account, &revoked)
                                .await;
                        }
                        WriteResult::LostRace | WriteResult::Failed => {
                            self.deps.token_cache.invalidate_tokens(account).await;
                        }
                    }
                    Event::RevocationRecorded(r)
                }
                Command::ReleaseAndFinish(outcome) | Command::Finish(outcome) => break outcome,
            };
        };
        self.let_go(account, &owner, &mut held).await;
        self.after_flight(account, &outcome).await;
        metrics::counter!(REFRESH_TOTAL, "provider" => provider.to_owned(), "outcome" => outcome_label(&outcome))
            .increment(1);
        metrics::histogram!(REFRESH_DURATION, "provider" => provider.to_owned())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    /// Brings the caches in front of the store in line with what this
    /// flight found in the store itself.
    async fn after_flight(&self, account: &AccountId, outcome: &Outcome) {
        match outcome {
            // Someone else refreshed; a cache may still hold the stale set
            // that sent the caller here.
            Outcome::AlreadyFresh { tokens, version } => {
                let found = VersionedTokens {
                    tokens: Some(tokens.clone()),
                    version: *version,
                    revoked_at: None,
                };
                self.deps.token_cache.publish_tokens(account, &found).await;
            }
            Outcome::Revoked | Outcome::AccountMissing => {
                self.deps.token_cache.invalidate_tokens(account).await;
            }
            _ => {}
        }
    }

    /// Claims the store lease, after the fast Redis lock says nobody else
    /// holds it (or cannot say).
    pub(crate) async fn claim(
        &self,
        lease: &OwnLease<'_>,
        held: &mut Held,
        hold: &mut LeaseHold,
    ) -> Event {
        if !held.fast_lock {
            match self
                .deps
                .signal
                .try_lock(lease.account, lease.owner, lease.ttl)
                .await
            {
                Some(false) => return Event::LeaseClaimed(false),
                Some(true) => held.fast_lock = true,
                None => {}
            }
        }
        match lease.claim(hold).await {
            Claim::Held => {
                held.lease = true;
                Event::LeaseClaimed(true)
            }
            Claim::Taken => Event::LeaseClaimed(false),
            Claim::Unknown => {
                // It may be ours: release it on the way out.
                held.lease = true;
                Event::StoreFailed
            }
        }
    }

    /// Releases whatever this flight still holds and wakes waiters.
    pub(crate) async fn let_go(&self, account: &AccountId, owner: &str, held: &mut Held) {
        let was_holder = held.lease || held.fast_lock;
        if held.lease {
            if let Err(error) = self.deps.store.release_refresh_lease(account, owner).await {
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

    /// Presents the refresh token, but only while the store vouches for the
    /// lease: unless the store confirmed it within the last renewal
    /// interval (the claim, usually), it is renewed first — a failed
    /// renewal is no proof of holding it — and the call starts only if the
    /// lease certainly holds for at least one more renewal interval.
    async fn call_under_lease(
        &self,
        lease: &OwnLease<'_>,
        hold: &mut LeaseHold,
        provider: &str,
        refresh_token: &Secret,
        started: Instant,
    ) -> Event {
        let recently_confirmed = hold.held_for(Instant::now()) + lease.interval >= lease.ttl;
        if !recently_confirmed && lease.renew_once(hold).await == Some(false) {
            return Event::StoreFailed;
        }
        let certain_for = hold.held_for(Instant::now());
        if !may_call_provider(certain_for, lease.interval) {
            tracing::warn!(
                account = lease.account.as_str(),
                ?certain_for,
                "the store does not vouch for the refresh lease; the refresh token is not presented"
            );
            return Event::StoreFailed;
        }
        lease
            .renewing(
                hold,
                WhileRenewing::StopWhenTaken,
                self.call_provider(provider, refresh_token, started),
            )
            .await
            .unwrap_or(Event::StoreFailed)
    }

    /// Writes the tokens the provider just rotated (compare-and-swap),
    /// renewing the lease meanwhile, and tells the caches.
    async fn persist(
        &self,
        lease: &OwnLease<'_>,
        hold: &mut LeaseHold,
        tokens: &TokenSet,
        expected_version: i64,
        after: Duration,
        within: Duration,
    ) -> WriteResult {
        let write = async {
            tokio::time::sleep(after).await;
            let budget = within.saturating_sub(after);
            let write = self.deps.store.replace_tokens(
                lease.account,
                expected_version,
                tokens,
                Some(lease.owner),
            );
            match tokio::time::timeout(budget, write).await {
                Ok(r) => write_result(r),
                Err(_) => {
                    tracing::warn!(
                        ?budget,
                        "token write unanswered within the persist deadline"
                    );
                    WriteResult::Failed
                }
            }
        };
        let r = lease
            .renewing(hold, WhileRenewing::Finish, write)
            .await
            .unwrap_or(WriteResult::Failed);
        match r {
            WriteResult::Replaced(version) => {
                let written = VersionedTokens {
                    tokens: Some(tokens.clone()),
                    version,
                    revoked_at: None,
                };
                self.deps
                    .token_cache
                    .publish_tokens(lease.account, &written)
                    .await;
            }
            WriteResult::LostRace | WriteResult::Failed => {
                self.deps.token_cache.invalidate_tokens(lease.account).await;
            }
        }
        r
    }

    /// One provider call, gated by the provider's circuit breaker and bounded
    /// by the refresh deadline.
    async fn call_provider(
        &self,
        provider: &str,
        refresh_token: &Secret,
        started: Instant,
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
        let remaining = self.settings.deadline.saturating_sub(started.elapsed());
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
