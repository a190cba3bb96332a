//! What the rest of authgate needs from storage, as object-safe async traits.
//!
//! Every method takes the current time as a parameter when it needs one,
//! except the refresh lease: leases are judged by the database's own clock
//! (SQL `now()`), so that instances with skewed wall clocks agree on who
//! holds one. The store never reads the instance's clock.

use crate::error::StoreError;
use crate::model::{
    Account, AccountId, CreatedSession, HeldLease, Imported, ImportedAccount, ImportedSession,
    NewAccount, NewSession, NewUser, RefreshLease, ReplaceOutcome, RevokedSession, Session,
    SessionExpiry, SessionId, SessionRecord, User, UserId, VersionedTokens,
};
use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use std::time::Duration;

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
}

/// The cross-instance refresh lease kept on the account row (DESIGN.md §4).
///
/// Lease times are the database's clock (`now()` on PostgreSQL,
/// `unixepoch('subsec')` on SQLite), never the callers': an instance whose
/// clock is off cannot judge another instance's lease lapsed early.
#[async_trait]
pub trait RefreshLeaseStore: Send + Sync {
    /// Claims the lease for `owner` for `ttl` (rounded up to whole seconds
    /// of the store's clock) if nobody holds it, the holder's lease has
    /// lapsed, or `owner` already holds it (so a claim whose answer was lost
    /// can simply be repeated). `Some` when `owner` holds it now.
    async fn try_claim_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError>;
    /// Extends `owner`'s lease to `ttl` from now; `None` when `owner` no
    /// longer holds it.
    async fn renew_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError>;
    /// Gives the lease up without writing tokens (for example after a
    /// transient provider failure); `false` when `owner` did not hold it.
    async fn release_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
    ) -> Result<bool, StoreError>;
    /// The current lease, if any (it may have lapsed: see
    /// [`RefreshLease::remaining`]).
    async fn read_refresh_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<RefreshLease>, StoreError>;
}

/// Session records, for both strategies (`[session] strategy = "jwt"` and
/// `"database"`; Auth.js `createSession`, `getSessionAndUser`,
/// `updateSession`, `deleteSession`).
///
/// Every sign-in creates a record with a random id (`sid`). A JWT session's
/// cookie carries the id; a database session's cookie carries a random token
/// whose SHA-256 the record keeps. A revoked record is never live again: a
/// new sign-in creates a new record.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Records a JWT-strategy sign-in (no token): the returned record's id
    /// is the `sid` the cookie carries.
    async fn create_jwt_session(&self, new: NewSession) -> Result<SessionRecord, StoreError>;
    /// Records a JWT-strategy session under a caller-chosen `id` (an
    /// adopted Auth.js session, whose id is derived from what it adopted):
    /// a create-once. Fails with [`StoreError::AlreadyExists`] when a record
    /// with this id exists, live, revoked or expired — never overwrites it.
    async fn create_jwt_session_with_id(
        &self,
        id: SessionId,
        new: NewSession,
    ) -> Result<SessionRecord, StoreError>;
    /// Records a database-strategy sign-in with a random 256-bit token for
    /// the cookie; only the token's SHA-256 is stored.
    async fn create_database_session(&self, new: NewSession) -> Result<CreatedSession, StoreError>;
    /// [`SessionStore::create_database_session`] without a user agent.
    async fn create_session(
        &self,
        user: &UserId,
        account: Option<&AccountId>,
        now: UnixTime,
        expires: UnixTime,
    ) -> Result<CreatedSession, StoreError> {
        self.create_database_session(NewSession {
            user_id: user.clone(),
            account_id: account.cloned(),
            now,
            expires,
            user_agent: None,
            provider_sid: None,
        })
        .await
    }
    /// The database session for a cookie token, unless it does not exist,
    /// was revoked or has expired (`expires <= now`).
    async fn find_session(
        &self,
        token: &Secret,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError>;
    /// Looks a database session up and slides its expiry with Auth.js
    /// `updateAge` semantics: `expires` becomes `now + max_age` (and
    /// `last_seen_at` becomes `now`) only when the last write is at least
    /// `update_age` old, so a busy session is written at most once per
    /// interval. Returns the (possibly extended) session, or `None` when it
    /// does not exist, was revoked or has expired.
    async fn touch_session(
        &self,
        token: &Secret,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<Session>, StoreError>;
    /// Deletes a database session (sign-out); `false` when there was none.
    async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError>;
    /// Deletes every session record (both strategies, revoked or not) that
    /// has expired at `now`; returns how many.
    async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// The session record `id` if it is live at `now` (not revoked, not
    /// expired): one primary-key lookup.
    async fn find_live_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Like [`SessionStore::find_live_session`], and notes the visit: when
    /// the record was last written at least `expiry.update_age` ago,
    /// `last_seen_at` becomes `now` and `expires` becomes
    /// `now + expiry.max_age` (at most one write per interval).
    async fn touch_session_record(
        &self,
        id: &SessionId,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Every session record of a user that has not been swept yet (live,
    /// revoked or expired), newest first.
    async fn list_user_sessions(&self, user: &UserId) -> Result<Vec<SessionRecord>, StoreError>;
    /// Revokes one session; `None` when it does not exist or was already
    /// revoked.
    async fn revoke_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<RevokedSession>, StoreError>;
    /// Revokes every live session signed in with `account`; returns them.
    async fn revoke_account_sessions(
        &self,
        account: &AccountId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError>;
    /// Revokes every live session of `user`; returns them.
    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError>;
    /// Revokes every live session signed in with an account at `provider`
    /// whose sign-in recorded the provider's session id `provider_sid`
    /// (OpenID Connect Back-Channel Logout by `sid`); returns them.
    async fn revoke_provider_sessions(
        &self,
        provider: &str,
        provider_sid: &str,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError>;
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

/// Writing rows brought over from another system (`authgate import
/// authjs`) with the ids they had there. Every row is one insert-if-absent
/// statement and every call one transaction: running an import again, or
/// after an interruption (a batch is written whole or not at all), writes
/// only what is missing and never changes a row that is already there (even
/// one that changed since the first run). Results are in input order.
#[async_trait]
pub trait ImportStore: Store {
    /// Creates each user with its own id unless a user with this id exists
    /// ([`Imported::AlreadyPresent`]) or another user has its e-mail address
    /// ([`Imported::Conflict`]).
    async fn import_users(&self, users: &[User]) -> Result<Vec<Imported>, StoreError>;
    /// Creates each account with its tokens (encrypted, at version 1)
    /// unless its id or its provider account exists:
    /// [`Imported::AlreadyPresent`] when the existing row is this provider
    /// account of this user, [`Imported::Conflict`] otherwise. With each
    /// outcome, the id of the account in the store (the existing row's when
    /// already present). Fails with [`StoreError::UserNotFound`] (writing
    /// none of the batch) when a user does not exist.
    async fn import_accounts(
        &self,
        accounts: &[ImportedAccount],
    ) -> Result<Vec<(Imported, AccountId)>, StoreError>;
    /// Creates a database-session record (a fresh random id) for each token
    /// hash unless a record with this hash exists.
    async fn import_sessions(
        &self,
        sessions: &[ImportedSession],
    ) -> Result<Vec<Imported>, StoreError>;
    /// Whether a session record with this token hash exists (live or not).
    async fn session_token_exists(&self, token_hash: &str) -> Result<bool, StoreError>;
}
