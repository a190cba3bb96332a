//! The refresh service: the one place that turns "this account's token is
//! stale" into a fresh token (DESIGN.md §2, §4).
//!
//! ```text
//! request ─► RefreshService::refresh(account)
//!              │ in-process single flight: concurrent callers share one task
//!              ▼
//!            driver ◄──────► core::refresh::RefreshMachine (every decision, pure)
//!              │ executes commands:
//!              ├─ store: read tokens, claim/renew/release the lease (compare-and-swap
//!              │         on the account row), persist with compare-and-swap
//!              ├─ signal: Redis lock + published result (fast hand-off between
//!              │          instances), or polling when there is no Redis
//!              └─ provider: the refresh grant (behind a per-provider circuit breaker)
//! ```
//!
//! Invariants and where they hold:
//! - **At most one refresh per account across all instances**: a provider call
//!   happens only under the store lease, after a re-read under that lease
//!   showed the tokens still stale; the lease is renewed while the call runs.
//!   Redis only filters and wakes; losing it costs latency (and a metric),
//!   never a second grant.
//! - **Persisted before used**: the outcome carries new tokens only after the
//!   store accepted the compare-and-swap write.
//! - **A refresh is never cancelled halfway**: the flight runs in its own task,
//!   so a client that disconnects cannot abandon a rotated refresh token.
//! - **Only a definitive answer ends a grant**: see `core::refresh`.

mod background;
mod metrics;
mod service;
mod signal;

pub use authgate_core::refresh::{Outcome, RefreshSettings, Resolution, RetryPolicy};
/// The clock moved to `authgate-core`; re-exported for the refresh service's users.
pub use authgate_core::time::{Clock, SystemClock};
pub use background::{ActiveAccounts, IDLE, LEAD, TICK, spawn_background_refresh};
pub use service::{
    BreakerSettings, CatalogRefresher, MIN_LEASE_TTL, RefreshDeps, RefreshService, TokenRefresher,
};
pub use signal::{PollingSignal, RedisSignal, RefreshSignal, SignalWaiter};

/// Prometheus metric names emitted by the refresh service.
pub mod metric_names {
    pub use crate::metrics::*;
}
