//! The in-process cache.

use super::{CacheBackend, CacheEntry, CacheError, CacheOptions};
use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::Op;

/// A bounded in-process cache (moka) whose entries expire after the TTL.
#[derive(Clone)]
pub struct MemoryCache {
    entries: Cache<String, CacheEntry>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A cache holding at most `options.max_entries` entries for `options.ttl`.
    pub fn new(options: &CacheOptions) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(options.max_entries)
                .time_to_live(options.ttl)
                .build(),
        }
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        Ok(self.entries.get(key).await)
    }

    async fn put_if_newer(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError> {
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|current| async move {
                match current {
                    Some(current) if current.value().version > entry.version => Op::Nop,
                    _ => Op::Put(entry),
                }
            })
            .await;
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key).await;
        Ok(())
    }
}
