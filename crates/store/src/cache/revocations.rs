//! Revoked session ids, remembered for the session lifetime.
//!
//! A JWT session is a cookie the gateway cannot take back; its record in the
//! store is what a revocation ends. Checking the record costs a database
//! query, so by default the gateway checks it only when it consults the
//! store anyway (at a refresh). A [`RevocationSet`] makes a check on every
//! request cheap: one cache lookup. Entries live as long as a session can
//! (the session max age): a revoked session's cookie cannot outlive that.
//!
//! The set is an accelerator, never the source of truth: a revocation it
//! missed (Redis down, an in-process set on another instance, an evicted
//! entry) is still caught by the store check at the next refresh.

use super::connection::{RedisConnection, RedisEndpoint};
use super::redis::lazy_connection;
use super::{CacheError, CacheOptions};
use crate::model::SessionId;
use async_trait::async_trait;
use moka::future::Cache;
use std::sync::Arc;
use std::time::Duration;

/// A set of revoked session ids whose entries expire after the session
/// lifetime.
#[async_trait]
pub trait RevocationSet: Send + Sync + std::fmt::Debug {
    /// Short name for logs and metric labels (`memory`, `redis`).
    fn kind(&self) -> &'static str;
    /// Remembers that these sessions are revoked.
    async fn insert(&self, ids: &[SessionId]) -> Result<(), CacheError>;
    /// Whether `id` was revoked (within the set's lifetime).
    async fn contains(&self, id: &SessionId) -> Result<bool, CacheError>;
}

/// Opens the revocation set for `[cache] url`: in-process for `memory://`,
/// shared by every instance for a Redis URL (keys
/// `<prefix>revoked:<sid>`). Entries live for `lifetime` (the session max
/// age).
pub fn open_revocation_set(
    url: &str,
    options: &CacheOptions,
    lifetime: Duration,
) -> Result<Arc<dyn RevocationSet>, CacheError> {
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("memory") => Ok(Arc::new(MemoryRevocations::new(
            lifetime,
            options.max_entries,
        ))),
        Some("redis" | "rediss" | "redis+sentinel" | "rediss+sentinel") => {
            Ok(Arc::new(RedisRevocations::on(
                &RedisEndpoint::new(url, options.redis_ca.as_deref())?,
                &options.key_prefix,
                lifetime,
            )?))
        }
        _ => Err(CacheError::UnsupportedUrl(url.to_owned())),
    }
}

/// An in-process revocation set (one instance only: other instances do not
/// see its entries).
#[derive(Clone)]
pub struct MemoryRevocations {
    revoked: Cache<String, ()>,
}

impl std::fmt::Debug for MemoryRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocations")
            .field("entries", &self.revoked.entry_count())
            .finish()
    }
}

impl MemoryRevocations {
    /// A set whose entries live for `lifetime`, holding at most
    /// `max_entries` (beyond that the least useful entries are dropped, and
    /// those sessions are caught at their next store check instead).
    pub fn new(lifetime: Duration, max_entries: u64) -> Self {
        Self {
            revoked: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(lifetime)
                .build(),
        }
    }
}

#[async_trait]
impl RevocationSet for MemoryRevocations {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn insert(&self, ids: &[SessionId]) -> Result<(), CacheError> {
        for id in ids {
            self.revoked.insert(id.as_str().to_owned(), ()).await;
        }
        Ok(())
    }

    async fn contains(&self, id: &SessionId) -> Result<bool, CacheError> {
        Ok(self.revoked.contains_key(id.as_str()))
    }
}

/// A revocation set in Redis, shared by every instance: `SET
/// <prefix>revoked:<sid> 1 PX <lifetime>`, looked up with `EXISTS`.
#[derive(Clone)]
pub struct RedisRevocations {
    connection: RedisConnection,
    prefix: String,
    lifetime_millis: u64,
}

impl std::fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("prefix", &self.prefix)
            .field("lifetime_millis", &self.lifetime_millis)
            .finish()
    }
}

impl RedisRevocations {
    /// Prepares a set on the Redis at `url` with keys under `key_prefix`.
    /// Must be called inside a Tokio runtime. Does not connect yet.
    pub fn open(url: &str, key_prefix: &str, lifetime: Duration) -> Result<Self, CacheError> {
        Self::on(&RedisEndpoint::new(url, None)?, key_prefix, lifetime)
    }

    /// Prepares a set on `endpoint` with keys under `key_prefix`. Must be
    /// called inside a Tokio runtime. Does not connect yet.
    pub fn on(
        endpoint: &RedisEndpoint,
        key_prefix: &str,
        lifetime: Duration,
    ) -> Result<Self, CacheError> {
        Ok(Self {
            connection: lazy_connection(endpoint)?,
            prefix: key_prefix.to_owned(),
            lifetime_millis: u64::try_from(lifetime.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        })
    }

    fn key(&self, id: &SessionId) -> String {
        format!("{}revoked:{}", self.prefix, id.as_str())
    }
}

#[async_trait]
impl RevocationSet for RedisRevocations {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn insert(&self, ids: &[SessionId]) -> Result<(), CacheError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("SET")
                .arg(self.key(id))
                .arg(1)
                .arg("PX")
                .arg(self.lifetime_millis)
                .ignore();
        }
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    async fn contains(&self, id: &SessionId) -> Result<bool, CacheError> {
        let mut connection = self.connection.clone();
        let found: i64 = redis::cmd("EXISTS")
            .arg(self.key(id))
            .query_async(&mut connection)
            .await?;
        Ok(found > 0)
    }
}
