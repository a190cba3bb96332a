//! [`CachedStore`]: a [`Store`] that answers hot reads from a cache.

use super::{CacheBackend, CacheEntry, CacheError, RevocationSet, TokenCache};
use crate::crypto::KeyRing;
use crate::error::StoreError;
use crate::model::{
    Account, AccountId, HeldLease, NewAccount, NewUser, RefreshLease, ReplaceOutcome, User, UserId,
    VersionedTokens,
};
use crate::traits::{AccountStore, Backend, RefreshLeaseStore, Store, TokenStore, UserStore};
use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

mod sessions;

/// A [`Store`] that serves session lookups and token-set reads from a cache.
///
/// * Session lookups: a hit is answered without touching the store (expiry is
///   still checked against `now`); `touch_session` writes to the store only
///   when the session is due for an extension. Sign-out leaves a tombstone.
/// * Token reads: the cached token set is encrypted with the same
///   [`KeyRing`] as the database (bound to the account), never plaintext.
/// * Writes go to the store first; the winner of a compare-and-swap replaces
///   the entry, a loser or an error removes it.
/// * Users, accounts, refresh leases and session records looked up by id
///   always go to the store (the lease and a record's liveness must be
///   decided by the source of truth).
/// * Revoking sessions leaves tombstones for the database-strategy ones and,
///   with [`CachedStore::with_revocations`], adds every revoked id to a
///   [`RevocationSet`].
/// * A cache failure never fails the call: it logs a warning, increments
///   `authgate_cache_fallback_total{cache,op}` and uses the store.
///
/// It is also the [`TokenCache`] of writers that bypass it (the refresh
/// service).
pub struct CachedStore {
    inner: Arc<dyn Store>,
    cache: Arc<dyn CacheBackend>,
    keys: KeyRing,
    revocations: Option<Arc<dyn RevocationSet>>,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("backend", &self.inner.backend())
            .field("cache", &self.cache.kind())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct CachedTokens {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_at: Option<i64>,
    token_type: Option<String>,
    scope: Option<String>,
    revoked_at: Option<i64>,
}

fn tokens_key(account: &AccountId) -> String {
    format!("tokens:{}", account.as_str())
}

fn tokens_aad(account: &AccountId, version: i64) -> Vec<u8> {
    format!("authgate/cache/tokens/{}/{version}", account.as_str()).into_bytes()
}

impl CachedStore {
    /// Puts `cache` in front of `inner`; `keys` encrypts cached token sets
    /// (use the store's key ring).
    pub fn new(inner: Arc<dyn Store>, cache: Arc<dyn CacheBackend>, keys: KeyRing) -> Self {
        Self {
            inner,
            cache,
            keys,
            revocations: None,
        }
    }

    /// Adds every session this store revokes to `revocations`.
    pub fn with_revocations(mut self, revocations: Arc<dyn RevocationSet>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// The cache in front of the store.
    pub fn cache(&self) -> &Arc<dyn CacheBackend> {
        &self.cache
    }

    fn fell_back(&self, op: &'static str, error: &CacheError) {
        let cache = self.cache.kind();
        tracing::warn!(cache, op, %error, "cache unavailable; using the store");
        metrics::counter!("authgate_cache_fallback_total", "cache" => cache, "op" => op)
            .increment(1);
    }

    fn count(&self, kind: &'static str, result: &'static str) {
        metrics::counter!(
            "authgate_cache_requests_total",
            "cache" => self.cache.kind(),
            "kind" => kind,
            "result" => result
        )
        .increment(1);
    }

    async fn cache_get(&self, op: &'static str, key: &str) -> Option<CacheEntry> {
        match self.cache.get(key).await {
            Ok(entry) => entry,
            Err(error) => {
                self.fell_back(op, &error);
                None
            }
        }
    }

    async fn cache_put(&self, op: &'static str, key: &str, entry: CacheEntry) {
        if let Err(error) = self.cache.put_if_newer(key, entry).await {
            self.fell_back(op, &error);
        }
    }

    async fn cache_remove(&self, op: &'static str, key: &str) {
        if let Err(error) = self.cache.remove(key).await {
            self.fell_back(op, &error);
        }
    }

    fn decode_tokens(&self, account: &AccountId, entry: &CacheEntry) -> Option<VersionedTokens> {
        let text = std::str::from_utf8(&entry.value).ok()?;
        let plain = self
            .keys
            .decrypt(text, &tokens_aad(account, entry.version))
            .ok()?;
        let cached: CachedTokens = serde_json::from_slice(&plain).ok()?;
        let tokens = match cached.access_token {
            Some(access) => Some(TokenSet {
                access_token: Secret::new(access),
                refresh_token: cached.refresh_token.map(Secret::new),
                id_token: cached.id_token.map(Secret::new),
                expires_at: cached.expires_at.map(UnixTime::from_secs),
                token_type: cached.token_type,
                scope: cached.scope,
            }),
            None => None,
        };
        Some(VersionedTokens {
            tokens,
            version: entry.version,
            revoked_at: cached.revoked_at.map(UnixTime::from_secs),
        })
    }

    async fn put_tokens(&self, op: &'static str, account: &AccountId, tokens: &VersionedTokens) {
        let t = tokens.tokens.as_ref();
        let cached = CachedTokens {
            access_token: t.map(|t| t.access_token.expose().to_owned()),
            refresh_token: t
                .and_then(|t| t.refresh_token.as_ref())
                .map(|s| s.expose().to_owned()),
            id_token: t
                .and_then(|t| t.id_token.as_ref())
                .map(|s| s.expose().to_owned()),
            expires_at: t.and_then(|t| t.expires_at).map(UnixTime::as_secs),
            token_type: t.and_then(|t| t.token_type.clone()),
            scope: t.and_then(|t| t.scope.clone()),
            revoked_at: tokens.revoked_at.map(UnixTime::as_secs),
        };
        let Ok(plain) = serde_json::to_vec(&cached) else {
            return;
        };
        let Ok(value) = self
            .keys
            .encrypt(&plain, &tokens_aad(account, tokens.version))
        else {
            return;
        };
        let entry = CacheEntry {
            version: tokens.version,
            value: value.into_bytes().into(),
        };
        self.cache_put(op, &tokens_key(account), entry).await;
    }

    /// Brings the cache in line with the result of a token write.
    async fn after_token_write(
        &self,
        op: &'static str,
        account: &AccountId,
        result: &Result<ReplaceOutcome, StoreError>,
        written: Option<&TokenSet>,
        revoked_at: Option<UnixTime>,
    ) {
        match result {
            Ok(ReplaceOutcome::Replaced { new_version }) => {
                let tokens = VersionedTokens {
                    tokens: written.cloned(),
                    version: *new_version,
                    revoked_at,
                };
                self.put_tokens(op, account, &tokens).await;
            }
            // Someone else wrote (perhaps through another instance's cache),
            // or the outcome is unknown: the entry may be stale.
            Ok(ReplaceOutcome::LostRace { .. }) | Err(_) => {
                self.cache_remove(op, &tokens_key(account)).await;
            }
        }
    }
}

#[async_trait]
impl UserStore for CachedStore {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.inner.create_user(user).await
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.inner.find_user(id).await
    }

