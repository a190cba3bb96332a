//! Hand-off between instances: who refreshes, and when the others may look.
//!
//! The store lease decides who refreshes; a [`RefreshSignal`] only makes the
//! rest fast. [`RedisSignal`] adds a Redis lock (so losers skip the store's
//! compare-and-swap) and publishes "account refreshed" so waiters on other
//! instances wake at once. [`PollingSignal`] is what runs without Redis: a
//! waiter re-reads the store every poll interval. When Redis fails,
//! `RedisSignal` degrades to exactly that, with a warning and a metric.
//!
//! A waiter subscribes *before* trying the lease, so an announcement made
//! between a failed claim and the wait is not lost.

use crate::metrics::FALLBACK;
use async_trait::async_trait;
use authgate_store::AccountId;
use authgate_store::cache::{CacheError, RedisConnection, RedisEndpoint};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Wakes waiters when a lease holder finishes, and offers a fast lock.
#[async_trait]
pub trait RefreshSignal: Send + Sync + std::fmt::Debug {
    /// Starts listening for `account`'s next announcement.
    fn subscribe(&self, account: &AccountId) -> SignalWaiter;
    /// Announces that a refresh of `account` finished (whatever its outcome).
    async fn publish(&self, account: &AccountId);
    /// A fast, advisory cross-instance lock: `Some(true)` taken,
    /// `Some(false)` held by someone else, `None` unknown (no Redis, or
    /// Redis failed). The store lease stays authoritative either way.
    async fn try_lock(&self, account: &AccountId, owner: &str, ttl: Duration) -> Option<bool>;
    /// Releases the fast lock if `owner` holds it.
    async fn unlock(&self, account: &AccountId, owner: &str);
}

/// A registered interest in one account's next announcement.
#[derive(Debug)]
pub struct SignalWaiter {
    rx: watch::Receiver<u64>,
    /// The longest single wait before re-reading the store anyway.
    poll: Duration,
}

impl SignalWaiter {
    /// Waits for the announcement, at most `max_wait` and at most the poll
    /// interval (a lost message or a dead Redis then costs one interval).
    pub async fn wait(mut self, max_wait: Duration) {
        let limit = max_wait.min(self.poll);
        let _ = tokio::time::timeout(limit, self.rx.changed()).await;
    }
}

