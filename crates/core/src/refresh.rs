//! The refresh state machine: the decisions of one account refresh, with no I/O.
//!
//! A refresh is a conversation with two outside parties — the store (source of
//! truth, holder of the cross-instance lease) and the provider. This machine
//! decides every step; a driver in the refresh service executes the
//! [`Command`]s it returns and feeds back what happened as [`Event`]s,
//! together with the current time. Because nothing here sleeps, reads the
//! clock or touches the network, every path — races, lapsed leases, retries,
//! revocations, deadlines — is unit-tested with an injected clock.
//!
//! The happy path for the instance that wins the lease:
//!
//! ```text
//! ReadTokens ─stale─► ClaimLease ─won─► ReadTokens ─still stale─► CallProvider
//!     ─ok─► Persist (compare-and-swap on the version, releases the lease)
//!     ─replaced─► Finish(Refreshed)
//! ```
//!
//! Everyone else either finds fresh tokens on a read, or fails to claim the
//! lease and waits for its holder, then reads again. The invariants of
//! DESIGN.md §2 appear here as rules:
//! - a provider call happens only while this attempt holds the lease, right
//!   after a read under the lease showed the tokens still stale;
//! - new tokens are [`Outcome::Refreshed`] only after the store accepted them,
//!   and a failed write is retried for [`RefreshSettings::persist_deadline`]
//!   before they are given up (a rotating provider has consumed the old
//!   refresh token);
//! - only a [`ProviderErrorKind::GrantRevoked`] answer leads to
//!   [`Command::MarkRevoked`]; transient failures retry within the deadline
//!   and then end as [`Outcome::Unavailable`], tokens untouched.

use crate::provider_error::ProviderErrorKind;
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token::{ExpiryPolicy, TokenSet};
use std::time::Duration;

/// Tunables of one refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshSettings {
    /// When tokens count as stale.
    pub policy: ExpiryPolicy,
    /// How long a claimed lease lasts unless renewed. The driver renews it
    /// every [`RefreshSettings::lease_renewal_interval`] while the provider
    /// call, a backoff or the token write runs.
    pub lease_ttl: Duration,
    /// How long the whole refresh may take, waiting included.
    pub deadline: Duration,
    /// Retries of transient provider failures.
    pub retry: RetryPolicy,
    /// How long a token write that fails after the provider rotated the
    /// tokens is retried (with backoff) before the new tokens are given up.
    /// Counted from the provider's answer, independently of `deadline`: the
    /// refresh token just consumed is gone at a rotating provider, so the
    /// new set is worth waiting for.
    pub persist_deadline: Duration,
}

impl RefreshSettings {
    /// The interval at which a held lease is renewed: a third of its
    /// lifetime, so two renewals may fail before it can lapse.
    pub fn lease_renewal_interval(&self) -> Duration {
        self.lease_ttl / 3
    }
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            policy: ExpiryPolicy::default(),
            lease_ttl: Duration::from_secs(10),
            deadline: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            persist_deadline: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with full jitter for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Provider calls in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Upper bound of the first backoff.
    pub base_delay: Duration,
    /// Upper bound of any backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): a uniformly jittered
    /// value in `[0, min(max_delay, base_delay * 2^(retry-1))]`, scaled by
    /// `jitter` in `[0, 1]`, and never less than the provider's
    /// `Retry-After` hint (capped at `max_delay`).
    pub fn delay(&self, retry: u32, jitter: f64, hint: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        let jittered = cap.mul_f64(jitter.clamp(0.0, 1.0));
        match hint {
            Some(h) => jittered.max(h.min(self.max_delay)),
            None => jittered,
        }
    }
}

/// What the store said about an account's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSnapshot {
    /// The current tokens; `None` after a revocation.
    pub tokens: Option<TokenSet>,
    /// The compare-and-swap version.
    pub version: i64,
    /// Whether the grant is marked revoked.
    pub revoked: bool,
}

/// The result of a compare-and-swap write, as the machine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Written; the account now has this version.
    Replaced(i64),
    /// Someone else wrote first.
    LostRace,
    /// The store failed; the outcome is unknown.
    Failed,
}

