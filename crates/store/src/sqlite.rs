//! The SQLite backend: an embedded file, WAL mode, created on first use.

use crate::crypto::KeyRing;
use crate::error::StoreError;
use crate::sql::{Dialect, SqlStore};
use crate::traits::Backend;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use std::str::FromStr as _;
use std::time::Duration;

/// A store in a SQLite file (the embedded default; single instance).
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for a competing writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqlStore<sqlx::Sqlite> {
    /// Opens (creating if missing) the SQLite database named by `url`:
    /// `sqlite://authgate.db` (relative to the working directory),
    /// `sqlite:///abs/path.db`, or `sqlite::memory:`. Sets WAL journal mode,
    /// `synchronous = NORMAL`, foreign keys and a busy timeout. Does not migrate.
    pub async fn open(url: &str, keys: KeyRing) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        Self::open_with(options, keys, if in_memory { 1 } else { 8 }).await
    }

    /// Opens a SQLite database with explicit options and pool size.
    pub async fn open_with(
        options: SqliteConnectOptions,
        keys: KeyRing,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            // An in-memory database lives as long as its connection.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool, keys))
    }
}

impl Dialect for sqlx::Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    // `unixepoch('subsec')` (SQLite 3.42+; sqlx bundles a newer one) is
    // constant within one statement.
    const NOW_MILLIS: &'static str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

    fn migrator() -> &'static Migrator {
        &SQLITE_MIGRATIONS
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}
