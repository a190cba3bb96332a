//! The SQL implementation shared by both backends.
//!
//! SQLite and PostgreSQL run the same statements (both accept `$n`
//! placeholders, `RETURNING`, and quoted camel-case column names), so each
//! store trait is implemented once, generic over a small [`Dialect`] that
//! says what differs: the backend's name, the expression for the database's
//! clock, the migrations, and how a statement's row count is read.
//! `sqlite.rs` and `postgres.rs` implement it and
//! connect; the trait implementations live beside the tables they touch:
//!
//! | file | traits |
//! |---|---|
//! | `accounts.rs` | [`UserStore`](crate::UserStore), [`AccountStore`](crate::AccountStore) |
//! | `tokens.rs` | [`TokenStore`](crate::TokenStore), [`RefreshLeaseStore`](crate::RefreshLeaseStore) |
//! | `sessions.rs` | [`SessionStore`](crate::SessionStore) |
//! | `maintenance.rs` | [`Store`](crate::Store) (migrations, re-encryption) |
//! | `import.rs` | [`ImportStore`](crate::ImportStore) (`authgate import`: insert-if-absent with the source's ids) |
//!
//! Every implementation carries the same `where` clause: the sqlx facts
//! that hold for both backends (a pool executes queries; text and integers
//! encode, decode and are looked up by column name). Rust does not let a
//! trait imply them, so they are spelled out per impl.

mod accounts;
mod columns;
mod import;
mod maintenance;
mod sessions;
mod tokens;

use crate::crypto::KeyRing;
use crate::traits::Backend;
use sqlx::migrate::Migrator;

/// A store backed by a SQL database through an sqlx pool.
///
/// Use the aliases [`crate::SqliteStore`] and [`crate::PostgresStore`].
pub struct SqlStore<DB: sqlx::Database> {
    pub(crate) pool: sqlx::Pool<DB>,
    pub(crate) keys: KeyRing,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Wraps an existing pool. Call [`crate::Store::migrate`] before use.
    pub fn from_pool(pool: sqlx::Pool<DB>, keys: KeyRing) -> Self {
        Self { pool, keys }
    }

    /// The connection pool (for health checks and administration).
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }

    /// The key ring tokens are encrypted with.
    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }
}

/// What differs between the SQL backends; everything else is written once.
pub trait Dialect: sqlx::Database<Arguments: sqlx::IntoArguments<Self>> {
    /// Which backend this is.
    const BACKEND: Backend;
    /// A SQL expression (BIGINT) for the database's clock in epoch
    /// milliseconds. Leases are judged by it, so that instances whose wall
    /// clocks disagree still agree on who holds a lease.
    const NOW_MILLIS: &'static str;
    /// The embedded migrations.
    fn migrator() -> &'static Migrator;
    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// A statement built from constant SQL and the dialect's constant clock
/// expression (never from input).
fn with_clock<DB: Dialect>(template: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(template.replace("{now_ms}", DB::NOW_MILLIS))
}

/// Seconds of a `Duration` as the `i64` the columns use (saturating).
fn secs_i64(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds of a `Duration` as an `i64` (saturating).
fn millis_i64(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A non-negative millisecond count read from the database as a `Duration`.
fn millis(ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
