//! Cache behaviour, run unchanged against the in-process cache and the real
//! Redis (`AUTHGATE_TEST_REDIS_URL`, random key prefix per test), each in
//! front of a SQLite store wrapped in a query-counting decorator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_core::secret::Secret;
use authgate_store::cache::{
    CacheBackend, CacheEntry, CacheOptions, CachedStore, MemoryCache, RevocationSet, TokenCache,
    open_cache, open_revocation_set,
};
use authgate_store::{
    NewSession, ReplaceOutcome, SessionExpiry, SessionStore, Store, TokenStore, VersionedTokens,
};
use common::{CountingStore, TestDb, account, keys, random_suffix, t, token_set, user};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    /// The store behind the cache, counting every call.
    counting: Arc<CountingStore>,
    /// The store under test.
    cached: Arc<CachedStore>,
    cache: Arc<dyn CacheBackend>,
    /// The revocation set the store under test fills.
    revocations: Arc<dyn RevocationSet>,
    redis: Option<(redis::Client, String)>,
    _db: TestDb,
}

impl Fixture {
    async fn new(cache_url: &str) -> Self {
        let db = TestDb::sqlite();
        let counting = CountingStore::new(db.open(keys()).await);
        let prefix = format!("authgate-test-{}:", random_suffix());
        let options = CacheOptions {
            ttl: Duration::from_secs(60),
            key_prefix: prefix.clone(),
            ..CacheOptions::default()
        };
        let cache = open_cache(cache_url, &options).await.unwrap();
        let revocations =
            open_revocation_set(cache_url, &options, Duration::from_secs(3600)).unwrap();
        let inner: Arc<dyn Store> = counting.clone();
        let cached = Arc::new(
            CachedStore::new(inner, Arc::clone(&cache), keys())
                .with_revocations(Arc::clone(&revocations)),
        );
        let redis = cache_url
            .starts_with("redis")
            .then(|| (redis::Client::open(cache_url).unwrap(), prefix));
        Self {
            counting,
            cached,
            cache,
            revocations,
            redis,
            _db: db,
        }
    }

    /// Every raw value this test stored in Redis (empty for the memory cache).
    async fn raw_redis_values(&self) -> Vec<Vec<u8>> {
        let Some((client, prefix)) = &self.redis else {
            return Vec::new();
        };
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut values = Vec::new();
        for key in keys {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            values.extend(v);
        }
        values
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Best-effort cleanup of this test's keys (they also expire by TTL).
        if let Some((client, prefix)) = &self.redis
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}

macro_rules! cache_suite {
    ($($body:ident),* $(,)?) => {
        mod memory_cache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$body(super::Fixture::new("memory://").await).await;
                }
            )*
        }
        mod redis_cache {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    let Some(url) = super::common::service_url("AUTHGATE_TEST_REDIS_URL") else {
                        return;
                    };
                    super::$body(super::Fixture::new(&url).await).await;
                }
            )*
        }
    };
}

cache_suite!(
    hot_session_lookup_does_no_store_query,
    touch_writes_to_the_store_only_when_due,
    cached_session_past_its_expiry_is_not_returned,
    signed_out_session_stays_gone_even_against_a_racing_fill,
    token_reads_are_served_from_the_cache,
    compare_and_swap_winner_replaces_the_cached_tokens,
    lost_race_invalidates_a_stale_entry_from_another_instance,
    invalidating_cached_tokens_lets_the_next_read_see_another_instances_write,
    tokens_published_by_a_writer_past_the_cache_are_served_from_it,
    revoked_sessions_are_tombstoned_and_added_to_the_revocation_set,
    revocation_is_visible_through_the_cache,
    cached_token_material_is_encrypted,
    a_forged_plaintext_session_entry_is_not_trusted,
    an_older_version_never_replaces_a_newer_entry,
);

async fn hot_session_lookup_does_no_store_query(f: Fixture) {
    let u = user(&*f.cached, "hot@example.test").await;
    let created = f
        .cached
        .create_session(&u.id, None, t(0), t(10_000))
        .await
        .unwrap();
    let before = f.counting.calls();
    for i in 0..1000 {
        let s = f.cached.find_session(&created.token, t(i)).await.unwrap();
        assert_eq!(s.as_ref(), Some(&created.session));
    }
    let s = f
        .cached
        .touch_session(&created.token, t(10), SessionExpiry::default())
        .await
        .unwrap();
    assert_eq!(s, Some(created.session));
    assert_eq!(f.counting.calls(), before, "a hot lookup reached the store");
}

