//! authgate storage: the source of truth for users, provider accounts, their
//! (encrypted) tokens and database sessions.
//!
//! * [`Store`] is the whole interface as one object (`Arc<dyn Store>`); it is
//!   made of [`UserStore`], [`AccountStore`], [`TokenStore`],
//!   [`RefreshLeaseStore`] and [`SessionStore`].
//! * [`connect`] picks the backend from the URL: [`SqliteStore`]
//!   (`sqlite://authgate.db`) or [`PostgresStore`] (`postgres://…`). Both
//!   run the same SQL (one implementation per trait, generic over a small
//!   [`Dialect`]) and ship their migrations in the binary
//!   ([`Store::migrate`]).
//! * Access, refresh and ID tokens are encrypted at rest with AES-256-GCM
//!   under a [`KeyRing`] derived from configuration secrets.
//! * Token writes are compare-and-swap on a version ([`ReplaceOutcome`]);
//!   the cross-instance refresh lease lives on the account row and is judged
//!   by the database's clock ([`HeldLease`]).
//! * Every sign-in, whatever the session strategy, leaves a
//!   [`SessionRecord`] that can be revoked for good ([`SessionStore`]).
//! * [`cache::CachedStore`] puts an in-process (moka) or Redis cache in front
//!   of any store, chosen by URL ([`cache::open_cache`]).
//! * [`sweep`] removes expired database sessions in the background.
//! * [`ImportStore`] writes rows brought over from another system with
//!   their own ids, insert-if-absent (`authgate import authjs`).
//!
//! Time is a parameter ([`UnixTime`]); the store never reads the instance's
//! clock (leases use the database's).
//! See `SCHEMA.md` for the tables and how they map to Auth.js's adapter schema.

pub mod cache;
pub mod crypto;
mod error;
mod model;
mod postgres;
mod sql;
mod sqlite;
pub mod sweep;
mod traits;

pub use authgate_core::time::UnixTime;
pub use crypto::{CryptoError, KeyRing};
pub use error::StoreError;
pub use model::{
    Account, AccountId, CreatedSession, HeldLease, Imported, ImportedAccount, ImportedSession,
    MAX_USER_AGENT_CHARS, NewAccount, NewSession, NewUser, RefreshLease, ReplaceOutcome,
    RevokedSession, Session, SessionExpiry, SessionId, SessionKind, SessionRecord, User, UserId,
    VersionedTokens, generate_session_token, session_token_hash,
};
pub use postgres::{DEFAULT_APPLICATION_NAME, PostgresStore};
pub use sql::{Dialect, SqlStore};
pub use sqlite::SqliteStore;
pub use traits::{
    AccountStore, Backend, ImportStore, RefreshLeaseStore, SessionStore, Store, TokenStore,
    UserStore,
};

use std::sync::Arc;

/// Opens the store named by `url`: `sqlite:…` for SQLite (the file is created
/// if missing), `postgres://…` or `postgresql://…` for PostgreSQL. Does not
/// apply migrations; call [`Store::migrate`].
pub async fn connect(url: &str, keys: KeyRing) -> Result<Arc<dyn Store>, StoreError> {
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("sqlite") => Ok(Arc::new(SqliteStore::open(url, keys).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PostgresStore::connect(url, keys).await?)),
        _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
    }
}

/// Opens the store named by `url` (as [`connect`]) with its import
/// operations ([`ImportStore`], for `authgate import`). Does not migrate.
pub async fn connect_for_import(
    url: &str,
    keys: KeyRing,
) -> Result<Arc<dyn ImportStore>, StoreError> {
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("sqlite") => Ok(Arc::new(SqliteStore::open(url, keys).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PostgresStore::connect(url, keys).await?)),
        _ => Err(StoreError::UnsupportedUrl(redact_url(url))),
    }
}

/// The URL without a password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://***@{}", &url[..start], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(redact_url("mysql://u:p@h/db"), "mysql://***@h/db");
        assert_eq!(redact_url("memory"), "memory");
    }
}