/// What happened since the last command.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The refresh was requested.
    Start,
    /// `ReadTokens` answered (`None`: the account does not exist).
    TokensRead(Option<TokenSnapshot>),
    /// `ClaimLease` answered: whether this attempt holds the lease now.
    LeaseClaimed(bool),
    /// `WaitForHolder` ended (the holder published, or the wait timed out).
    HolderWaitOver,
    /// The provider issued new tokens.
    ProviderGranted(TokenSet),
    /// The provider call failed; `jitter` in `[0, 1]` drives the backoff.
    ProviderFailed {
        /// The normalised failure.
        kind: ProviderErrorKind,
        /// A random sample for the backoff jitter.
        jitter: f64,
    },
    /// A backoff `Sleep` ended.
    Slept,
    /// `Persist` answered.
    Persisted(WriteResult),
    /// `MarkRevoked` answered.
    RevocationRecorded(WriteResult),
    /// A store read or lease operation failed.
    StoreFailed,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Read the account's tokens from the store (not a cache).
    ReadTokens,
    /// Claim the cross-instance lease for [`RefreshSettings::lease_ttl`]
    /// (the store judges leases by its own clock).
    ClaimLease,
    /// Wait for the current lease holder's result, at most `max_wait`.
    WaitForHolder {
        /// The longest wait.
        max_wait: Duration,
    },
    /// Call the provider's refresh grant (renewing the lease meanwhile).
    CallProvider {
        /// The refresh token to present.
        refresh_token: Secret,
    },
    /// Wait before retrying the provider (renewing the lease meanwhile).
    Sleep {
        /// How long.
        duration: Duration,
    },
    /// Write `tokens` if the version is still `expected_version`, releasing
    /// the lease. The provider has rotated: these tokens exist nowhere else.
    Persist {
        /// The merged token set.
        tokens: TokenSet,
        /// The version read under the lease.
        expected_version: i64,
        /// Wait this long first (zero for the first attempt).
        after: Duration,
        /// The persist budget left, the wait included: a write still
        /// unanswered by then is given up.
        within: Duration,
    },
    /// Record the revocation if the version is still `expected_version`,
    /// releasing the lease.
    MarkRevoked {
        /// The version read under the lease.
        expected_version: i64,
    },
    /// Release the lease (best effort) and finish with the outcome.
    ReleaseAndFinish(Outcome),
    /// Finish with the outcome (no lease held).
    Finish(Outcome),
}

/// How a refresh ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This attempt refreshed and persisted the tokens.
    Refreshed {
        /// The new tokens.
        tokens: TokenSet,
        /// Their version.
        version: i64,
    },
    /// The tokens were already fresh (another request or instance refreshed).
    AlreadyFresh {
        /// The stored tokens.
        tokens: TokenSet,
        /// Their version.
        version: i64,
    },
    /// The provider revoked the grant; the user must sign in again.
    Revoked,
    /// The tokens are stale but there is no refresh token to renew them.
    NoRefreshToken,
    /// The account no longer exists.
    AccountMissing,
    /// A transient failure outlasted the retries or the deadline; tokens and
    /// session are intact. Retry after the hint.
    Unavailable {
        /// When a retry may help.
        retry_after: Duration,
    },
    /// The provider rejected our configuration or answered nonsense; tokens
    /// and session are intact.
    ProviderRejected(ProviderErrorKind),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// Reading before holding the lease.
    Reading,
    Claiming,
    Waiting,
    /// Reading again, now holding the lease.
    ReadingUnderLease,
    Calling {
        current: TokenSet,
        version: i64,
        attempt: u32,
    },
    BackingOff {
        current: TokenSet,
        version: i64,
        attempt: u32,
    },
    Persisting {
        tokens: TokenSet,
        version: i64,
        attempt: u32,
        /// When the provider answered (elapsed since the start).
        since: Duration,
    },
    Revoking {
        version: i64,
    },
    Done,
}

/// One account refresh's decisions. Create one per refresh attempt.
#[derive(Debug, Clone)]
pub struct RefreshMachine {
    settings: RefreshSettings,
    state: State,
    /// The latest provider retry hint, reported when giving up.
    last_retry_hint: Option<Duration>,
}

/// The retry hint given when a provider is unreachable and said nothing
/// better: the refresh machine's, and the sign-in flow's too.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The first pause between failed token writes; it doubles per attempt.
const PERSIST_BASE_DELAY: Duration = Duration::from_millis(100);

/// The longest pause between failed token writes.
const PERSIST_MAX_DELAY: Duration = Duration::from_secs(1);