async fn touch_writes_to_the_store_only_when_due(f: Fixture) {
    let u = user(&*f.cached, "touch@example.test").await;
    let expiry = SessionExpiry {
        max_age: Duration::from_secs(1000),
        update_age: Duration::from_secs(100),
    };
    let created = f
        .cached
        .create_session(&u.id, None, t(0), t(1000))
        .await
        .unwrap();
    let before = f.counting.calls();
    let s = f
        .cached
        .touch_session(&created.token, t(50), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expires, t(1000));
    assert_eq!(f.counting.calls(), before);
    let s = f
        .cached
        .touch_session(&created.token, t(100), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expires, t(1100));
    assert_eq!(f.counting.calls(), before + 1);
    // The extension is cached: the next lookups are hits again.
    let s = f
        .cached
        .find_session(&created.token, t(1050))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expires, t(1100));
    assert_eq!(f.counting.calls(), before + 1);
    // And the store agrees.
    let stored = f
        .counting
        .inner
        .find_session(&created.token, t(1050))
        .await
        .unwrap();
    assert_eq!(stored.map(|s| s.expires), Some(t(1100)));
}

async fn cached_session_past_its_expiry_is_not_returned(f: Fixture) {
    let u = user(&*f.cached, "exp@example.test").await;
    let created = f
        .cached
        .create_session(&u.id, None, t(0), t(100))
        .await
        .unwrap();
    assert!(
        f.cached
            .find_session(&created.token, t(99))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        f.cached.find_session(&created.token, t(100)).await.unwrap(),
        None
    );
    assert_eq!(
        f.cached
            .touch_session(&created.token, t(100), SessionExpiry::default())
            .await
            .unwrap(),
        None
    );
}

async fn signed_out_session_stays_gone_even_against_a_racing_fill(f: Fixture) {
    let u = user(&*f.cached, "out@example.test").await;
    let created = f
        .cached
        .create_session(&u.id, None, t(0), t(1000))
        .await
        .unwrap();
    assert!(
        f.cached
            .find_session(&created.token, t(1))
            .await
            .unwrap()
            .is_some()
    );
    assert!(f.cached.delete_session(&created.token).await.unwrap());
    let before = f.counting.calls();
    assert_eq!(
        f.cached.find_session(&created.token, t(2)).await.unwrap(),
        None
    );
    assert_eq!(
        f.counting.calls(),
        before,
        "the tombstone answers without the store"
    );
    // A lookup that read the row just before the delete and fills late.
    let key = format!(
        "session:{}",
        authgate_store::session_token_hash(&created.token)
    );
    let late = CacheEntry {
        version: 1000,
        value: serde_json::to_vec(&serde_json::json!({
            "user_id": u.id.as_str(), "expires": 1000, "updated_at": 0
        }))
        .unwrap()
        .into(),
    };
    f.cache.put_if_newer(&key, late).await.unwrap();
    assert_eq!(
        f.cached.find_session(&created.token, t(3)).await.unwrap(),
        None
    );
    // Unknown tokens are simply absent.
    assert_eq!(
        f.cached
            .find_session(&Secret::new("unknown"), t(3))
            .await
            .unwrap(),
        None
    );
}

