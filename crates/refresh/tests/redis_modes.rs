//! The refresh hand-off (`RedisSignal`: the fast lock and the "refreshed"
//! announcement) over `rediss://` with a private CA and through Redis Sentinel,
//! on private redis-server processes (free ports, killed on drop); and losing
//! the TLS Redis costs only latency: the lock answers "unknown" (the store
//! lease decides) at once, and the hand-off comes back with the server.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use authgate_refresh::{RedisSignal, RefreshSignal};
use authgate_store::AccountId;
use authgate_store::cache::RedisEndpoint;
use authgate_testkit::{RedisInstance, SentinelInstance, redis_command};
use std::time::{Duration, Instant};

fn prefix() -> String {
    format!("authgate-test-{}:", uuid::Uuid::new_v4().simple())
}

async fn eventually(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !ok() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Two instances' signals on `endpoint`: the lock excludes, the announcement
/// wakes the other instance's waiter well before its 1 s poll.
async fn assert_hand_off(endpoint: &RedisEndpoint) {
    let prefix = prefix();
    let a = RedisSignal::on(endpoint, &prefix, Duration::from_millis(50)).unwrap();
    let b = RedisSignal::on(endpoint, &prefix, Duration::from_millis(50)).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || a.is_subscribed()
            && b.is_subscribed())
        .await,
        "the subscriptions did not come up"
    );
    let account = AccountId::new("acc-tls");
    let ttl = Duration::from_secs(10);
    assert_eq!(a.try_lock(&account, "a", ttl).await, Some(true));
    assert_eq!(b.try_lock(&account, "b", ttl).await, Some(false));
    a.unlock(&account, "a").await;
    assert_eq!(b.try_lock(&account, "b", ttl).await, Some(true));
    b.unlock(&account, "b").await;

    let waiter = b.subscribe(&account);
    let started = Instant::now();
    a.publish(&account).await;
    waiter.wait(Duration::from_secs(30)).await;
    let woke = started.elapsed();
    assert!(woke < Duration::from_millis(700), "woken after {woke:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_off_works_over_tls_trusting_a_private_ca() {
    let server = RedisInstance::start_tls();
    let endpoint = RedisEndpoint::new(&server.url(), server.ca_pem().as_deref()).unwrap();
    assert_hand_off(&endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_tls_redis_costs_only_latency_and_the_hand_off_comes_back() {
    let mut server = RedisInstance::start_tls();
    let endpoint = RedisEndpoint::new(&server.url(), server.ca_pem().as_deref()).unwrap();
    let signal = RedisSignal::on(&endpoint, &prefix(), Duration::from_millis(50)).unwrap();
    assert!(eventually(Duration::from_secs(10), || signal.is_subscribed()).await);
    let account = AccountId::new("acc-outage");

    server.kill();
    assert!(eventually(Duration::from_secs(10), || !signal.is_subscribed()).await);
    let started = Instant::now();
    assert_eq!(
        signal.try_lock(&account, "a", Duration::from_secs(5)).await,
        None,
        "with Redis down the lock must say \"unknown\""
    );
    signal.publish(&account).await;
    signal.unlock(&account, "a").await;
    let spent = started.elapsed();
    assert!(spent < Duration::from_secs(3), "{spent:?} for three calls");
    // Waiters poll the store quickly meanwhile.
    let started = Instant::now();
    signal
        .subscribe(&account)
        .wait(Duration::from_secs(30))
        .await;
    assert!(started.elapsed() < Duration::from_millis(700));

    server.restart();
    assert!(
        eventually(Duration::from_secs(15), || signal.is_subscribed()).await,
        "the subscription did not come back"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while signal.try_lock(&account, "a", Duration::from_secs(5)).await != Some(true) {
        assert!(Instant::now() < deadline, "the lock did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_off_works_through_sentinel() {
    let master = RedisInstance::start();
    let name = format!("authgate{}", uuid::Uuid::new_v4().simple());
    let sentinel = SentinelInstance::start(&name, master.port());
    let url = format!("redis+sentinel://127.0.0.1:{}/{name}", sentinel.port());
    let endpoint = RedisEndpoint::new(&url, None).unwrap();
    assert!(endpoint.is_sentinel());
    assert_hand_off(&endpoint).await;
    assert!(
        redis_command(master.port(), &["INFO", "stats"])
            .unwrap()
            .contains("pubsub_patterns:"),
        "the master serves the subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_off_follows_a_sentinel_failover_after_the_master_dies() {
    let mut master = RedisInstance::start();
    let replica = RedisInstance::start_replica_of(master.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis_command(replica.port(), &["INFO", "replication"])
        .unwrap_or_default()
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica did not attach");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let name = format!("authgate{}", uuid::Uuid::new_v4().simple());
    let sentinel = SentinelInstance::start(&name, master.port());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !redis_command(sentinel.port(), &["SENTINEL", "REPLICAS", &name])
        .unwrap_or_default()
        .contains(&replica.port().to_string())
    {
        assert!(
            Instant::now() < deadline,
            "the sentinel never saw the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("redis+sentinel://127.0.0.1:{}/{name}", sentinel.port());
    let endpoint = RedisEndpoint::new(&url, None).unwrap();
    let prefix = prefix();
    let a = RedisSignal::on(&endpoint, &prefix, Duration::from_millis(50)).unwrap();
    let b = RedisSignal::on(&endpoint, &prefix, Duration::from_millis(50)).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || a.is_subscribed()
            && b.is_subscribed())
        .await
    );

    let killed = Instant::now();
    master.kill();
    // Meanwhile the lock says "unknown" (the store lease decides), quickly.
    let account = AccountId::new("acc-failover");
    let started = Instant::now();
    let during = a.try_lock(&account, "a", Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    if let Some(true) = during {
        a.unlock(&account, "a").await;
    }
    assert!(
        eventually(Duration::from_secs(30), || {
            sentinel.master_port(&name) == Some(replica.port())
        })
        .await,
        "the sentinel did not promote the replica"
    );
    assert!(
        eventually(Duration::from_secs(15), || a.is_subscribed()
            && b.is_subscribed())
        .await,
        "the subscriptions did not follow the failover"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.try_lock(&account, "a", Duration::from_secs(5)).await != Some(true) {
        assert!(
            Instant::now() < deadline,
            "the lock did not follow the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.try_lock(&account, "b", Duration::from_secs(5)).await,
        Some(false)
    );
    let waiter = b.subscribe(&account);
    let started = Instant::now();
    a.publish(&account).await;
    waiter.wait(Duration::from_secs(30)).await;
    assert!(started.elapsed() < Duration::from_millis(700));
    println!(
        "hand-off back on the promoted replica {:?} after the master was killed",
        killed.elapsed()
    );
}
