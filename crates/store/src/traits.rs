//! What the rest of authgate needs from storage, as object-safe async traits.
//!
//! Every method takes the current time as a parameter when it needs one; the
//! store never reads the clock.

use crate::error::StoreError;
use crate::model::{
    Account, AccountId, CreatedSession, NewAccount, NewUser, RefreshLease, ReplaceOutcome, Session,
    SessionExpiry, User, UserId, VersionedTokens,
};
use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;

/// Users (Auth.js `createUser`, `getUser`, `getUserByEmail`).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user with a fresh id. Fails with
    /// [`StoreError::AlreadyExists`] when the e-mail is taken.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    /// The user with this id.
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// The user with this e-mail address (exact match).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Replaces a user's profile (name, e-mail, image) with what the provider
    /// said at the latest sign-in. Fails with [`StoreError::UserNotFound`], or
    /// [`StoreError::AlreadyExists`] when the e-mail belongs to another user.
    async fn update_user_profile(&self, id: &UserId, profile: NewUser) -> Result<User, StoreError>;
}

/// Provider accounts (Auth.js `linkAccount`, `getUserByAccount`).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Links a provider account to a user and stores the sign-in's tokens
    /// (encrypted) at version 1. Fails with [`StoreError::UserNotFound`] or
    /// [`StoreError::AlreadyExists`].
    async fn link_account(&self, account: NewAccount) -> Result<Account, StoreError>;
    /// The account with this id.
    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError>;
    /// The account for `(provider, provider_account_id)`.
    async fn find_account_by_provider(
        &self,
        provider: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>, StoreError>;
    /// All accounts of a user, ordered by provider.
    async fn list_accounts_for_user(&self, user: &UserId) -> Result<Vec<Account>, StoreError>;
}

/// Provider tokens, versioned for compare-and-swap.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The account's tokens and version; `None` when the account does not exist.
    async fn read_tokens(&self, account: &AccountId)
    -> Result<Option<VersionedTokens>, StoreError>;

    /// Replaces the account's tokens if its version is still
    /// `expected_version` (compare-and-swap; never a blind overwrite). On
    /// success the version is incremented, `revoked_at` is cleared (new tokens
    /// are a new grant) and, when `release_lease_of` names the current lease
    /// owner, the refresh lease is released in the same statement.
    ///
    /// An `Err` means the outcome is unknown (for example the connection
    /// dropped): re-read before retrying.
    async fn replace_tokens(
        &self,
        account: &AccountId,
        expected_version: i64,
        tokens: &TokenSet,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError>;

    /// Records that the provider revoked the grant (`invalid_grant`): clears the
    /// tokens, sets `revoked_at = now`, increments the version, and optionally
    /// releases the lease. Compare-and-swap like
    /// [`TokenStore::replace_tokens`], so a grant obtained by a newer sign-in
    /// is never wiped by a stale refresh failure.
    async fn mark_grant_revoked(
        &self,
        account: &AccountId,
        expected_version: i64,
        now: UnixTime,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError>;

    /// Drops any cached copy of the account's tokens, so the next read sees
    /// the store (a refresher that found newer tokens in the store than in
    /// a cache calls this). A no-op for stores without a cache.
    async fn forget_cached_tokens(&self, _account: &AccountId) {}
}

/// The cross-instance refresh lease kept on the account row (DESIGN.md §4).
#[async_trait]
pub trait RefreshLeaseStore: Send + Sync {
    /// Claims the lease for `owner` until `until` if nobody holds it, the
    /// holder's lease has lapsed (`refresh_lease_until <= now`), or `owner`
    /// already holds it. Returns whether `owner` holds it now.
    async fn try_claim_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Extends `owner`'s lease to `until`; `false` when `owner` no longer holds it.
    async fn renew_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        until: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up without writing tokens (for example after a
    /// transient provider failure); `false` when `owner` did not hold it.
    async fn release_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
    ) -> Result<bool, StoreError>;
    /// The current lease, if any (it may have lapsed; compare `until` with now).
    async fn read_refresh_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<RefreshLease>, StoreError>;
}

/// Database sessions (`[session] strategy = "database"`; Auth.js
/// `createSession`, `getSessionAndUser`, `updateSession`, `deleteSession`).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session with a random 256-bit token for `user`, signed in
    /// with `account`; only the token's SHA-256 is stored.
    async fn create_session(
        &self,
        user: &UserId,
        account: Option<&AccountId>,
        now: UnixTime,
        expires: UnixTime,
    ) -> Result<CreatedSession, StoreError>;
    /// The session for a cookie token, unless it does not exist or has expired
    /// (`expires <= now`).
    async fn find_session(
        &self,
        token: &Secret,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError>;
    /// Looks a session up and slides its expiry with Auth.js `updateAge`
    /// semantics: `expires` becomes `now + max_age` only when the last write is
    /// at least `update_age` old, so a busy session is written at most once per
    /// interval. Returns the (possibly extended) session, or `None` when it
    /// does not exist or has expired.
    async fn touch_session(
        &self,
        token: &Secret,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<Session>, StoreError>;
    /// Deletes a session (sign-out); `false` when there was none.
    async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError>;
    /// Deletes every session that has expired at `now`; returns how many.
    async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError>;
}

/// Which database a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (single instance).
    Sqlite,
    /// PostgreSQL server (any number of instances).
    Postgres,
}

/// Everything storage offers, as one object: `Arc<dyn Store>`.
#[async_trait]
pub trait Store: UserStore + AccountStore + TokenStore + RefreshLeaseStore + SessionStore {
    /// Which database this is.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations that have not been applied yet
    /// (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Re-encrypts every stored token that is not under the newest key;
    /// returns how many account rows were rewritten. Versions do not change;
    /// a row written concurrently is skipped (the writer used the newest key).
    async fn reencrypt_all(&self) -> Result<u64, StoreError>;
}
