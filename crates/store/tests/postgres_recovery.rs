//! PostgreSQL connection loss: backends of the store's pool are terminated
//! (repeatedly, while writes run); the store keeps working, every write it
//! reported as done is durable, and an errored write is never silently lost.
//! Through a fault proxy: a lease claim whose answer was lost after it
//! committed can be repeated by its owner, and an unreachable server fails
//! fast and recovers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_store::{ReplaceOutcome, Store, VersionedTokens};
use authgate_testkit::PgFaultProxy;
use common::{TestDb, account, keys, token_set};
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

async fn terminate_backends(admin: &sqlx::PgPool, application_name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = $1",
    )
    .bind(application_name)
    .fetch_one(admin)
    .await
    .unwrap()
}

/// Reads until the database answers (a read may hit a dying connection).
async fn read_eventually(store: &dyn Store, a: &authgate_store::AccountId) -> VersionedTokens {
    for _ in 0..100 {
        if let Ok(Some(v)) = store.read_tokens(a).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the store did not recover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_recovers_from_terminated_connections_without_losing_writes() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let TestDb::Postgres {
        base_url,
        application_name,
        ..
    } = &db
    else {
        unreachable!()
    };
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "pg-loss").await;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(base_url)
        .await
        .unwrap();

    // Plain loss: every pooled connection dies between two calls.
    assert!(terminate_backends(&admin, application_name).await > 0);
    let read = read_eventually(&*store, &a.id).await;
    assert_eq!(read.tokens, Some(token_set("pg-loss")));

    // Loss during writes: a killer terminates the pool's backends while one
    // writer performs sequential compare-and-swap updates.
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicU64::new(0));
    let killer = {
        let (admin, name) = (admin.clone(), application_name.clone());
        let (stop, terminated) = (Arc::clone(&stop), Arc::clone(&terminated));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = terminate_backends(&admin, &name).await;
                terminated.fetch_add(u64::try_from(n).unwrap(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    let mut version = read.version;
    let mut last_tag = "pg-loss".to_owned();
    let (mut ok, mut errors) = (0, 0);
    for i in 0..150 {
        let tag = format!("w{i}");
        match store
            .replace_tokens(&a.id, version, &token_set(&tag), None)
            .await
        {
            Ok(ReplaceOutcome::Replaced { new_version }) => {
                assert_eq!(new_version, version + 1);
                version = new_version;
                last_tag = tag;
                ok += 1;
            }
            Ok(ReplaceOutcome::LostRace { current_version }) => {
                panic!("single writer lost a race (version {version} vs {current_version})")
            }
            Err(_) => {
                // Outcome unknown: the store must show either the old state or
                // exactly this write, nothing else.
                errors += 1;
                let now = read_eventually(&*store, &a.id).await;
                if now.version == version + 1 {
                    assert_eq!(now.tokens, Some(token_set(&tag)));
                    version = now.version;
                    last_tag = tag;
                } else {
                    assert_eq!(now.version, version, "a write was lost or duplicated");
                    assert_eq!(now.tokens, Some(token_set(&last_tag)));
                }
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();
    eprintln!(
        "{ok} writes succeeded, {errors} failed with connection errors, {} backends terminated",
        terminated.load(Ordering::SeqCst)
    );
    assert!(terminated.load(Ordering::SeqCst) > 0);
    assert!(ok > 0);

    let last = read_eventually(&*store, &a.id).await;
    assert_eq!(last.version, version);
    assert_eq!(last.tokens, Some(token_set(&last_tag)));
    assert!(store.find_account(&a.id).await.unwrap().is_some());
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_claim_whose_answer_was_lost_is_found_by_repeating_it() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let TestDb::Postgres { base_url, .. } = &db else {
        unreachable!()
    };
    let direct = db.open(keys()).await;
    let (_, a) = account(&*direct, "lost-claim").await;
    let proxy = PgFaultProxy::start(base_url).await;
    let through = db.open_through(proxy.url().as_str(), keys()).await;
    let ttl = Duration::from_secs(30);

    proxy.lose_reply_to(b"owner-whose-answer-is-lost");
    let lost = through
        .try_claim_refresh_lease(&a.id, "owner-whose-answer-is-lost", ttl)
        .await;
    assert!(lost.is_err(), "the client saw an error: {lost:?}");
    assert_eq!(proxy.replies_lost(), 1);
    // The claim committed: the lease is taken by the owner that saw an error.
    let lease = direct.read_refresh_lease(&a.id).await.unwrap().unwrap();
    assert_eq!(lease.owner, "owner-whose-answer-is-lost");
    assert!(
        direct
            .try_claim_refresh_lease(&a.id, "someone-else", ttl)
            .await
            .unwrap()
            .is_none()
    );
    // Repeating the claim finds it instead of waiting for it to lapse.
    let again = through
        .try_claim_refresh_lease(&a.id, "owner-whose-answer-is-lost", ttl)
        .await
        .unwrap()
        .expect("the owner holds it");
    assert!(again.remaining >= ttl);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_fails_fast_and_the_store_recovers() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let TestDb::Postgres { base_url, .. } = &db else {
        unreachable!()
    };
    let direct = db.open(keys()).await;
    let (_, a) = account(&*direct, "down").await;
    let proxy = PgFaultProxy::start(base_url).await;
    let through = db.open_through(proxy.url().as_str(), keys()).await;
    assert!(through.read_tokens(&a.id).await.unwrap().is_some());

    proxy.down();
    let started = std::time::Instant::now();
    assert!(through.read_tokens(&a.id).await.is_err());
    assert!(
        through
            .renew_refresh_lease(&a.id, "anyone", Duration::from_secs(5))
            .await
            .is_err()
    );
    eprintln!(
        "two failed calls against a down server took {:?}",
        started.elapsed()
    );

    proxy.up();
    let back = read_eventually(&*through, &a.id).await;
    assert_eq!(back.tokens, Some(token_set("down")));
}
