//! Caches in front of the store, chosen by `[cache] url`.
//!
//! * `memory://` — an in-process, bounded [moka](https://docs.rs/moka) cache
//!   with a TTL ([`MemoryCache`]).
//! * `redis://host:port[/db]` — a shared Redis cache with a key prefix and a
//!   TTL ([`RedisCache`]); `rediss://…` over TLS (system roots, or the PEM
//!   CA in [`CacheOptions::redis_ca`]); `redis+sentinel://h1,h2/master[/db]`
//!   and `rediss+sentinel://…` through Redis Sentinel, following failovers
//!   ([`RedisEndpoint`], [`RedisConnection`]).
//!
//! [`CachedStore`] wraps any [`crate::Store`] and serves session lookups and
//! token-set reads from the cache. The cache is never the source of truth:
//! entries carry the row's version and a write never replaces a newer entry
//! with an older one; when the cache fails, [`CachedStore`] logs a warning,
//! counts `authgate_cache_fallback_total{cache,op}` and uses the store.
//!
//! Code that must read and write the store itself (the refresh service: its
//! decisions never read a cache) tells the cache what it wrote through
//! [`TokenCache`], which [`CachedStore`] implements.
//!
//! A [`RevocationSet`] remembers revoked session ids for the session
//! lifetime, so that `[session] revocation_check = "request"` can ask "is
//! this sid revoked?" with one cache lookup per request
//! ([`MemoryRevocations`] in-process, [`RedisRevocations`] shared by every
//! instance). [`CachedStore::with_revocations`] adds every session it
//! revokes to one.

mod cached_store;
mod connection;
mod memory;
mod redis;
mod revocations;

pub use cached_store::CachedStore;
pub use connection::{MASTER_RECHECK, RedisConnection, RedisEndpoint};
pub use memory::MemoryCache;
pub use redis::RedisCache;
pub use revocations::{MemoryRevocations, RedisRevocations, RevocationSet, open_revocation_set};

use crate::model::{AccountId, VersionedTokens};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Why a cache operation failed. Never shown to end users: [`CachedStore`]
/// falls back to the store.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache URL's scheme is not `memory`, `redis`, `rediss`,
    /// `redis+sentinel` or `rediss+sentinel`.
    #[error(
        "unsupported cache url scheme in {0:?}: expected memory://, redis://, rediss://, redis+sentinel:// or rediss+sentinel://"
    )]
    UnsupportedUrl(String),
    /// A Redis URL (or its TLS trust) is malformed; says what to fix.
    #[error("{0}")]
    InvalidUrl(String),
    /// Redis failed (unreachable, timed out, or refused the command).
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// A cached value could not be parsed.
    #[error("cached value is malformed")]
    Malformed,
}

/// How caches are sized and how long entries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// Lifetime of every entry. Bounds how long another instance's write can
    /// stay invisible through an in-process cache.
    pub ttl: Duration,
    /// Most entries an in-process cache holds.
    pub max_entries: u64,
    /// Prefix of every Redis key (lets several deployments share a Redis).
    pub key_prefix: String,
    /// PEM certificates trusted for `rediss://` instead of the system roots
    /// (a private CA). `None`: the system roots.
    pub redis_ca: Option<Arc<[u8]>>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            max_entries: 100_000,
            key_prefix: "authgate:".to_owned(),
            redis_ca: None,
        }
    }
}

/// A versioned cache value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The version of the cached row; a put never replaces a higher version.
    pub version: i64,
    /// The serialized (and, for tokens, encrypted) value.
    pub value: Arc<[u8]>,
}

/// A key-value cache with versioned entries, as [`CachedStore`] needs it.
#[async_trait]
pub trait CacheBackend: Send + Sync {
    /// Short name for logs and metric labels (`memory`, `redis`).
    fn kind(&self) -> &'static str;
    /// The entry under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError>;
    /// Stores `entry` unless the cache already holds a higher version.
    async fn put_if_newer(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError>;
    /// Removes the entry under `key`.
    async fn remove(&self, key: &str) -> Result<(), CacheError>;
}

/// What a writer that goes to the store directly (bypassing any cache) tells
/// the caches in front of it, so that cached token sets follow the store.
///
/// The refresh service reads and writes the store itself — its decisions
/// must never rest on a cached copy — and reports every outcome here.
#[async_trait]
pub trait TokenCache: Send + Sync {
    /// The store holds `tokens` for `account` now (just written, or just
    /// read from the store): cache them, unless a newer version is cached.
    async fn publish_tokens(&self, account: &AccountId, tokens: &VersionedTokens);
    /// The cached copy of `account`'s tokens may be stale (a write whose
    /// outcome is unknown, or a lost compare-and-swap): drop it.
    async fn invalidate_tokens(&self, account: &AccountId);
    /// The cached copy of `account`'s tokens, if there is a usable one (never
    /// a store read: a miss is `None`). For the fast path only; refresh
    /// decisions read the store.
    async fn cached_tokens(&self, account: &AccountId) -> Option<VersionedTokens>;
}

/// The [`TokenCache`] of a deployment without a cache in front of the store:
/// there is nothing to keep in line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTokenCache;

#[async_trait]
impl TokenCache for NoTokenCache {
    async fn publish_tokens(&self, _: &AccountId, _: &VersionedTokens) {}
    async fn invalidate_tokens(&self, _: &AccountId) {}
    async fn cached_tokens(&self, _: &AccountId) -> Option<VersionedTokens> {
        None
    }
}

/// Opens the cache named by `url` (`memory://` or a Redis URL). A Redis cache
/// connects lazily: an unreachable Redis is not an error here, it makes every
/// lookup fall back to the store until Redis is back.
pub async fn open_cache(
    url: &str,
    options: &CacheOptions,
) -> Result<Arc<dyn CacheBackend>, CacheError> {
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("memory") => Ok(Arc::new(MemoryCache::new(options))),
        Some("redis" | "rediss" | "redis+sentinel" | "rediss+sentinel") => {
            Ok(Arc::new(RedisCache::open(url, options)?))
        }
        _ => Err(CacheError::UnsupportedUrl(url.to_owned())),
    }
}