async fn token_reads_are_served_from_the_cache(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-read").await;
    let first = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    let before = f.counting.calls();
    for _ in 0..100 {
        let again = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(f.counting.calls(), before);
    assert_eq!(first.tokens, Some(token_set("cache-read")));
}

async fn compare_and_swap_winner_replaces_the_cached_tokens(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-cas").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    let r = f
        .cached
        .replace_tokens(&a.id, 1, &token_set("cache-cas-2"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 2 });
    let before = f.counting.calls();
    let read = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(
        f.counting.calls(),
        before,
        "the winner's write was not cached"
    );
    assert_eq!(read.version, 2);
    assert_eq!(read.tokens, Some(token_set("cache-cas-2")));
}

async fn lost_race_invalidates_a_stale_entry_from_another_instance(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-stale").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    // Another instance (not going through this cache) writes version 2.
    let r = f
        .counting
        .inner
        .replace_tokens(&a.id, 1, &token_set("elsewhere"), None)
        .await
        .unwrap();
    assert!(r.is_replaced());
    // This instance still sees version 1, tries to write, and loses...
    let stale = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(stale.version, 1);
    let r = f
        .cached
        .replace_tokens(&a.id, 1, &token_set("mine"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::LostRace { current_version: 2 });
    // ...which drops the stale entry: the next read sees the winner.
    let fresh = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(fresh.version, 2);
    assert_eq!(fresh.tokens, Some(token_set("elsewhere")));
}

async fn invalidating_cached_tokens_lets_the_next_read_see_another_instances_write(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-forget").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    let r = f
        .counting
        .inner
        .replace_tokens(&a.id, 1, &token_set("elsewhere"), None)
        .await
        .unwrap();
    assert!(r.is_replaced());
    assert_eq!(
        f.cached.read_tokens(&a.id).await.unwrap().unwrap().version,
        1
    );
    f.cached.invalidate_tokens(&a.id).await;
    let fresh = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(fresh.version, 2);
    assert_eq!(fresh.tokens, Some(token_set("elsewhere")));
}

async fn tokens_published_by_a_writer_past_the_cache_are_served_from_it(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-publish").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    // The refresh service writes to the store itself, then publishes.
    let r = f
        .counting
        .inner
        .replace_tokens(&a.id, 1, &token_set("refreshed"), None)
        .await
        .unwrap();
    assert!(r.is_replaced());
    let written = VersionedTokens {
        tokens: Some(token_set("refreshed")),
        version: 2,
        revoked_at: None,
    };
    f.cached.publish_tokens(&a.id, &written).await;
    let before = f.counting.calls();
    assert_eq!(f.cached.read_tokens(&a.id).await.unwrap().unwrap(), written);
    assert_eq!(f.counting.calls(), before, "served from the cache");
    // An older set published late never replaces it.
    let stale = VersionedTokens {
        tokens: Some(token_set("cache-publish")),
        version: 1,
        revoked_at: None,
    };
    f.cached.publish_tokens(&a.id, &stale).await;
    assert_eq!(f.cached.read_tokens(&a.id).await.unwrap().unwrap(), written);
}

async fn revoked_sessions_are_tombstoned_and_added_to_the_revocation_set(f: Fixture) {
    let (u, a) = account(&*f.cached, "cache-revoke-sessions").await;
    let new = || NewSession {
        user_id: u.id.clone(),
        account_id: Some(a.id.clone()),
        now: t(0),
        expires: t(10_000),
        user_agent: None,
        provider_sid: None,
        attributes: Default::default(),
    };
    let jwt = f.cached.create_jwt_session(new()).await.unwrap();
    let database = f.cached.create_database_session(new()).await.unwrap();
    let kept = f
        .cached
        .create_jwt_session(NewSession {
            account_id: None,
            ..new()
        })
        .await
        .unwrap();
    assert!(
        f.cached
            .find_session(&database.token, t(1))
            .await
            .unwrap()
            .is_some()
    );
    let revoked = f.cached.revoke_account_sessions(&a.id, t(2)).await.unwrap();
    assert_eq!(revoked.len(), 2);
    // The cached database session is gone at once, without the store.
    let before = f.counting.calls();
    assert_eq!(
        f.cached.find_session(&database.token, t(3)).await.unwrap(),
        None
    );
    assert_eq!(f.counting.calls(), before, "the tombstone answers");
    // Both ids are in the revocation set; the other session is not.
    assert!(f.revocations.contains(&jwt.id).await.unwrap());
    assert!(f.revocations.contains(&database.session.id).await.unwrap());
    assert!(!f.revocations.contains(&kept.id).await.unwrap());
    // Revoking one session by id adds it too.
    f.cached.revoke_session(&kept.id, t(4)).await.unwrap();
    assert!(f.revocations.contains(&kept.id).await.unwrap());
}

async fn revocation_is_visible_through_the_cache(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-revoke").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    let r = f
        .cached
        .mark_grant_revoked(&a.id, 1, t(77), None)
        .await
        .unwrap();
    assert!(r.is_replaced());
    let before = f.counting.calls();
    let read = f.cached.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(f.counting.calls(), before);
    assert_eq!(
        (read.tokens, read.revoked_at, read.version),
        (None, Some(t(77)), 2)
    );
}

async fn a_forged_plaintext_session_entry_is_not_trusted(f: Fixture) {
    let u = user(&*f.cached, "forge@example.test").await;
    let created = f
        .cached
        .create_session(&u.id, None, t(0), t(10_000))
        .await
        .unwrap();
    let key = format!(
        "session:{}",
        authgate_store::session_token_hash(&created.token)
    );
    let sealed = f
        .cache
        .get(&key)
        .await
        .unwrap()
        .expect("the session is cached");
    assert!(
        String::from_utf8_lossy(&sealed.value).starts_with("v1."),
        "sealed, not JSON"
    );
    // Someone with write access to the cache plants a session for a token of
    // their choosing: it is not a hit, and the store knows no such session.
    let forged_token = authgate_core::secret::Secret::new("attacker-chosen-token");
    let forged_key = format!(
        "session:{}",
        authgate_store::session_token_hash(&forged_token)
    );
    let json = format!(
        r#"{{"user_id":"{}","expires":9999999999,"updated_at":0}}"#,
        u.id.as_str()
    );
    f.cache
        .put_if_newer(
            &forged_key,
            authgate_store::cache::CacheEntry {
                version: 9_999_999_999,
                value: json.into_bytes().into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.cached.find_session(&forged_token, t(1)).await.unwrap(),
        None
    );
}

async fn cached_token_material_is_encrypted(f: Fixture) {
    let (_, a) = account(&*f.cached, "cache-enc").await;
    f.cached.read_tokens(&a.id).await.unwrap();
    let entry = f
        .cache
        .get(&format!("tokens:{}", a.id))
        .await
        .unwrap()
        .expect("the token set is cached");
    let mut raw_values = f.raw_redis_values().await;
    assert_eq!(raw_values.is_empty(), f.redis.is_none());
    raw_values.push(entry.value.to_vec());
    let set = token_set("cache-enc");
    let plaintexts = [
        set.access_token.expose().to_owned(),
        set.refresh_token.unwrap().expose().to_owned(),
        set.id_token.unwrap().expose().to_owned(),
    ];
    for raw in &raw_values {
        let text = String::from_utf8_lossy(raw);
        for p in &plaintexts {
            assert!(!text.contains(p.as_str()), "plaintext token in the cache");
        }
    }
    assert!(String::from_utf8_lossy(&entry.value).starts_with("v1."));
}

async fn an_older_version_never_replaces_a_newer_entry(f: Fixture) {
    let entry = |version: i64, value: &str| CacheEntry {
        version,
        value: value.as_bytes().into(),
    };
    let key = "versioned";
    f.cache.put_if_newer(key, entry(5, "five")).await.unwrap();
    f.cache.put_if_newer(key, entry(4, "four")).await.unwrap();
    assert_eq!(f.cache.get(key).await.unwrap(), Some(entry(5, "five")));
    f.cache.put_if_newer(key, entry(6, "six")).await.unwrap();
    assert_eq!(f.cache.get(key).await.unwrap(), Some(entry(6, "six")));
    f.cache.remove(key).await.unwrap();
    assert_eq!(f.cache.get(key).await.unwrap(), None);
}

#[tokio::test]
async fn memory_cache_is_bounded() {
    let cache = MemoryCache::new(&CacheOptions {
        max_entries: 10,
        ..CacheOptions::default()
    });
    for i in 0..1000 {
        cache
            .put_if_newer(
                &format!("k{i}"),
                CacheEntry {
                    version: 1,
                    value: b"v".as_slice().into(),
                },
            )
            .await
            .unwrap();
    }
    let mut present = 0;
    for i in 0..1000 {
        if cache.get(&format!("k{i}")).await.unwrap().is_some() {
            present += 1;
        }
    }
    assert!(present <= 20, "{present} entries survived a bound of 10");
}

#[tokio::test]
async fn unknown_cache_schemes_are_refused() {
    let r = open_cache("memcached://x", &CacheOptions::default()).await;
    assert!(r.is_err());
}

#[allow(dead_code)]
fn _assert_object_safe(_: &dyn TokenStore) {}

/// Database strategy, `memory://` on two instances over one store: a
/// sign-out on one instance ends the session on the other within the
/// cache's `ttl` (the bound README states), never later.
#[tokio::test]
async fn a_sign_out_reaches_another_instances_memory_cache_within_its_ttl() {
    let db = TestDb::sqlite();
    let store = db.open(keys()).await;
    let options = CacheOptions {
        ttl: Duration::from_secs(1),
        ..CacheOptions::default()
    };
    let instance = || async {
        let cache = open_cache("memory://", &options).await.unwrap();
        CachedStore::new(Arc::clone(&store), cache, keys())
    };
    let (a, b) = (instance().await, instance().await);
    let expiry = SessionExpiry {
        max_age: Duration::from_secs(1000),
        update_age: Duration::from_secs(100),
    };
    let u = user(&a, "two-instances@example.test").await;
    let created = a.create_session(&u.id, None, t(0), t(1000)).await.unwrap();
    assert!(
        b.touch_session(&created.token, t(1), expiry)
            .await
            .unwrap()
            .is_some()
    );

    assert!(a.delete_session(&created.token).await.unwrap());
    assert!(
        a.touch_session(&created.token, t(2), expiry)
            .await
            .unwrap()
            .is_none()
    );
    let signed_out = std::time::Instant::now();
    // The other instance may serve its cached copy, but not past the TTL.
    while b
        .touch_session(&created.token, t(2), expiry)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            signed_out.elapsed() < Duration::from_millis(1500),
            "the other instance still serves the session after its cache TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
