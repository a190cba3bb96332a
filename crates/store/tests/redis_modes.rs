//! The cache and the revocation set over `rediss://` (TLS, a private CA made at
//! test time) and through Redis Sentinel (`redis+sentinel://`), each on private
//! redis-server processes on free ports (never the shared Redis): they work,
//! a wrong CA is a clear error (not a panic), a TLS outage costs only latency,
//! and a Sentinel failover is followed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_store::cache::{
    CacheBackend, CacheEntry, CacheError, CacheOptions, CachedStore, open_cache,
    open_revocation_set,
};
use authgate_store::{SessionId, SessionStore, Store, TokenStore};
use authgate_testkit::{RedisInstance, SentinelInstance, TestCa, redis_command};
use common::{CountingStore, TestDb, account, keys, random_suffix, t};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(ca: Option<Vec<u8>>) -> CacheOptions {
    CacheOptions {
        key_prefix: format!("authgate-test-{}:", random_suffix()),
        redis_ca: ca.map(Arc::from),
        ..CacheOptions::default()
    }
}

fn entry(version: i64, value: &str) -> CacheEntry {
    CacheEntry {
        version,
        value: value.as_bytes().into(),
    }
}

async fn round_trip(cache: &dyn CacheBackend, key: &str) -> Result<(), CacheError> {
    cache.put_if_newer(key, entry(2, "v2")).await?;
    cache.put_if_newer(key, entry(1, "older")).await?;
    let got = cache.get(key).await?.expect("the entry just written");
    assert_eq!((got.version, &*got.value), (2, &b"v2"[..]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_and_revocation_set_work_over_tls_trusting_a_private_ca() {
    let server = RedisInstance::start_tls();
    assert!(server.url().starts_with("rediss://localhost:"));
    let options = options(server.ca_pem());
    let cache = open_cache(&server.url(), &options).await.unwrap();
    round_trip(&*cache, "tls-key").await.unwrap();
    cache.remove("tls-key").await.unwrap();
    assert!(cache.get("tls-key").await.unwrap().is_none());

    let set = open_revocation_set(&server.url(), &options, Duration::from_secs(60)).unwrap();
    let sid = SessionId::new(format!("sid-{}", random_suffix()));
    assert!(!set.contains(&sid).await.unwrap());
    set.insert(std::slice::from_ref(&sid)).await.unwrap();
    assert!(set.contains(&sid).await.unwrap());

    // The address form works too: the certificate names 127.0.0.1 as well.
    let by_ip = server.url().replace("localhost", "127.0.0.1");
    let cache = open_cache(&by_ip, &options).await.unwrap();
    round_trip(&*cache, "tls-key-ip").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_the_system_roots_refuse_the_server_with_a_certificate_error() {
    let server = RedisInstance::start_tls();
    let ca = TestCa::generate();
    for (name, trust) in [
        ("an unrelated CA", Some(ca.other_ca_pem())),
        ("the system roots", None),
    ] {
        let cache = open_cache(&server.url(), &options(trust)).await.unwrap();
        let started = Instant::now();
        let error = cache.get("k").await.expect_err(name).to_string();
        assert!(
            error.to_ascii_lowercase().contains("certificate") || error.contains("UnknownIssuer"),
            "{name}: {error}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{name}: slow");
    }
}

#[tokio::test]
async fn malformed_redis_urls_and_ca_files_are_refused_when_opening() {
    let cases = [
        ("rediss://localhost:1/#insecure", None, "cannot be disabled"),
        ("redis+sentinel://127.0.0.1:1", None, "missing master name"),
        ("redis://a:1,b:2", None, "redis+sentinel://"),
        (
            "redis://localhost:1",
            Some(b"x".to_vec()),
            "does not use TLS",
        ),
        ("rediss://localhost:1", Some(b"not pem".to_vec()), "no PEM"),
    ];
    for (url, ca, expected) in cases {
        let error = open_cache(url, &options(ca.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url} was accepted"))
            .to_string();
        assert!(error.contains(expected), "{url}: {error}");
        let error = open_revocation_set(url, &options(ca), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{url}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_outage_costs_only_latency_and_the_cache_comes_back() {
    let mut server = RedisInstance::start_tls();
    let db = TestDb::sqlite();
    let counting = CountingStore::new(db.open(keys()).await);
    let cache = open_cache(&server.url(), &options(server.ca_pem()))
        .await
        .unwrap();
    let inner: Arc<dyn Store> = counting.clone();
    let store = CachedStore::new(inner, cache, keys());
    let (u, a) = account(&store, "tls-outage").await;
    let session = store
        .create_session(&u.id, None, t(0), t(100_000))
        .await
        .unwrap();
    store.read_tokens(&a.id).await.unwrap();

    // Served from the TLS cache: no store call.
    let before = counting.calls();
    assert!(
        store
            .find_session(&session.token, t(1))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(counting.calls(), before, "a cached read reached the store");

    // Down: every read still answers, from the store, quickly. (Killing and
    // restarting block for milliseconds; the runtime has a second worker.)
    server.kill();
    let started = Instant::now();
    for i in 0..5 {
        assert!(
            store
                .find_session(&session.token, t(2 + i))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.read_tokens(&a.id).await.unwrap().unwrap().version, 1);
    }
    let per_read = started.elapsed() / 10;
    println!("TLS Redis down: {per_read:?} per read (store fallback)");
    assert!(
        per_read < Duration::from_millis(1500),
        "{per_read:?} per read"
    );
    server.restart();

    // Back: the cache is filled again and serves reads without the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        store.find_session(&session.token, t(20)).await.unwrap();
        let before = counting.calls();
        store.find_session(&session.token, t(21)).await.unwrap();
        if counting.calls() == before {
            break;
        }
        assert!(Instant::now() < deadline, "the TLS cache did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Master, one replica, one sentinel (quorum 1), all on free ports.
struct SentinelSetup {
    master: RedisInstance,
    replica: RedisInstance,
    sentinel: SentinelInstance,
    name: String,
}

impl SentinelSetup {
    fn start() -> Self {
        let master = RedisInstance::start();
        let replica = RedisInstance::start_replica_of(master.port());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis_command(replica.port(), &["INFO", "replication"])
            .unwrap_or_default()
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica did not attach");
            std::thread::sleep(Duration::from_millis(20));
        }
        let name = format!("authgate{}", random_suffix());
        let sentinel = SentinelInstance::start(&name, master.port());
        Self {
            master,
            replica,
            sentinel,
            name,
        }
    }

    fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{},127.0.0.1:1/{}",
            self.sentinel.port(),
            self.name
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_the_master_sentinel_names_through_a_failover() {
    let setup = tokio::task::spawn_blocking(SentinelSetup::start)
        .await
        .unwrap();
    let options = options(None);
    let cache = open_cache(&setup.url(), &options).await.unwrap();
    let set = open_revocation_set(&setup.url(), &options, Duration::from_secs(60)).unwrap();
    round_trip(&*cache, "before").await.unwrap();
    let sid = SessionId::new(format!("sid-{}", random_suffix()));
    set.insert(std::slice::from_ref(&sid)).await.unwrap();
    assert!(set.contains(&sid).await.unwrap());
    // The write went to the master.
    let key = format!("{}before", options.key_prefix);
    assert!(
        redis_command(setup.master.port(), &["GET", &key])
            .unwrap()
            .contains("2:v2")
    );

    // Replication is asynchronous: let the replica catch up first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis_command(setup.replica.port(), &["GET", &key])
        .unwrap_or_default()
        .contains("2:v2")
    {
        assert!(Instant::now() < deadline, "the replica did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Wait until the sentinel knows the replica, then fail over to it.
    let (sentinel_port, name) = (setup.sentinel.port(), setup.name.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = redis_command(sentinel_port, &["SENTINEL", "FAILOVER", &name]).unwrap();
        if reply.starts_with("+OK") {
            break;
        }
        assert!(Instant::now() < deadline, "SENTINEL FAILOVER: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let replica_port = setup.replica.port();
    let deadline = Instant::now() + Duration::from_secs(20);
    while setup.sentinel.master_port(&name) != Some(replica_port) {
        assert!(Instant::now() < deadline, "the failover did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sentinel then demotes the old master (REPLICAOF, and kills its
    // clients); a write it took in between is lost with the resync — the
    // cache is an accelerator, that costs a store read later, nothing more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis_command(setup.master.port(), &["INFO", "replication"])
        .unwrap_or_default()
        .contains("role:slave")
    {
        assert!(Instant::now() < deadline, "the old master was not demoted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failed_over = Instant::now();

    // Writes and reads go to the new master; failures meanwhile are ordinary
    // cache errors (the caller falls back to the store).
    let mut errors = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match round_trip(&*cache, "after").await {
            Ok(()) => break,
            Err(_) => errors += 1,
        }
        assert!(
            Instant::now() < deadline,
            "the cache did not follow the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "sentinel failover: cache usable {:?} after the sentinel switched ({errors} failed calls)",
        failed_over.elapsed()
    );
    let key = format!("{}after", options.key_prefix);
    assert!(
        redis_command(replica_port, &["GET", &key])
            .unwrap()
            .contains("2:v2"),
        "the write after the failover did not reach the new master"
    );
    // The entry written before the failover was replicated, and the set still answers.
    assert_eq!(cache.get("before").await.unwrap().unwrap().version, 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while set.contains(&sid).await.ok() != Some(true) {
        assert!(
            Instant::now() < deadline,
            "the revocation set did not follow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sid2 = SessionId::new(format!("sid-{}", random_suffix()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while set.insert(std::slice::from_ref(&sid2)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "revocation writes did not follow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(set.contains(&sid2).await.unwrap());
    drop(setup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_sentinel_the_cache_fails_fast() {
    // Nothing listens on these ports: every call is an error, quickly.
    let dead = authgate_testkit::free_port();
    let url = format!("redis+sentinel://127.0.0.1:{dead}/mymaster");
    let cache = open_cache(&url, &options(None)).await.unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        assert!(cache.get("k").await.is_err());
        assert!(started.elapsed() < Duration::from_millis(1500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_through_sentinel_over_tls() {
    let master = RedisInstance::start_tls();
    let name = format!("authgate{}", random_suffix());
    let sentinel = SentinelInstance::start_tls(&name, master.port(), master.tls().unwrap());
    let url = format!("rediss+sentinel://localhost:{}/{name}/0", sentinel.port());
    let options = options(master.ca_pem());
    let cache = open_cache(&url, &options).await.unwrap();
    // The sentinel needs a moment to reach the master over TLS.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match round_trip(&*cache, "tls-sentinel").await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "never worked: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = open_revocation_set(&url, &options, Duration::from_secs(60)).unwrap();
    let sid = SessionId::new(format!("sid-{}", random_suffix()));
    set.insert(std::slice::from_ref(&sid)).await.unwrap();
    assert!(set.contains(&sid).await.unwrap());

    // Without the private CA, the same URL fails with a certificate error.
    let cache = open_cache(&url, &self::options(None)).await.unwrap();
    let error = cache.get("tls-sentinel").await.unwrap_err().to_string();
    assert!(
        error.to_ascii_lowercase().contains("certificate"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_master_dies_the_cache_fails_fast_then_follows_the_promoted_replica() {
    let mut setup = tokio::task::spawn_blocking(SentinelSetup::start)
        .await
        .unwrap();
    let options = options(None);
    let cache = open_cache(&setup.url(), &options).await.unwrap();
    round_trip(&*cache, "before").await.unwrap();
    // The sentinel must know the replica before the master dies.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !redis_command(
        setup.sentinel.port(),
        &["SENTINEL", "REPLICAS", &setup.name],
    )
    .unwrap_or_default()
    .contains(&setup.replica.port().to_string())
    {
        assert!(
            Instant::now() < deadline,
            "the sentinel never saw the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let killed = Instant::now();
    setup.master.kill();
    let (mut errors, mut slowest) = (0, Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = Instant::now();
        let result = round_trip(&*cache, "after").await;
        slowest = slowest.max(started.elapsed());
        if result.is_ok() {
            break;
        }
        errors += 1;
        assert!(
            Instant::now() < deadline,
            "the cache never followed the promotion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "master killed: cache back on the promoted replica after {:?}; {errors} failed calls, slowest {slowest:?}",
        killed.elapsed()
    );
    assert_eq!(
        setup.sentinel.master_port(&setup.name),
        Some(setup.replica.port())
    );
    assert!(
        slowest < Duration::from_millis(2500),
        "a call took {slowest:?}"
    );
}