/// The pause before token write number `attempt` (1-based): none for the
/// first, then 100 ms doubling up to 1 s.
fn persist_delay(attempt: u32) -> Duration {
    match attempt {
        0 | 1 => Duration::ZERO,
        n => PERSIST_BASE_DELAY
            .saturating_mul(1u32 << (n - 2).min(16))
            .min(PERSIST_MAX_DELAY),
    }
}

impl RefreshMachine {
    /// A machine for one refresh attempt.
    pub fn new(settings: RefreshSettings) -> Self {
        Self {
            settings,
            state: State::Idle,
            last_retry_hint: None,
        }
    }

    /// The interval at which the driver renews a held lease.
    pub fn lease_renewal_interval(&self) -> Duration {
        self.settings.lease_renewal_interval()
    }

    /// Whether the machine has finished.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds `event`, observed at wall-clock `now`, `elapsed` after the
    /// refresh started; returns the next command.
    pub fn step(&mut self, event: Event, now: UnixTime, elapsed: Duration) -> Command {
        let over_deadline = elapsed >= self.settings.deadline;
        let state = std::mem::replace(&mut self.state, State::Done);
        let (next, command) = match (state, event) {
            (State::Idle, Event::Start) => (State::Reading, Command::ReadTokens),

            (State::Reading, Event::TokensRead(snapshot)) => match self.assess(snapshot, now) {
                Assessment::Final(outcome) => (State::Done, Command::Finish(outcome)),
                Assessment::Stale { .. } if over_deadline => {
                    (State::Done, Command::Finish(self.unavailable()))
                }
                Assessment::Stale { .. } => (State::Claiming, Command::ClaimLease),
            },

            (State::Claiming, Event::LeaseClaimed(true)) => {
                (State::ReadingUnderLease, Command::ReadTokens)
            }
            (State::Claiming, Event::LeaseClaimed(false)) if over_deadline => {
                (State::Done, Command::Finish(self.unavailable()))
            }
            (State::Claiming, Event::LeaseClaimed(false)) => {
                let remaining = self.settings.deadline.saturating_sub(elapsed);
                (
                    State::Waiting,
                    Command::WaitForHolder {
                        max_wait: remaining.min(self.settings.lease_ttl),
                    },
                )
            }
            (State::Waiting, Event::HolderWaitOver) => (State::Reading, Command::ReadTokens),

            (State::ReadingUnderLease, Event::TokensRead(snapshot)) => {
                match self.assess(snapshot, now) {
                    Assessment::Final(outcome) => (State::Done, Command::ReleaseAndFinish(outcome)),
                    Assessment::Stale { .. } if over_deadline => {
                        (State::Done, Command::ReleaseAndFinish(self.unavailable()))
                    }
                    Assessment::Stale {
                        current,
                        refresh_token,
                        version,
                    } => (
                        State::Calling {
                            current,
                            version,
                            attempt: 1,
                        },
                        Command::CallProvider { refresh_token },
                    ),
                }
            }

            (
                State::Calling {
                    current, version, ..
                },
                Event::ProviderGranted(granted),
            ) => {
                let tokens = current.merge_refreshed(granted);
                (
                    State::Persisting {
                        tokens: tokens.clone(),
                        version,
                        attempt: 1,
                        since: elapsed,
                    },
                    Command::Persist {
                        tokens,
                        expected_version: version,
                        after: Duration::ZERO,
                        within: self.settings.persist_deadline,
                    },
                )
            }
            (
                State::Calling {
                    current,
                    version,
                    attempt,
                },
                Event::ProviderFailed { kind, jitter },
            ) => match kind {
                ProviderErrorKind::GrantRevoked => (
                    State::Revoking { version },
                    Command::MarkRevoked {
                        expected_version: version,
                    },
                ),
                ProviderErrorKind::Transient { retry_after } => {
                    self.last_retry_hint = retry_after.or(self.last_retry_hint);
                    let delay = self.settings.retry.delay(attempt, jitter, retry_after);
                    let out_of_attempts = attempt >= self.settings.retry.max_attempts;
                    if out_of_attempts || elapsed.saturating_add(delay) >= self.settings.deadline {
                        (State::Done, Command::ReleaseAndFinish(self.unavailable()))
                    } else {
                        (
                            State::BackingOff {
                                current,
                                version,
                                attempt,
                            },
                            Command::Sleep { duration: delay },
                        )
                    }
                }
                other => (
                    State::Done,
                    Command::ReleaseAndFinish(Outcome::ProviderRejected(other)),
                ),
            },
            (
                State::BackingOff {
                    current,
                    version,
                    attempt,
                },
                Event::Slept,
            ) => {
                let refresh_token = current.refresh_token.clone();
                match refresh_token {
                    Some(refresh_token) => (
                        State::Calling {
                            current,
                            version,
                            attempt: attempt + 1,
                        },
                        Command::CallProvider { refresh_token },
                    ),
                    None => (
                        State::Done,
                        Command::ReleaseAndFinish(Outcome::NoRefreshToken),
                    ),
                }
            }

            (State::Persisting { tokens, .. }, Event::Persisted(WriteResult::Replaced(v))) => (
                State::Done,
                Command::Finish(Outcome::Refreshed { tokens, version: v }),
            ),
            // Someone wrote while we held the lease (ours must have lapsed):
            // the store's tokens win; read them and decide again.
            (State::Persisting { .. }, Event::Persisted(WriteResult::LostRace)) => {
                (State::Reading, Command::ReadTokens)
            }
            // The outcome is unknown: write again (the compare-and-swap makes
            // a repeat harmless: if the first write landed, the repeat loses
            // the race and the re-read finds our tokens) until the persist
            // budget is spent. Only then are the new tokens given up.
            (
                State::Persisting {
                    tokens,
                    version,
                    attempt,
                    since,
                },
                Event::Persisted(WriteResult::Failed),
            ) => {
                let within = self
                    .settings
                    .persist_deadline
                    .saturating_sub(elapsed.saturating_sub(since));
                let after = persist_delay(attempt + 1);
                if after < within {
                    (
                        State::Persisting {
                            tokens: tokens.clone(),
                            version,
                            attempt: attempt + 1,
                            since,
                        },
                        Command::Persist {
                            tokens,
                            expected_version: version,
                            after,
                            within,
                        },
                    )
                } else {
                    // Not persisted means not refreshed (DESIGN.md §2).
                    (State::Done, Command::ReleaseAndFinish(self.unavailable()))
                }
            }

            (State::Revoking { .. }, Event::RevocationRecorded(WriteResult::Replaced(_))) => {
                (State::Done, Command::Finish(Outcome::Revoked))
            }
            (State::Revoking { .. }, Event::RevocationRecorded(WriteResult::LostRace)) => {
                // A newer grant (a fresh sign-in) was written meanwhile: judge that one.
                (State::Reading, Command::ReadTokens)
            }
            (State::Revoking { .. }, Event::RevocationRecorded(WriteResult::Failed)) => {
                // The grant is gone at the provider either way.
                (State::Done, Command::ReleaseAndFinish(Outcome::Revoked))
            }

            (State::Reading | State::Claiming | State::Waiting, Event::StoreFailed) => {
                (State::Done, Command::Finish(self.unavailable()))
            }
            (_, Event::StoreFailed) => (State::Done, Command::ReleaseAndFinish(self.unavailable())),
            // An event that does not fit the state is a driver bug; end safely
            // without touching tokens.
            (_, _) => (State::Done, Command::ReleaseAndFinish(self.unavailable())),
        };
        self.state = next;
        command
    }

