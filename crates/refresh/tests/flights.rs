//! Flight bookkeeping under failure: a refresher that panics must not leave
//! its account blocked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use authgate_core::provider_error::ProviderError;
use authgate_core::refresh::Outcome;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_oauth::TokenTypeHint;
use authgate_refresh::{Revocation, TokenRefresher};
use authgate_store::{NewAccount, NewUser};
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Panics on its first call, then grants.
struct PanicsOnce(AtomicU32);

#[async_trait]
impl TokenRefresher for PanicsOnce {
    async fn refresh(&self, _: &str, _: &Secret, now: UnixTime) -> Result<TokenSet, ProviderError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a bug in a provider adapter");
        }
        Ok(TokenSet {
            access_token: Secret::new("fresh"),
            refresh_token: Some(Secret::new("rt-2")),
            expires_at: Some(UnixTime::from_secs(now.as_secs() + 3600)),
            token_type: Some("Bearer".into()),
            scope: None,
            id_token: None,
        })
    }

    async fn revoke(
        &self,
        _: &str,
        _: &Secret,
        _: TokenTypeHint,
    ) -> Result<Revocation, ProviderError> {
        Ok(Revocation::Unsupported)
    }
}

#[tokio::test]
async fn a_panicking_flight_does_not_block_the_account_afterwards() {
    let (_dir, store) = sqlite_store().await;
    let user = store.create_user(NewUser::default()).await.unwrap();
    let account = store
        .link_account(NewAccount {
            user_id: user.id,
            kind: "oidc".into(),
            provider: "op".into(),
            provider_account_id: "sub-1".into(),
            tokens: TokenSet {
                access_token: Secret::new("stale"),
                refresh_token: Some(Secret::new("rt-1")),
                expires_at: Some(UnixTime::from_secs(1)),
                token_type: None,
                scope: None,
                id_token: None,
            },
            session_state: None,
        })
        .await
        .unwrap();
    let refresher = Arc::new(PanicsOnce(AtomicU32::new(0)));
    let svc = service(
        Arc::clone(&store),
        refresher.clone(),
        polling(),
        settings(),
        lenient_breaker(),
        "flights",
    );

    let first = svc.refresh(&account.id, "op").await;
    assert!(matches!(first, Outcome::Unavailable { .. }), "{first:?}");
    // The lease of the panicked flight lapses; then a new flight refreshes.
    let mut outcome = first;
    for _ in 0..40 {
        outcome = svc.refresh(&account.id, "op").await;
        if matches!(outcome, Outcome::Refreshed { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(matches!(outcome, Outcome::Refreshed { .. }), "{outcome:?}");
    assert_eq!(
        refresher.0.load(Ordering::SeqCst),
        2,
        "one panicked call, one grant"
    );
}