/// In-process announcements, keyed by account.
#[derive(Debug, Default)]
struct Registry {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Registry {
    fn subscribe(&self, account: &str) -> watch::Receiver<u64> {
        let mut map = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        map.entry(account.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn notify(&self, account: &str) {
        let tx = self
            .senders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
        if let Some(tx) = tx {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// Signal without Redis: in-process announcements plus store polling.
#[derive(Debug)]
pub struct PollingSignal {
    registry: Registry,
    poll: Duration,
}

impl PollingSignal {
    /// Waiters re-read the store every `poll`.
    pub fn new(poll: Duration) -> Self {
        Self {
            registry: Registry::default(),
            poll,
        }
    }
}

#[async_trait]
impl RefreshSignal for PollingSignal {
    fn subscribe(&self, account: &AccountId) -> SignalWaiter {
        SignalWaiter {
            rx: self.registry.subscribe(account.as_str()),
            poll: self.poll,
        }
    }

    async fn publish(&self, account: &AccountId) {
        self.registry.notify(account.as_str());
    }

    async fn try_lock(&self, _: &AccountId, _: &str, _: Duration) -> Option<bool> {
        None
    }

    async fn unlock(&self, _: &AccountId, _: &str) {}
}

/// Signal over Redis: `SET NX PX` lock and `PUBLISH`/`PSUBSCRIBE`
/// announcements, falling back to polling while Redis is unreachable.
#[derive(Clone)]
pub struct RedisSignal {
    inner: Arc<RedisInner>,
}

struct RedisInner {
    commands: RedisConnection,
    prefix: String,
    registry: Registry,
    /// Whether the subscription is live (otherwise waiters poll quickly).
    subscribed: AtomicBool,
    /// Poll interval while subscribed (a safety net for lost messages).
    slow_poll: Duration,
    /// Poll interval while Redis is down.
    fast_poll: Duration,
    unlock_script: redis::Script,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for RedisSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSignal")
            .field("prefix", &self.inner.prefix)
            .field("subscribed", &self.inner.subscribed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for RedisInner {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// Redis commands must fail fast: a slow Redis must not slow refreshes.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

impl RedisSignal {
    /// Connects lazily to `url` (any Redis URL [`RedisEndpoint`] accepts,
    /// trusting the system roots for TLS; a Redis outage at start is not an
    /// error) and starts the subscription task. Keys and channels start with
    /// `prefix`.
    pub fn open(url: &str, prefix: &str, fast_poll: Duration) -> Result<Self, CacheError> {
        Self::on(&RedisEndpoint::new(url, None)?, prefix, fast_poll)
    }

    /// Like [`RedisSignal::open`], on a prepared endpoint (e.g. one trusting
    /// a private CA). Must be called inside a Tokio runtime.
    pub fn on(
        endpoint: &RedisEndpoint,
        prefix: &str,
        fast_poll: Duration,
    ) -> Result<Self, CacheError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let commands = endpoint.connect(config)?;
        let inner = Arc::new(RedisInner {
            commands,
            prefix: prefix.to_owned(),
            registry: Registry::default(),
            subscribed: AtomicBool::new(false),
            slow_poll: Duration::from_secs(1),
            fast_poll,
            unlock_script: redis::Script::new(
                "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
            ),
            listener: Mutex::new(None),
        });
        let task = tokio::spawn(listen(endpoint.clone(), Arc::downgrade(&inner)));
        *inner.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(Self { inner })
    }

    /// Whether the announcement subscription is currently live.
    pub fn is_subscribed(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed)
    }

    fn lock_key(&self, account: &AccountId) -> String {
        format!("{}lock:{}", self.inner.prefix, account.as_str())
    }

    fn channel(&self, account: &AccountId) -> String {
        format!("{}refreshed:{}", self.inner.prefix, account.as_str())
    }
}

fn fallback(reason: &'static str, error: &redis::RedisError) {
    tracing::warn!(%error, reason, "redis unavailable for refresh coordination; using the store lease alone");
    metrics::counter!(FALLBACK, "reason" => reason).increment(1);
}

/// Keeps a `PSUBSCRIBE` open, reconnecting with backoff, and forwards
/// announcements to in-process waiters. Ends when the signal is dropped.
async fn listen(endpoint: RedisEndpoint, inner: std::sync::Weak<RedisInner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(prefix) = inner.upgrade().map(|i| i.prefix.clone()) else {
            return;
        };
        let pattern = format!("{prefix}refreshed:*");
        let connected = tokio::time::timeout(REDIS_TIMEOUT * 2, async {
            let mut pubsub = endpoint.pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match connected {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                if let Some(i) = inner.upgrade() {
                    i.subscribed.store(true, Ordering::Relaxed);
                }
                let mut stream = pubsub.into_on_message();
                while let Some(msg) = stream.next().await {
                    let Some(i) = inner.upgrade() else { return };
                    let channel = msg.get_channel_name();
                    if let Some(account) = channel.strip_prefix(&format!("{prefix}refreshed:")) {
                        i.registry.notify(account);
                    }
                }
                if let Some(i) = inner.upgrade() {
                    i.subscribed.store(false, Ordering::Relaxed);
                }
                tracing::warn!(
                    "redis refresh subscription lost; waiters poll the store until it is back"
                );
                metrics::counter!(FALLBACK, "reason" => "subscription_lost").increment(1);
            }
            Ok(Err(error)) => fallback("subscribe", &error),
            Err(_) => {
                metrics::counter!(FALLBACK, "reason" => "subscribe_timeout").increment(1);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[async_trait]
impl RefreshSignal for RedisSignal {
    fn subscribe(&self, account: &AccountId) -> SignalWaiter {
        let poll = if self.is_subscribed() {
            self.inner.slow_poll
        } else {
            self.inner.fast_poll
        };
        SignalWaiter {
            rx: self.inner.registry.subscribe(account.as_str()),
            poll,
        }
    }

    async fn publish(&self, account: &AccountId) {
        // Local waiters first: they need no round trip.
        self.inner.registry.notify(account.as_str());
        let mut conn = self.inner.commands.clone();
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(self.channel(account))
            .arg(1)
            .query_async(&mut conn)
            .await;
        if let Err(error) = published {
            fallback("publish", &error);
        }
    }

    async fn try_lock(&self, account: &AccountId, owner: &str, ttl: Duration) -> Option<bool> {
        let mut conn = self.inner.commands.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let answer: Result<Option<String>, _> = redis::cmd("SET")
            .arg(self.lock_key(account))
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await;
        match answer {
            Ok(reply) => Some(reply.is_some()),
            Err(error) => {
                fallback("lock", &error);
                None
            }
        }
    }

    async fn unlock(&self, account: &AccountId, owner: &str) {
        let mut conn = self.inner.commands.clone();
        let released: Result<i64, _> = self
            .inner
            .unlock_script
            .key(self.lock_key(account))
            .arg(owner)
            .invoke_async(&mut conn)
            .await;
        if let Err(error) = released {
            fallback("unlock", &error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_announcement_after_subscribing_wakes_the_waiter() {
        let signal = PollingSignal::new(Duration::from_secs(30));
        let account = AccountId::new("acc-1");
        let waiter = signal.subscribe(&account);
        signal.publish(&account).await;
        let started = std::time::Instant::now();
        waiter.wait(Duration::from_secs(30)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn without_an_announcement_a_waiter_returns_after_the_poll_interval() {
        let signal = PollingSignal::new(Duration::from_millis(20));
        let started = std::time::Instant::now();
        signal
            .subscribe(&AccountId::new("acc-2"))
            .wait(Duration::from_secs(30))
            .await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
