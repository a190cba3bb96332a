//! The PostgreSQL backend.

use crate::crypto::KeyRing;
use crate::error::StoreError;
use crate::sql::{Dialect, SqlStore};
use crate::traits::Backend;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use std::str::FromStr as _;
use std::time::Duration;

/// A store in a PostgreSQL database (any number of authgate instances).
pub type PostgresStore = SqlStore<sqlx::Postgres>;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Default `application_name`, visible in `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "authgate";

impl SqlStore<sqlx::Postgres> {
    /// Connects to `postgres://…` / `postgresql://…` with a pool of 10
    /// connections and `application_name = authgate`. Does not migrate.
    pub async fn connect(url: &str, keys: KeyRing) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .application_name(DEFAULT_APPLICATION_NAME);
        Self::connect_with(options, keys, 10).await
    }

    /// Connects with explicit options (schema via `search_path`,
    /// `application_name`, …) and pool size. Dead connections are detected
    /// when taken from the pool and replaced, so the store recovers from a
    /// restarted server or terminated backends on its own.
    pub async fn connect_with(
        options: PgConnectOptions,
        keys: KeyRing,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool, keys))
    }
}

impl Dialect for sqlx::Postgres {
    const BACKEND: Backend = Backend::Postgres;
    // `now()` is the start of the (single-statement) transaction: a statement
    // that waited for a lock sees an earlier time, which only makes leases
    // look younger, never older.
    const NOW_MILLIS: &'static str = "CAST(FLOOR(EXTRACT(EPOCH FROM now()) * 1000) AS BIGINT)";

    fn migrator() -> &'static Migrator {
        &POSTGRES_MIGRATIONS
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}
