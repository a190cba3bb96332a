//! The store's error type.

use crate::crypto::CryptoError;
use crate::model::AccountId;

/// Why a store operation failed. Messages never contain token values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL's scheme is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported store url scheme in {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// The store URL could not be parsed.
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// The database reported an error or could not be reached. The outcome of a
    /// write that fails this way is unknown: re-read before retrying.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A unique constraint refused the write (e-mail already used, provider
    /// account already linked).
    #[error("already exists: {0}")]
    AlreadyExists(&'static str),
    /// The referenced user does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The referenced account does not exist.
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    /// A stored token could not be decrypted (unknown key id, tampering, or a
    /// value moved from another row or column).
    #[error("token column {column} of account {account} cannot be decrypted: {source}")]
    Decrypt {
        /// The account row.
        account: AccountId,
        /// The column.
        column: &'static str,
        /// What went wrong.
        #[source]
        source: CryptoError,
    },
    /// A token could not be encrypted.
    #[error("token encryption failed: {0}")]
    Encrypt(#[source] CryptoError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.is_unique_violation() {
                return Self::AlreadyExists(unique_what(db.constraint(), db.message()));
            }
            if db.is_foreign_key_violation() {
                return Self::UserNotFound;
            }
        }
        Self::Database(error)
    }
}

fn unique_what(constraint: Option<&str>, message: &str) -> &'static str {
    let text = constraint.unwrap_or(message);
    if text.contains("email") {
        "a user with this email"
    } else if text.contains("provider") {
        "an account for this provider account id"
    } else {
        "a row with this key"
    }
}
