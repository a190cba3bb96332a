//! What a flight knows about its store lease, and keeping it alive.
//!
//! The store judges leases by its own clock and answers a claim or renewal
//! with how long the lease holds from the moment it ran the statement
//! ([`HeldLease::remaining`]). That moment is after this process sent the
//! statement, so the lease certainly holds until *send time + remaining* on
//! this process's monotonic clock: [`LeaseHold`] keeps that bound. A store
//! error or a timeout proves nothing, so it never extends the bound: a lease
//! is "held" only as long as the last confirmation says.

use crate::metrics::LEASE_RENEWALS;
use authgate_store::{AccountId, HeldLease, Store};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// Until when (monotonic) the store's answers guarantee this flight holds
/// its lease. Pure bookkeeping: time is passed in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseHold {
    held_until: Option<Instant>,
}

impl LeaseHold {
    /// The store confirmed the lease in answer to a statement sent at
    /// `sent_at`.
    pub(crate) fn confirmed(&mut self, sent_at: Instant, lease: HeldLease) {
        let until = sent_at + lease.remaining;
        self.held_until = Some(self.held_until.map_or(until, |u| u.max(until)));
    }

    /// The store said someone else holds it now.
    pub(crate) fn lost(&mut self) {
        self.held_until = None;
    }

    /// How much longer the lease certainly holds after `now` (zero when it
    /// may have lapsed, or was never confirmed).
    pub(crate) fn held_for(&self, now: Instant) -> Duration {
        self.held_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}

/// Whether a provider call may start `certain_for` before the lease could
/// lapse: at least one renewal interval must be left, so that the lease
/// cannot lapse before the first renewal during the call has been tried.
pub(crate) fn may_call_provider(certain_for: Duration, interval: Duration) -> bool {
    certain_for >= interval
}

/// What to do with the work when renewing the lease goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhileRenewing {
    /// A provider call: once sent it cannot be taken back, so only a lease
    /// found taken by someone else stops it.
    StopWhenTaken,
    /// A backoff before the next provider call: stop as soon as the lease
    /// is taken or can no longer be vouched for (no call follows then).
    StopWhenUnconfirmed,
    /// Writing tokens the provider already rotated, or ending a grant:
    /// never stop (the write is compare-and-swap, and giving the new tokens
    /// up would leave only a consumed refresh token).
    Finish,
}

/// How a claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This flight holds the lease.
    Held,
    /// Someone else holds it.
    Taken,
    /// The store did not answer: the lease may or may not be ours.
    Unknown,
}

/// Claims made before a flight gives up on a store that does not answer.
const CLAIM_ATTEMPTS: u32 = 3;

/// The pause before repeating a claim whose answer was lost.
const CLAIM_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One flight's lease on one account: who asks, for how long, and how often
/// it is renewed.
pub(crate) struct OwnLease<'a> {
    /// The store (never a cache).
    pub(crate) store: &'a dyn Store,
    /// The account.
    pub(crate) account: &'a AccountId,
    /// This flight's owner id.
    pub(crate) owner: &'a str,
    /// How long each claim or renewal holds.
    pub(crate) ttl: Duration,
    /// How often it is renewed; also the least certainty a provider call
    /// needs.
    pub(crate) interval: Duration,
}

