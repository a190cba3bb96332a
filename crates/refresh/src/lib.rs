//! The refresh service: the one place that turns "this account's token is
//! stale" into a fresh token (DESIGN.md §2, §4).
//!
//! ```text
//! request ─► RefreshService::refresh(account)     sign-out ─► RefreshService::end_grant(account)
//!              │ in-process single flight per account (service.rs): concurrent
//!              │ callers share one task; a sign-out waits for it, then takes its turn
//!              ▼
//!            driver.rs ◄──► core::refresh::RefreshMachine (every decision, pure)
//!              │ executes commands:
//!              ├─ store (the store itself, never a cache): read tokens,
//!              │   claim/renew/release the lease (lease.rs; judged by the store's
//!              │   clock), persist with compare-and-swap; then tell the
//!              │   caches (TokenCache)
//!              ├─ signal: Redis lock + published result (fast hand-off between
//!              │          instances), or polling when there is no Redis
//!              └─ provider (provider.rs): the refresh grant (behind a per-provider
//!                         circuit breaker), revocation when a grant ends (end.rs)
//! ```
//!
//! Invariants and where they hold:
//! - **At most one refresh per account across all instances**: a provider call
//!   happens only under the store lease, after a re-read under that lease
//!   showed the tokens still stale; the lease is renewed while the call runs.
//!   Redis only filters and wakes; losing it costs latency (and a metric),
//!   never a second grant.
//! - **A refresh token is presented only under a lease the store vouches
//!   for** (`driver.rs::call_under_lease`, `lease.rs::LeaseHold`): leases are
//!   judged by the store's clock, never an instance's; the lease must be
//!   confirmed (within the last renewal interval) to hold for at least one
//!   more renewal interval; a store error while
//!   renewing never counts as "still held"; a claim whose answer was lost is
//!   repeated (idempotently) instead of blocking the account for a lease.
//! - **Persisted before used**: the outcome carries new tokens only after the
//!   store accepted the compare-and-swap write; a failed write of rotated
//!   tokens is retried with backoff for `RefreshSettings::persist_deadline`,
//!   the lease renewed throughout, before the tokens are given up.
//! - **A refresh is never cancelled halfway**: the flight runs in its own task,
//!   so a client that disconnects cannot abandon a rotated refresh token.
//! - **Ending a grant never races a rotation** (`end.rs`): it holds the same
//!   lease, so it revokes the newest refresh token.
//! - **Only a definitive answer ends a grant**: see `core::refresh`.

mod background;
mod driver;
mod end;
mod lease;
mod metrics;
mod provider;
mod service;
mod signal;

pub use authgate_core::refresh::{Outcome, RefreshSettings, Resolution, RetryPolicy};
/// The clock moved to `authgate-core`; re-exported for the refresh service's users.
pub use authgate_core::time::{Clock, SystemClock};
pub use background::{ActiveAccounts, IDLE, LEAD, TICK, spawn_background_refresh};
pub use provider::{CatalogRefresher, Revocation, TokenRefresher};
pub use service::{
    BreakerSettings, EndReason, GrantEnd, MIN_LEASE_TTL, RefreshDeps, RefreshService,
};
pub use signal::{PollingSignal, RedisSignal, RefreshSignal, SignalWaiter};

/// Prometheus metric names emitted by the refresh service.
pub mod metric_names {
    pub use crate::metrics::*;
}
