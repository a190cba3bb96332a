//! Refresh storms against the real `oidc-provider` with strict rotation (any reuse of a refresh
//! token revokes the whole grant): one instance on SQLite, three instances on PostgreSQL with and
//! without Redis, a provider slower than the lease, and Redis killed in the middle of a storm.
//!
//! Every test counts the provider's refresh grants exactly (`/__stats`): one grant per account
//! per expiry, never a second one, no `invalid_grant`, no grant revoked, and every caller gets
//! the same fresh access token, which is the one in the store.
//!
//! PostgreSQL and Redis come from `AUTHGATE_TEST_POSTGRES_URL` / `AUTHGATE_TEST_REDIS_URL`
//! (random schema and key prefix per test); without them a test returns early with a note, and
//! with `AUTHGATE_REQUIRE_SERVICES=1` it fails instead. Run with `-- --nocapture` to see the
//! measured figures.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_oauth::HttpClient;
use authgate_refresh::{
    RedisSignal, RefreshService, RefreshSettings, RefreshSignal, TokenRefresher,
};
use authgate_store::{AccountId, Store};
use authgate_testkit::{OidcProviderPeer, RedisInstance, require_url};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACCOUNTS: usize = 100;
const CALLS_PER_ACCOUNT: usize = 10;

/// The peer served exactly `total` refresh grants, `per_account` for each account, with no
/// error and no revoked grant.
async fn assert_exact_grants(
    peer: &OidcProviderPeer,
    seeded: &[Seeded],
    total: u64,
    per_account: u64,
) {
    let stats = peer.stats().await;
    assert!(
        stats.refresh_errors.is_empty(),
        "refresh errors at the provider: {:?}",
        stats.refresh_errors
    );
    assert_eq!(stats.grants_revoked, 0, "grants revoked at the provider");
    assert_eq!(stats.refresh_grants, total, "refresh grants served");
    for s in seeded {
        assert_eq!(
            stats.refresh_grants_by_account.get(&s.login).copied(),
            Some(per_account),
            "grants for {}",
            s.login
        );
    }
}

async fn redis_signals(url: &str, prefix: &str, n: usize) -> Vec<RedisSignal> {
    (0..n)
        .map(|_| RedisSignal::open(url, prefix, Duration::from_millis(50)).unwrap())
        .collect()
}

async fn all_subscribed(signals: &[RedisSignal], within: Duration) -> bool {
    eventually(within, || signals.iter().all(RedisSignal::is_subscribed)).await
}