    async fn update_user_profile(&self, id: &UserId, profile: NewUser) -> Result<User, StoreError> {
        self.inner.update_user_profile(id, profile).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.inner.find_user_by_email(email).await
    }
}

#[async_trait]
impl AccountStore for CachedStore {
    async fn link_account(&self, account: NewAccount) -> Result<Account, StoreError> {
        self.inner.link_account(account).await
    }

    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.inner.find_account(id).await
    }

    async fn find_account_by_provider(
        &self,
        provider: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.inner
            .find_account_by_provider(provider, provider_account_id)
            .await
    }

    async fn list_accounts_for_user(&self, user: &UserId) -> Result<Vec<Account>, StoreError> {
        self.inner.list_accounts_for_user(user).await
    }
}

#[async_trait]
impl TokenStore for CachedStore {
    async fn read_tokens(
        &self,
        account: &AccountId,
    ) -> Result<Option<VersionedTokens>, StoreError> {
        if let Some(tokens) = self.cached_tokens(account).await {
            return Ok(Some(tokens));
        }
        let tokens = self.inner.read_tokens(account).await?;
        if let Some(tokens) = &tokens {
            self.put_tokens("read_tokens", account, tokens).await;
        }
        Ok(tokens)
    }

    async fn replace_tokens(
        &self,
        account: &AccountId,
        expected_version: i64,
        tokens: &TokenSet,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError> {
        let result = self
            .inner
            .replace_tokens(account, expected_version, tokens, release_lease_of)
            .await;
        self.after_token_write("replace_tokens", account, &result, Some(tokens), None)
            .await;
        result
    }

    async fn mark_grant_revoked(
        &self,
        account: &AccountId,
        expected_version: i64,
        now: UnixTime,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError> {
        let result = self
            .inner
            .mark_grant_revoked(account, expected_version, now, release_lease_of)
            .await;
        self.after_token_write("mark_grant_revoked", account, &result, None, Some(now))
            .await;
        result
    }
}

#[async_trait]
impl TokenCache for CachedStore {
    async fn publish_tokens(&self, account: &AccountId, tokens: &VersionedTokens) {
        self.put_tokens("publish_tokens", account, tokens).await;
    }

    async fn cached_tokens(&self, account: &AccountId) -> Option<VersionedTokens> {
        let key = tokens_key(account);
        if let Some(entry) = self.cache_get("read_tokens", &key).await {
            if let Some(tokens) = self.decode_tokens(account, &entry) {
                self.count("tokens", "hit");
                return Some(tokens);
            }
            // Undecryptable (key rotated out) or malformed: drop it.
            self.cache_remove("read_tokens", &key).await;
        }
        self.count("tokens", "miss");
        None
    }

    async fn invalidate_tokens(&self, account: &AccountId) {
        self.cache_remove("invalidate_tokens", &tokens_key(account))
            .await;
    }
}

#[async_trait]
impl RefreshLeaseStore for CachedStore {
    async fn try_claim_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        self.inner
            .try_claim_refresh_lease(account, owner, ttl)
            .await
    }

    async fn renew_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        self.inner.renew_refresh_lease(account, owner, ttl).await
    }

    async fn release_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
    ) -> Result<bool, StoreError> {
        self.inner.release_refresh_lease(account, owner).await
    }

    async fn read_refresh_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<RefreshLease>, StoreError> {
        self.inner.read_refresh_lease(account).await
    }
}

#[async_trait]
impl Store for CachedStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }

    async fn reencrypt_all(&self) -> Result<u64, StoreError> {
        self.inner.reencrypt_all().await
    }
}
