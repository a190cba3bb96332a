//! The Redis cache.

use super::connection::{RedisConnection, RedisEndpoint};
use super::{CacheBackend, CacheEntry, CacheError, CacheOptions};
use async_trait::async_trait;
use redis::aio::ConnectionManagerConfig;
use std::time::Duration;

/// Stores `ARGV[1] .. ":" .. ARGV[2]` under `KEYS[1]` with a TTL of `ARGV[3]`
/// milliseconds, unless the current value's version (the digits before the
/// first `:`) is higher.
const PUT_IF_NEWER: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  if sep then
    local v = tonumber(string.sub(current, 1, sep - 1))
    if v and v > tonumber(ARGV[1]) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"#;

/// A Redis cache: values are `"<version>:<bytes>"` under `<prefix><key>` with
/// a TTL. The connection is made lazily and re-made after failures; commands
/// time out quickly so an outage costs little latency before the fallback.
#[derive(Clone)]
pub struct RedisCache {
    connection: RedisConnection,
    prefix: String,
    ttl_millis: u64,
    put_script: redis::Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("ttl_millis", &self.ttl_millis)
            .finish()
    }
}

impl RedisCache {
    /// Prepares a cache on the Redis at `url` (`redis://host:port[/db]`,
    /// `rediss://…`, `redis+sentinel://…`; TLS trusts `options.redis_ca` when
    /// set). Must be called inside a Tokio runtime. Does not connect yet.
    pub fn open(url: &str, options: &CacheOptions) -> Result<Self, CacheError> {
        let endpoint = RedisEndpoint::new(url, options.redis_ca.as_deref())?;
        Self::on(&endpoint, options)
    }

    /// Prepares a cache on `endpoint`. Must be called inside a Tokio runtime.
    pub fn on(endpoint: &RedisEndpoint, options: &CacheOptions) -> Result<Self, CacheError> {
        Ok(Self {
            connection: lazy_connection(endpoint)?,
            prefix: options.key_prefix.clone(),
            ttl_millis: u64::try_from(options.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            put_script: redis::Script::new(PUT_IF_NEWER),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// A lazily made, self-healing connection whose commands time out quickly,
/// so that an outage costs little latency before the caller falls back.
pub(super) fn lazy_connection(endpoint: &RedisEndpoint) -> Result<RedisConnection, CacheError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100));
    endpoint.connect(config)
}

fn parse_entry(raw: &[u8]) -> Result<CacheEntry, CacheError> {
    let sep = raw
        .iter()
        .position(|&b| b == b':')
        .ok_or(CacheError::Malformed)?;
    let version = std::str::from_utf8(&raw[..sep])
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or(CacheError::Malformed)?;
    Ok(CacheEntry {
        version,
        value: raw[sep + 1..].into(),
    })
}

#[async_trait]
impl CacheBackend for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let mut connection = self.connection.clone();
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut connection)
            .await?;
        raw.as_deref().map(parse_entry).transpose()
    }

    async fn put_if_newer(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _stored: i64 = self
            .put_script
            .key(self.key(key))
            .arg(entry.version)
            .arg(&*entry.value)
            .arg(self.ttl_millis)
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _removed: i64 = redis::cmd("DEL")
            .arg(self.key(key))
            .query_async(&mut connection)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_version_and_value() {
        let e = parse_entry(b"42:v1.abc:def").unwrap();
        assert_eq!(e.version, 42);
        assert_eq!(&*e.value, b"v1.abc:def");
        assert!(parse_entry(b"nope").is_err());
        assert!(parse_entry(b"x:1").is_err());
    }
}