/// Three services on one PostgreSQL schema, each with its own pool and signal.
async fn pg_instances(
    pg: &PgSchema,
    refresher: &Arc<dyn TokenRefresher>,
    signals: Vec<Arc<dyn RefreshSignal>>,
    settings: RefreshSettings,
) -> (Vec<RefreshService>, Vec<Arc<dyn Store>>) {
    let mut services = Vec::new();
    let mut stores = Vec::new();
    for (i, signal) in signals.into_iter().enumerate() {
        let store = pg.store().await;
        services.push(service(
            Arc::clone(&store),
            Arc::clone(refresher),
            signal,
            settings,
            lenient_breaker(),
            &format!("instance-{i}"),
        ));
        stores.push(store);
    }
    (services, stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_1000_calls_on_100_accounts_costs_exactly_100_grants_per_expiry() {
    let peer = start_peer().await;
    let (_dir, store) = sqlite_store().await;
    let seed_started = Instant::now();
    let seeded = seed_accounts(&peer, &store, ACCOUNTS).await;
    let seed_time = seed_started.elapsed();
    peer.reset_stats().await;

    let http = HttpClient::new(&Default::default()).unwrap();
    let timed = TimedRefresher::new(
        catalog_refresher(
            vec![provider_settings(PROVIDER, peer.issuer(), None)],
            &http,
        )
        .await,
    );
    let svc = service(
        Arc::clone(&store),
        timed.clone(),
        polling(),
        settings(),
        lenient_breaker(),
        "single",
    );

    let (calls, elapsed) = storm(std::slice::from_ref(&svc), &seeded, CALLS_PER_ACCOUNT).await;
    let first = assert_every_call_fresh(&calls, &seeded, &store).await;
    assert_exact_grants(&peer, &seeded, ACCOUNTS as u64, 1).await;
    let provider_latency = timed.take();
    assert_eq!(
        provider_latency.len(),
        ACCOUNTS,
        "one provider call per account"
    );
    let latency: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    let t = tally(&calls);
    eprintln!(
        "storm 1 (SQLite, 1 instance): {} calls on {ACCOUNTS} accounts in {:.0} ms; outcomes {t:?}; \
         grants per session {:.2}; refresh() p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         provider refresh p50 {:.1} ms, p99 {:.1} ms (seeding {ACCOUNTS} sign-ins took {:.1} s)",
        calls.len(),
        ms(elapsed),
        peer.stats().await.refresh_grants as f64 / ACCOUNTS as f64,
        ms(quantile(&latency, 0.5)),
        ms(quantile(&latency, 0.99)),
        ms(quantile(&latency, 1.0)),
        ms(quantile(&provider_latency, 0.5)),
        ms(quantile(&provider_latency, 0.99)),
        seed_time.as_secs_f64(),
    );

    // The next expiry: the rotated refresh tokens were persisted, so again one grant each.
    make_stale(&store, &seeded).await;
    let (calls, elapsed) = storm(std::slice::from_ref(&svc), &seeded, CALLS_PER_ACCOUNT).await;
    let second = assert_every_call_fresh(&calls, &seeded, &store).await;
    assert_exact_grants(&peer, &seeded, 2 * ACCOUNTS as u64, 2).await;
    assert!(
        first.iter().zip(&second).all(|(a, b)| a != b),
        "the second storm handed out new access tokens"
    );
    let latency: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    let provider_latency = timed.take();
    eprintln!(
        "storm 2 (SQLite, 1 instance): {} calls in {:.0} ms; outcomes {:?}; refresh() p50 {:.1} ms, \
         p99 {:.1} ms; provider refresh p50 {:.1} ms, p99 {:.1} ms; grants per session per expiry 1.00",
        calls.len(),
        ms(elapsed),
        tally(&calls),
        ms(quantile(&latency, 0.5)),
        ms(quantile(&latency, 0.99)),
        ms(quantile(&provider_latency, 0.5)),
        ms(quantile(&provider_latency, 0.99)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_and_redis_cost_exactly_one_grant_per_account() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let Some(redis_url) = require_url("AUTHGATE_TEST_REDIS_URL") else {
        return;
    };
    let peer = start_peer().await;
    let seed_store = pg.store().await;
    let seeded = seed_accounts(&peer, &seed_store, ACCOUNTS).await;
    peer.reset_stats().await;

    let http = HttpClient::new(&Default::default()).unwrap();
    let refresher = catalog_refresher(
        vec![provider_settings(PROVIDER, peer.issuer(), None)],
        &http,
    )
    .await;
    let signals = redis_signals(&redis_url, &redis_prefix(), 3).await;
    assert!(
        all_subscribed(&signals, Duration::from_secs(5)).await,
        "redis subscriptions"
    );
    let (services, _stores) = pg_instances(
        &pg,
        &refresher,
        signals
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn RefreshSignal>)
            .collect(),
        settings(),
    )
    .await;

    let (calls, elapsed) = storm(&services, &seeded, CALLS_PER_ACCOUNT).await;
    assert_every_call_fresh(&calls, &seeded, &seed_store).await;
    assert_exact_grants(&peer, &seeded, ACCOUNTS as u64, 1).await;
    let latency: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    eprintln!(
        "storm (PostgreSQL + Redis, 3 instances): {} calls in {:.0} ms; outcomes {:?}; \
         refresh() p50 {:.1} ms, p99 {:.1} ms; grants per session 1.00",
        calls.len(),
        ms(elapsed),
        tally(&calls),
        ms(quantile(&latency, 0.5)),
        ms(quantile(&latency, 0.99)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_without_redis_cost_exactly_one_grant_per_account() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = start_peer().await;
    let seed_store = pg.store().await;
    let seeded = seed_accounts(&peer, &seed_store, ACCOUNTS).await;
    peer.reset_stats().await;

    let http = HttpClient::new(&Default::default()).unwrap();
    let refresher = catalog_refresher(
        vec![provider_settings(PROVIDER, peer.issuer(), None)],
        &http,
    )
    .await;
    let (services, _stores) = pg_instances(
        &pg,
        &refresher,
        vec![polling(), polling(), polling()],
        settings(),
    )
    .await;

    let (calls, elapsed) = storm(&services, &seeded, CALLS_PER_ACCOUNT).await;
    assert_every_call_fresh(&calls, &seeded, &seed_store).await;
    assert_exact_grants(&peer, &seeded, ACCOUNTS as u64, 1).await;
    let latency: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    eprintln!(
        "storm (PostgreSQL, polling, 3 instances): {} calls in {:.0} ms; outcomes {:?}; \
         refresh() p50 {:.1} ms, p99 {:.1} ms; grants per session 1.00",
        calls.len(),
        ms(elapsed),
        tally(&calls),
        ms(quantile(&latency, 0.5)),
        ms(quantile(&latency, 0.99)),
    );
}

/// The provider takes 5 s, the lease lasts 2 s: the holder renews it while the call runs (the
/// Redis lock, which is not renewed, lapses meanwhile — the store lease alone keeps the other
/// instances out), so there is still exactly one grant and every waiter gets its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_lease_still_costs_one_grant_and_the_lease_is_renewed() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let Some(redis_url) = require_url("AUTHGATE_TEST_REDIS_URL") else {
        return;
    };
    let peer = start_peer().await;
    let observer = pg.store().await;
    let seeded = seed_accounts(&peer, &observer, 1).await;
    let account = seeded[0].account.clone();
    peer.reset_stats().await;
    peer.set_refresh_delay(5_000).await;

    let settings = RefreshSettings {
        deadline: Duration::from_secs(15),
        ..settings()
    };
    assert_eq!(settings.lease_ttl, Duration::from_secs(2));
    let http = HttpClient::new(&Default::default()).unwrap();
    let refresher = catalog_refresher(
        vec![provider_settings(PROVIDER, peer.issuer(), None)],
        &http,
    )
    .await;
    let signals = redis_signals(&redis_url, &redis_prefix(), 3).await;
    assert!(all_subscribed(&signals, Duration::from_secs(5)).await);
    let (services, _stores) = pg_instances(
        &pg,
        &refresher,
        signals
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn RefreshSignal>)
            .collect(),
        settings,
    )
    .await;

    // Watch the lease on the account row while the storm runs.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let monitor = {
        let (observer, account, watching) = (
            Arc::clone(&observer),
            account.clone(),
            Arc::clone(&watching),
        );
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(lease) = observer.read_refresh_lease(&account).await.unwrap() {
                    seen.push((lease.owner, lease.until.as_secs()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        })
    };
    let started = Instant::now();
    let (calls, _) = storm_with(&services, &seeded, 15, |k| {
        // Latecomers keep arriving while the provider call runs.
        Duration::from_millis(300 * k as u64)
    })
    .await;
    let elapsed = started.elapsed();
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let seen = monitor.await.unwrap();

    assert_every_call_fresh(&calls, &seeded, &observer).await;
    assert_exact_grants(&peer, &seeded, 1, 1).await;
    assert!(
        elapsed >= Duration::from_secs(5),
        "the refresh waited for the slow provider"
    );
    let owners: std::collections::BTreeSet<&str> = seen.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(owners.len(), 1, "one lease holder: {owners:?}");
    let first_until = seen.iter().map(|(_, u)| *u).min().unwrap();
    let last_until = seen.iter().map(|(_, u)| *u).max().unwrap();
    assert!(
        last_until - first_until >= 3,
        "the 2 s lease was renewed while the 5 s call ran: until went {first_until} → {last_until}"
    );
    assert!(
        observer
            .read_refresh_lease(&account)
            .await
            .unwrap()
            .is_none(),
        "the lease is released with the token write"
    );
    let waited: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    eprintln!(
        "slow provider (5 s, lease 2 s, 3 instances, 15 calls): 1 grant; lease until {first_until} → \
         {last_until} (renewed); refresh() p50 {:.0} ms, max {:.0} ms; outcomes {:?}",
        ms(quantile(&waited, 0.5)),
        ms(quantile(&waited, 1.0)),
        tally(&calls),
    );
}

/// Redis dies while a storm runs across three instances: the store lease alone keeps one grant
/// per account, no call fails, no session is lost; when Redis is back, the subscriptions and the
/// fast lock return and the next storm again costs one grant per account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_mid_storm_loses_no_call_and_costs_no_extra_grant() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = start_peer().await;
    let seed_store = pg.store().await;
    let seeded = seed_accounts(&peer, &seed_store, ACCOUNTS).await;
    peer.reset_stats().await;

    let redis = tokio::task::spawn_blocking(RedisInstance::start)
        .await
        .unwrap();
    let http = HttpClient::new(&Default::default()).unwrap();
    let refresher = catalog_refresher(
        vec![provider_settings(PROVIDER, peer.issuer(), None)],
        &http,
    )
    .await;
    let signals = redis_signals(&redis.url(), &redis_prefix(), 3).await;
    assert!(all_subscribed(&signals, Duration::from_secs(5)).await);
    let (services, _stores) = pg_instances(
        &pg,
        &refresher,
        signals
            .iter()
            .map(|s| Arc::new(s.clone()) as Arc<dyn RefreshSignal>)
            .collect(),
        settings(),
    )
    .await;

    // Stretch the storm: each grant takes 150 ms and the accounts start 5 ms apart (0.5 s in
    // all), and Redis dies once the provider has served 10 grants: some accounts are done, some
    // in flight, most not started yet.
    peer.set_refresh_delay(150).await;
    let storm_run = storm_with(&services, &seeded, CALLS_PER_ACCOUNT, |k| {
        Duration::from_millis(5 * (k % ACCOUNTS) as u64)
    });
    let killer = async {
        let before = loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let stats = peer.stats().await;
            if stats.refresh_grants >= 10 {
                break stats;
            }
        };
        let redis = tokio::task::spawn_blocking(move || {
            let mut redis = redis;
            redis.kill();
            redis
        })
        .await
        .unwrap();
        (redis, before.refresh_grants, before.refresh_in_flight)
    };
    let ((calls, elapsed), (mut redis, grants_at_kill, in_flight_at_kill)) =
        tokio::join!(storm_run, killer);
    assert!(
        grants_at_kill > 0 && grants_at_kill < ACCOUNTS as u64,
        "Redis died mid-storm ({grants_at_kill} grants done)"
    );
    let t = tally(&calls);
    assert_eq!(t.get("unavailable"), None, "no call failed: {t:?}");
    assert_eq!(t.get("revoked"), None, "no session lost: {t:?}");
    assert_every_call_fresh(&calls, &seeded, &seed_store).await;
    assert_exact_grants(&peer, &seeded, ACCOUNTS as u64, 1).await;
    assert!(
        eventually(Duration::from_secs(5), || signals
            .iter()
            .all(|s| !s.is_subscribed()))
        .await,
        "the outage was noticed"
    );
    let latency: Vec<Duration> = calls.iter().map(|c| c.latency).collect();
    eprintln!(
        "redis killed mid-storm ({grants_at_kill} grants done, {in_flight_at_kill} in flight at the kill): \
         {} calls in {:.0} ms; outcomes {t:?}; refresh() p50 {:.1} ms, p99 {:.1} ms",
        calls.len(),
        ms(elapsed),
        ms(quantile(&latency, 0.5)),
        ms(quantile(&latency, 0.99)),
    );

    // Redis comes back (empty): the subscriptions and the fast lock resume.
    peer.set_refresh_delay(0).await;
    let redis_back = Instant::now();
    redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    assert!(
        all_subscribed(&signals, Duration::from_secs(10)).await,
        "subscriptions are live again"
    );
    let resubscribed = redis_back.elapsed();
    // Each instance's command connection learns of the restart on its first command (which
    // fails over to the store lease, like any Redis error), then the fast lock is back.
    let probe = AccountId::new(format!("probe-{}", authgate_testkit::random_token(6)));
    for (i, signal) in signals.iter().enumerate() {
        let owner = format!("probe-owner-{i}");
        let mut answers = Vec::new();
        while answers.len() < 50 {
            let a = signal
                .try_lock(&probe, &owner, Duration::from_secs(5))
                .await;
            answers.push(a);
            if a.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let expected = if i == 0 { Some(true) } else { Some(false) };
        assert_eq!(
            answers.last().copied().flatten(),
            expected,
            "instance {i}: the fast lock works again (answers {answers:?})"
        );
        assert!(answers.len() <= 3, "instance {i}: answers {answers:?}");
    }
    signals[0].unlock(&probe, "probe-owner-0").await;
    let fast_lock_back = redis_back.elapsed();

    make_stale(&seed_store, &seeded).await;
    let (calls, elapsed) = storm(&services, &seeded, CALLS_PER_ACCOUNT).await;
    assert_every_call_fresh(&calls, &seeded, &seed_store).await;
    assert_exact_grants(&peer, &seeded, 2 * ACCOUNTS as u64, 2).await;
    eprintln!(
        "redis back: subscribed again after {:.0} ms, fast lock after {:.0} ms; next storm {} calls \
         in {:.0} ms, outcomes {:?}",
        ms(resubscribed),
        ms(fast_lock_back),
        calls.len(),
        ms(elapsed),
        tally(&calls),
    );
    drop(redis);
}
