//! Background refresh (`[refresh] mode = "background"`): accounts seen on
//! recent requests are refreshed ahead of expiry, so requests never wait for
//! the provider.
//!
//! Every allowed request notes its account here. A ticker refreshes the
//! accounts whose tokens go stale within [`LEAD`] (through the refresh
//! service, so the usual single flight and lease apply), and a request whose
//! cookie still carries the old expiry adopts the new one from this registry
//! — an in-memory lookup, no I/O.

use crate::session::CurrentSession;
use crate::state::Inner;
use authgate_core::refresh::Outcome;
use authgate_core::time::UnixTime;
use authgate_store::AccountId;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

/// How long before a token would be stale the background refresh runs.
pub const LEAD: Duration = Duration::from_secs(15);
/// Accounts not seen for this long are no longer refreshed.
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// How often the ticker looks.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    provider: String,
    expires_at: Option<UnixTime>,
    last_seen: UnixTime,
    in_flight: bool,
}

/// Accounts of active sessions and their latest known token expiry.
#[derive(Debug, Default)]
pub(crate) struct ActiveAccounts {
    map: Mutex<HashMap<String, Entry>>,
}

impl ActiveAccounts {
    /// Adopts a later expiry known here (refreshed in the background) into
    /// `session`; returns whether it changed.
    pub fn adopt(&self, session: &mut CurrentSession, now: UnixTime) -> bool {
        let Some(account) = &session.account else {
            return false;
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = map.get_mut(account.id.as_str()) else {
            return false;
        };
        entry.last_seen = now;
        if entry.expires_at > session.access_expires_at {
            session.access_expires_at = entry.expires_at;
            return true;
        }
        false
    }

    /// Records an account seen on a request with its current expiry.
    pub fn remember(&self, session: &CurrentSession, now: UnixTime) {
        let Some(account) = &session.account else {
            return;
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(account.id.as_str().to_owned())
            .or_insert_with(|| Entry {
                provider: account.provider.clone(),
                expires_at: session.access_expires_at,
                last_seen: now,
                in_flight: false,
            });
        entry.last_seen = now;
        if session.access_expires_at > entry.expires_at {
            entry.expires_at = session.access_expires_at;
        }
    }

    /// Stops refreshing an account (its grant was revoked at sign-out).
    pub fn forget(&self, account: &AccountId) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account.as_str());
    }

    /// Accounts due for a refresh at `now`, marked in flight; idle ones are dropped.
    fn due(&self, inner: &Inner, now: UnixTime) -> Vec<(String, String)> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.last_seen >= now.saturating_sub(IDLE));
        let ahead = now.saturating_add(LEAD);
        map.iter_mut()
            .filter(|(_, e)| !e.in_flight && inner.settings.policy.is_stale(e.expires_at, ahead))
            .map(|(id, e)| {
                e.in_flight = true;
                (id.clone(), e.provider.clone())
            })
            .collect()
    }

    fn finish(&self, account: &str, outcome: &Outcome) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => {
                if let Some(e) = map.get_mut(account) {
                    e.in_flight = false;
                    e.expires_at = tokens.expires_at.max(e.expires_at);
                }
            }
            Outcome::Unavailable { .. } | Outcome::ProviderRejected(_) => {
                if let Some(e) = map.get_mut(account) {
                    e.in_flight = false;
                }
            }
            Outcome::Revoked | Outcome::NoRefreshToken | Outcome::AccountMissing => {
                map.remove(account);
            }
        }
    }
}

/// The ticker: runs until the gateway is dropped.
pub(crate) async fn run(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(gw) = inner.upgrade() else { return };
        let now = gw.clock.now();
        for (account, provider) in gw.active.due(&gw, now) {
            let gw = std::sync::Arc::clone(&gw);
            tokio::spawn(async move {
                let outcome = gw
                    .refresh
                    .refresh_ahead(&AccountId::new(account.clone()), &provider, LEAD)
                    .await;
                gw.active.finish(&account, &outcome);
            });
        }
    }
}