impl OwnLease<'_> {
    /// Claims the lease. A claim whose answer is lost (the statement may
    /// have committed) is repeated: the claim is idempotent for its owner,
    /// so the repeat finds the lease the lost answer granted instead of
    /// leaving the account blocked until it lapses.
    pub(crate) async fn claim(&self, hold: &mut LeaseHold) -> Claim {
        for attempt in 1..=CLAIM_ATTEMPTS {
            let sent_at = Instant::now();
            match self
                .store
                .try_claim_refresh_lease(self.account, self.owner, self.ttl)
                .await
            {
                Ok(Some(lease)) => {
                    hold.confirmed(sent_at, lease);
                    return Claim::Held;
                }
                Ok(None) => return Claim::Taken,
                Err(error) => {
                    tracing::warn!(%error, attempt, "refresh lease claim unanswered");
                    if attempt < CLAIM_ATTEMPTS {
                        tokio::time::sleep(CLAIM_RETRY_PAUSE * attempt).await;
                    }
                }
            }
        }
        Claim::Unknown
    }

    /// How long a renewal's answer is worth waiting for: a later one could
    /// not leave a renewal interval of certainty (a late answer is still a
    /// valid confirmation: it counts from when the renewal was sent).
    fn patience(&self) -> Duration {
        self.ttl.saturating_sub(self.interval)
    }

    /// Renews the lease once and updates `hold`: `Some(false)` when the
    /// store says someone else holds it, `None` when it could not say (an
    /// error, or no answer in time).
    pub(crate) async fn renew_once(&self, hold: &mut LeaseHold) -> Option<bool> {
        let sent_at = Instant::now();
        let patience = self.patience();
        let answer = tokio::time::timeout(
            patience,
            self.store
                .renew_refresh_lease(self.account, self.owner, self.ttl),
        )
        .await;
        let (held, result) = match answer {
            Ok(Ok(Some(lease))) => {
                hold.confirmed(sent_at, lease);
                (Some(true), "renewed")
            }
            Ok(Ok(None)) => {
                hold.lost();
                tracing::error!(account = self.account.as_str(), "refresh lease lost");
                (Some(false), "lost")
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "refresh lease renewal failed");
                (None, "error")
            }
            Err(_) => {
                tracing::warn!(?patience, "refresh lease renewal unanswered");
                (None, "error")
            }
        };
        metrics::counter!(LEASE_RENEWALS, "result" => result).increment(1);
        held
    }

    /// Runs `work` while renewing the lease every interval. Returns the
    /// work's output, or `None` when `policy` stopped it.
    pub(crate) async fn renewing<T>(
        &self,
        hold: &mut LeaseHold,
        policy: WhileRenewing,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        let renew = async {
            loop {
                tokio::time::sleep(self.interval).await;
                match self.renew_once(hold).await {
                    Some(false) if policy == WhileRenewing::Finish => {
                        // Nothing to renew any more; let the work finish.
                        std::future::pending::<()>().await;
                    }
                    Some(false) => return,
                    _ => {}
                }
                if policy == WhileRenewing::StopWhenUnconfirmed
                    && hold.held_for(Instant::now()).is_zero()
                {
                    tracing::warn!(
                        account = self.account.as_str(),
                        "refresh lease no longer confirmed by the store; no further provider call"
                    );
                    return;
                }
            }
        };
        tokio::select! {
            out = work => Some(out),
            () = renew => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ms: u64) -> HeldLease {
        HeldLease {
            remaining: Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_confirmation_counts_from_when_the_statement_was_sent() {
        let t0 = Instant::now();
        let mut hold = LeaseHold::default();
        assert_eq!(hold.held_for(t0), Duration::ZERO, "never confirmed");
        hold.confirmed(t0, lease(3000));
        assert_eq!(
            hold.held_for(t0 + Duration::from_millis(1000)),
            Duration::from_millis(2000)
        );
        assert_eq!(hold.held_for(t0 + Duration::from_secs(3)), Duration::ZERO);
        assert_eq!(hold.held_for(t0 + Duration::from_secs(9)), Duration::ZERO);
    }

    #[test]
    fn an_older_answer_never_shortens_a_newer_confirmation() {
        let t0 = Instant::now();
        let mut hold = LeaseHold::default();
        hold.confirmed(t0 + Duration::from_secs(1), lease(3000));
        hold.confirmed(t0, lease(3000));
        assert_eq!(hold.held_for(t0), Duration::from_secs(4));
    }

    #[test]
    fn a_lease_found_taken_is_not_held_at_all() {
        let t0 = Instant::now();
        let mut hold = LeaseHold::default();
        hold.confirmed(t0, lease(3000));
        hold.lost();
        assert_eq!(hold.held_for(t0), Duration::ZERO);
    }

    #[test]
    fn a_provider_call_needs_a_renewal_interval_of_certainty() {
        let interval = Duration::from_secs(3);
        assert!(may_call_provider(Duration::from_secs(3), interval));
        assert!(!may_call_provider(Duration::from_millis(2999), interval));
        assert!(!may_call_provider(Duration::ZERO, interval));
    }
}
