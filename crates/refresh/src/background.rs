//! Background refresh (`[refresh] mode = "background"`): accounts seen on
//! recent requests are refreshed ahead of expiry, so requests never wait for
//! the provider.
//!
//! Every allowed request notes its account in [`ActiveAccounts`]. A ticker
//! ([`spawn_background_refresh`]) refreshes the accounts whose tokens go
//! stale within [`LEAD`] (through the refresh service, so the usual single
//! flight and lease apply), and a request whose cookie still carries the old
//! expiry adopts the new one from the registry — an in-memory lookup, no I/O.

use crate::service::RefreshService;
use authgate_core::refresh::Resolution;
use authgate_core::time::{Clock, UnixTime};
use authgate_core::token::ExpiryPolicy;
use authgate_store::AccountId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long before a token would be stale the background refresh runs.
pub const LEAD: Duration = Duration::from_secs(15);
/// Accounts not seen for this long are no longer refreshed.
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// How often the ticker looks.
pub const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    provider: String,
    expires_at: Option<UnixTime>,
    last_seen: UnixTime,
    in_flight: bool,
}

/// Accounts of active sessions and their latest known token expiry.
#[derive(Debug, Default)]
pub struct ActiveAccounts {
    map: Mutex<HashMap<String, Entry>>,
}

impl ActiveAccounts {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A later expiry of `account`'s token known here (refreshed in the
    /// background) than `known`; marks the account as seen at `now`.
    pub fn newer_expiry(
        &self,
        account: &AccountId,
        known: Option<UnixTime>,
        now: UnixTime,
    ) -> Option<UnixTime> {
        let mut map = self.entries();
        let entry = map.get_mut(account.as_str())?;
        entry.last_seen = now;
        (entry.expires_at > known)
            .then_some(entry.expires_at)
            .flatten()
    }

    /// Records `account` (of `provider`) seen on a request at `now`, with
    /// the token expiry that request knew.
    pub fn remember(
        &self,
        account: &AccountId,
        provider: &str,
        expires_at: Option<UnixTime>,
        now: UnixTime,
    ) {
        let mut map = self.entries();
        let entry = map
            .entry(account.as_str().to_owned())
            .or_insert_with(|| Entry {
                provider: provider.to_owned(),
                expires_at,
                last_seen: now,
                in_flight: false,
            });
        entry.last_seen = now;
        if expires_at > entry.expires_at {
            entry.expires_at = expires_at;
        }
    }

    /// Stops refreshing an account (its grant was revoked at sign-out).
    pub fn forget(&self, account: &AccountId) {
        self.entries().remove(account.as_str());
    }

    /// Accounts due for a refresh at `now` under `policy`, marked in
    /// flight; idle ones are dropped.
    fn due(&self, policy: ExpiryPolicy, now: UnixTime) -> Vec<(String, String)> {
        let mut map = self.entries();
        map.retain(|_, e| e.last_seen >= now.saturating_sub(IDLE));
        let ahead = now.saturating_add(LEAD);
        map.iter_mut()
            .filter(|(_, e)| !e.in_flight && policy.is_stale(e.expires_at, ahead))
            .map(|(id, e)| {
                e.in_flight = true;
                (id.clone(), e.provider.clone())
            })
            .collect()
    }

    /// Records how a background refresh of `account` ended.
    fn finish(&self, account: &str, resolution: &Resolution) {
        let mut map = self.entries();
        if resolution.ends_grant() {
            map.remove(account);
        } else if let Some(e) = map.get_mut(account) {
            e.in_flight = false;
            if let Resolution::Fresh(tokens) = resolution {
                e.expires_at = tokens.expires_at.max(e.expires_at);
            }
        }
    }
}

/// Starts the ticker: every [`TICK`] it refreshes the due accounts of
/// `active` through `service`. It stops when `active` is dropped (the
/// gateway owning it went away). Call within a Tokio runtime.
pub fn spawn_background_refresh(
    service: RefreshService,
    active: &Arc<ActiveAccounts>,
    clock: Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    let active: Weak<ActiveAccounts> = Arc::downgrade(active);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(accounts) = active.upgrade() else {
                return;
            };
            let policy = service.settings().policy;
            for (account, provider) in accounts.due(policy, clock.now()) {
                let (service, accounts) = (service.clone(), Arc::clone(&accounts));
                tokio::spawn(async move {
                    let outcome = service
                        .refresh_ahead(&AccountId::new(account.clone()), &provider, LEAD)
                        .await;
                    accounts.finish(&account, &Resolution::from(outcome));
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use authgate_core::secret::Secret;
    use authgate_core::token::TokenSet;

    fn t(secs: i64) -> UnixTime {
        UnixTime::from_secs(1_000_000 + secs)
    }

    fn tokens(expires_at: UnixTime) -> TokenSet {
        TokenSet {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_at: Some(expires_at),
            token_type: None,
            scope: None,
            id_token: None,
        }
    }

    #[test]
    fn an_account_is_due_lead_before_it_goes_stale_and_once_at_a_time() {
        let active = ActiveAccounts::default();
        let policy = ExpiryPolicy {
            skew: Duration::from_secs(5),
        };
        let acc = AccountId::new("a");
        active.remember(&acc, "op", Some(t(100)), t(0));
        assert!(active.due(policy, t(0)).is_empty());
        let due = active.due(policy, t(100 - 5 - 15));
        assert_eq!(due, [("a".to_owned(), "op".to_owned())]);
        assert!(active.due(policy, t(90)).is_empty(), "in flight");
        active.finish("a", &Resolution::Fresh(tokens(t(400))));
        assert_eq!(active.newer_expiry(&acc, Some(t(100)), t(91)), Some(t(400)));
        assert_eq!(active.newer_expiry(&acc, Some(t(400)), t(91)), None);
    }

    #[test]
    fn an_ended_grant_or_an_idle_account_is_dropped() {
        let active = ActiveAccounts::default();
        let policy = ExpiryPolicy::default();
        let acc = AccountId::new("a");
        active.remember(&acc, "op", Some(t(0)), t(0));
        assert_eq!(active.due(policy, t(1)).len(), 1);
        active.finish("a", &Resolution::GrantEnded);
        assert_eq!(active.newer_expiry(&acc, None, t(2)), None);
        active.remember(&acc, "op", Some(t(0)), t(0));
        active.finish("a", &Resolution::RetryAfter(Duration::from_secs(1)));
        let later = t(0).saturating_add(IDLE + Duration::from_secs(1));
        assert!(active.due(policy, later).is_empty());
    }
}