    fn unavailable(&self) -> Outcome {
        Outcome::Unavailable {
            retry_after: self.last_retry_hint.unwrap_or(DEFAULT_RETRY_AFTER),
        }
    }

    fn assess(&self, snapshot: Option<TokenSnapshot>, now: UnixTime) -> Assessment {
        let Some(snapshot) = snapshot else {
            return Assessment::Final(Outcome::AccountMissing);
        };
        if snapshot.revoked {
            return Assessment::Final(Outcome::Revoked);
        }
        let Some(tokens) = snapshot.tokens else {
            return Assessment::Final(Outcome::Revoked);
        };
        if !self.settings.policy.is_stale(tokens.expires_at, now) {
            return Assessment::Final(Outcome::AlreadyFresh {
                tokens,
                version: snapshot.version,
            });
        }
        match tokens.refresh_token.clone() {
            Some(refresh_token) => Assessment::Stale {
                current: tokens,
                refresh_token,
                version: snapshot.version,
            },
            None => Assessment::Final(Outcome::NoRefreshToken),
        }
    }
}

enum Assessment {
    Final(Outcome),
    Stale {
        current: TokenSet,
        refresh_token: Secret,
        version: i64,
    },
}

mod breaker;
mod resolution;

pub use breaker::{CircuitBreaker, CircuitState};
pub use resolution::Resolution;

#[cfg(test)]
mod tests;
