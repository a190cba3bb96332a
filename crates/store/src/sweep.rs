//! The expired-session sweep: database sessions past their expiry are
//! never served (reads check `expires`), and this removes their rows so the
//! table does not grow for ever.
//!
//! Every instance may run it; the delete is idempotent. The number of rows
//! removed is counted in [`SESSIONS_EXPIRED_TOTAL`].

use crate::{Store, StoreError};
use authgate_core::time::{Clock, UnixTime};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Counter of expired database sessions removed by the sweep.
pub const SESSIONS_EXPIRED_TOTAL: &str = "authgate_sessions_expired_total";

/// How often the gateway sweeps: expired rows are harmless until removed,
/// so this only bounds how long they linger.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Deletes the sessions that have expired at `now` and counts them in
/// [`SESSIONS_EXPIRED_TOTAL`]; returns how many.
pub async fn sweep_expired_sessions(store: &dyn Store, now: UnixTime) -> Result<u64, StoreError> {
    let removed = store.delete_expired_sessions(now).await?;
    metrics::counter!(SESSIONS_EXPIRED_TOTAL).increment(removed);
    Ok(removed)
}

/// Starts a task that sweeps `store` every `interval` (the first sweep runs
/// right away). It stops when the store is dropped (the gateway owning it
/// went away). A failed sweep is logged and tried again next time. Call
/// within a Tokio runtime.
pub fn spawn_session_sweep(
    store: &Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let store: Weak<dyn Store> = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            match sweep_expired_sessions(&*store, clock.now()).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired sessions removed"),
                Err(error) => {
                    tracing::warn!(%error, "expired-session sweep failed; retrying later")
                }
            }
        }
    })
}
