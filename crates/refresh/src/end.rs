//! Ending a grant (sign-out): under the same lease as every refresh, so a
//! rotation racing the sign-out cannot leave a live refresh token at the
//! provider.
//!
//! ```text
//! join this process's flight ─► claim the store lease (wait for its holder)
//!   ─► read the newest tokens ─► revoke the refresh token at the provider (RFC 7009)
//!   ─► clear the tokens (compare-and-swap, releases the lease) ─► wake waiters
//! ```

use crate::driver::{Held, write_result};
use crate::lease::{LeaseHold, OwnLease, WhileRenewing};
use crate::metrics::GRANTS_ENDED;
use crate::provider::Revocation;
use crate::service::{EndReason, GrantEnd, Inner, owner_id};
use authgate_core::provider_error::ProviderErrorKind;
use authgate_core::refresh::{Event, WriteResult};
use authgate_core::token::TokenSet;
use authgate_oauth::TokenTypeHint;
use authgate_store::{AccountId, VersionedTokens};
use std::time::Duration;
use tokio::time::Instant;

/// Compare-and-swap rounds before giving up (each loss means someone wrote
/// under our lease, which only a lapsed lease allows).
const END_ROUNDS: u32 = 3;

impl Inner {
    /// Ends `account`'s grant; see [`crate::RefreshService::end_grant`].
    pub(crate) async fn end(
        &self,
        account: &AccountId,
        provider: &str,
        reason: EndReason,
    ) -> GrantEnd {
        let owner = owner_id(&self.instance, "end");
        let lease = OwnLease {
            store: &*self.deps.store,
            account,
            owner: &owner,
            ttl: self.settings.lease_ttl,
            interval: self.settings.lease_renewal_interval(),
        };
        let mut held = Held::default();
        let mut hold = LeaseHold::default();
        let end = match self.wait_for_lease(&lease, &mut held, &mut hold).await {
            true => lease
                .renewing(
                    &mut hold,
                    WhileRenewing::Finish,
                    self.end_under_lease(&lease, provider, &mut held),
                )
                .await
                .unwrap_or(GrantEnd::Unavailable),
            false => GrantEnd::Unavailable,
        };
        self.let_go(account, &owner, &mut held).await;
        let result = match end {
            GrantEnd::Ended {
                revoked_at_provider: true,
            } => "ended",
            GrantEnd::Ended {
                revoked_at_provider: false,
            } => "ended_not_revoked",
            GrantEnd::NothingToEnd => "nothing_to_end",
            GrantEnd::Unavailable => "unavailable",
        };
        metrics::counter!(GRANTS_ENDED, "reason" => reason.as_str(), "result" => result)
            .increment(1);
        match end {
            GrantEnd::Ended {
                revoked_at_provider: true,
            }
            | GrantEnd::NothingToEnd => tracing::info!(
                account = account.as_str(),
                provider,
                reason = reason.as_str(),
                result,
                "grant ended"
            ),
            _ => tracing::warn!(
                account = account.as_str(),
                provider,
                reason = reason.as_str(),
                result,
                "grant not fully ended"
            ),
        }
        end
    }

    /// Claims the lease, waiting for its holder as long as a holder can
    /// keep it (a refresh's deadline and persist deadline, plus one lease);
    /// whether this flight holds it.
    async fn wait_for_lease(
        &self,
        lease: &OwnLease<'_>,
        held: &mut Held,
        hold: &mut LeaseHold,
    ) -> bool {
        let patience = self.settings.deadline + self.settings.persist_deadline + lease.ttl;
        let started = Instant::now();
        loop {
            let waiter = self.deps.signal.subscribe(lease.account);
            match self.claim(lease, held, hold).await {
                Event::LeaseClaimed(true) => return true,
                Event::LeaseClaimed(false) => {}
                _ => return false,
            }
            let left = patience.saturating_sub(started.elapsed());
            if left.is_zero() {
                tracing::warn!(
                    account = lease.account.as_str(),
                    "the refresh lease stayed taken; the grant is not ended"
                );
                return false;
            }
            waiter.wait(left.min(lease.ttl)).await;
        }
    }

    /// Under the lease: revokes the newest refresh token and clears the
    /// stored tokens.
    async fn end_under_lease(
        &self,
        lease: &OwnLease<'_>,
        provider: &str,
        held: &mut Held,
    ) -> GrantEnd {
        for _ in 0..END_ROUNDS {
            let stored = match self.deps.store.read_tokens(lease.account).await {
                Ok(Some(stored)) => stored,
                Ok(None) => return GrantEnd::NothingToEnd,
                Err(error) => {
                    tracing::warn!(%error, "ending a grant: the tokens could not be read");
                    return GrantEnd::Unavailable;
                }
            };
            let Some(tokens) = &stored.tokens else {
                return GrantEnd::NothingToEnd;
            };
            let revoked_at_provider = self.revoke_at_provider(provider, tokens).await;
            let now = self.deps.clock.now();
            let r = self
                .deps
                .store
                .mark_grant_revoked(lease.account, stored.version, now, Some(lease.owner))
                .await;
            match write_result(r) {
                WriteResult::Replaced(version) => {
                    held.lease = false;
                    let ended = VersionedTokens {
                        tokens: None,
                        version,
                        revoked_at: Some(now),
                    };
                    self.deps
                        .token_cache
                        .publish_tokens(lease.account, &ended)
                        .await;
                    return GrantEnd::Ended {
                        revoked_at_provider,
                    };
                }
                WriteResult::LostRace => {
                    self.deps.token_cache.invalidate_tokens(lease.account).await;
                }
                WriteResult::Failed => {
                    self.deps.token_cache.invalidate_tokens(lease.account).await;
                    return GrantEnd::Unavailable;
                }
            }
        }
        GrantEnd::Unavailable
    }

    /// Revokes the refresh token (or, without one, the access token) at the
    /// provider, retrying transient failures within the refresh deadline;
    /// whether the provider confirmed it.
    async fn revoke_at_provider(&self, provider: &str, tokens: &TokenSet) -> bool {
        let (token, hint) = match &tokens.refresh_token {
            Some(rt) => (rt, TokenTypeHint::RefreshToken),
            None => (&tokens.access_token, TokenTypeHint::AccessToken),
        };
        let started = Instant::now();
        let retry = self.settings.retry;
        for attempt in 1..=retry.max_attempts.max(1) {
            let left = self.settings.deadline.saturating_sub(started.elapsed());
            let answer =
                tokio::time::timeout(left, self.deps.refresher.revoke(provider, token, hint)).await;
            let error = match answer {
                Ok(Ok(Revocation::Revoked)) => return true,
                Ok(Ok(Revocation::Unsupported)) => {
                    tracing::info!(
                        provider,
                        "the provider cannot revoke tokens (no RFC 7009 endpoint)"
                    );
                    return false;
                }
                Ok(Err(error)) => error,
                Err(_) => {
                    tracing::warn!(provider, "revocation at the provider timed out");
                    return false;
                }
            };
            let retry_after = match error.kind {
                ProviderErrorKind::Transient { retry_after } => retry_after,
                _ => {
                    tracing::warn!(%error, "revocation refused by the provider");
                    return false;
                }
            };
            let delay = retry.delay(attempt, rand::random::<f64>(), retry_after);
            if attempt >= retry.max_attempts || started.elapsed() + delay >= self.settings.deadline
            {
                tracing::warn!(%error, "revocation at the provider failed; the refresh token may stay alive there");
                return false;
            }
            tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
        }
        false
    }
}
