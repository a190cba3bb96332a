//! A Redis outage in the middle of use: our own redis-server (free port, no
//! persistence) is killed and restarted while a `CachedStore` is in use.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_store::cache::{CacheOptions, CachedStore, open_cache};
use authgate_store::{ReplaceOutcome, SessionExpiry, SessionStore, Store, TokenStore};
use common::{CountingStore, RedisServer, TestDb, account, keys, t, token_set};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Counts increments of `authgate_cache_fallback_total` (all label sets).
#[derive(Default)]
struct FallbackRecorder {
    fallbacks: Arc<AtomicU64>,
}

impl Recorder for FallbackRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() == "authgate_cache_fallback_total"
            && key
                .labels()
                .any(|l| l.key() == "cache" && l.value() == "redis")
        {
            Counter::from_arc(Arc::clone(&self.fallbacks))
        } else {
            Counter::noop()
        }
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn fallbacks() -> &'static AtomicU64 {
    static FALLBACKS: OnceLock<Arc<AtomicU64>> = OnceLock::new();
    FALLBACKS.get_or_init(|| {
        let recorder = FallbackRecorder::default();
        let counter = Arc::clone(&recorder.fallbacks);
        metrics::set_global_recorder(recorder).expect("only this test installs a recorder");
        counter
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_survive_a_redis_restart_and_the_cache_comes_back() {
    let fallbacks = fallbacks();
    let mut server = RedisServer::start();
    let db = TestDb::sqlite();
    let counting = CountingStore::new(db.open(keys()).await);
    let cache = open_cache(&server.url(), &CacheOptions::default())
        .await
        .unwrap();
    let inner: Arc<dyn Store> = counting.clone();
    let store = CachedStore::new(inner, cache, keys());

    let (u, a) = account(&store, "outage").await;
    let session = store
        .create_session(&u.id, None, t(0), t(100_000))
        .await
        .unwrap();
    store.read_tokens(&a.id).await.unwrap();
    let before = counting.calls();
    assert!(
        store
            .find_session(&session.token, t(1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.read_tokens(&a.id).await.unwrap().unwrap().version, 1);
    assert_eq!(counting.calls(), before, "warm cache is served by Redis");
    assert_eq!(fallbacks.load(Ordering::SeqCst), 0);

    server.kill();

    // Every call still succeeds, through the store.
    let before = counting.calls();
    let s = store.find_session(&session.token, t(2)).await.unwrap();
    assert_eq!(s.map(|s| s.user_id), Some(u.id.clone()));
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.tokens, Some(token_set("outage")));
    let r = store
        .replace_tokens(&a.id, 1, &token_set("during-outage"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 2 });
    let touched = store
        .touch_session(&session.token, t(90_000), SessionExpiry::default())
        .await
        .unwrap();
    assert!(touched.is_some());
    assert!(counting.calls() >= before + 4, "the store answered");
    assert!(
        fallbacks.load(Ordering::SeqCst) > 0,
        "fallbacks are counted in authgate_cache_fallback_total"
    );

    server.restart();

    // The connection manager reconnects; the cache is used again.
    let mut served_from_cache = false;
    for _ in 0..100 {
        let read = store.read_tokens(&a.id).await.unwrap().unwrap();
        assert_eq!(read.version, 2, "never a stale token set");
        assert_eq!(read.tokens, Some(token_set("during-outage")));
        let before = counting.calls();
        let again = store.read_tokens(&a.id).await.unwrap().unwrap();
        assert_eq!(again.version, 2);
        if counting.calls() == before {
            served_from_cache = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        served_from_cache,
        "the cache was not used after Redis came back"
    );
    let before = counting.calls();
    assert!(
        store
            .find_session(&session.token, t(3))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .find_session(&session.token, t(4))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(counting.calls(), before + 1, "one fill, then hits");
}
