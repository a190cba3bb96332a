//! The revocation set (`[session] revocation_check = "request"`), run
//! unchanged against the in-process set and the real Redis
//! (`AUTHGATE_TEST_REDIS_URL`, random key prefix per test).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_store::SessionId;
use authgate_store::cache::{
    CacheError, CacheOptions, RedisRevocations, RevocationSet, open_revocation_set,
};
use common::random_suffix;
use std::sync::Arc;
use std::time::Duration;

/// A set on `url` with this test's own key prefix.
fn set(url: &str, prefix: &str, lifetime: Duration) -> Arc<dyn RevocationSet> {
    let options = CacheOptions {
        key_prefix: prefix.to_owned(),
        ..CacheOptions::default()
    };
    open_revocation_set(url, &options, lifetime).unwrap()
}

macro_rules! revocation_suite {
    ($($body:ident),* $(,)?) => {
        mod memory_set {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body("memory://").await;
                }
            )*
        }
        mod redis_set {
            $(
                #[tokio::test]
                async fn $body() {
                    let Some(url) = super::common::service_url("AUTHGATE_TEST_REDIS_URL") else {
                        return;
                    };
                    super::$body(&url).await;
                }
            )*
        }
    };
}

revocation_suite!(
    revoked_ids_are_found_and_others_are_not,
    entries_end_with_the_session_lifetime,
);

async fn revoked_ids_are_found_and_others_are_not(url: &str) {
    let prefix = format!("authgate-test-{}:", random_suffix());
    let set = set(url, &prefix, Duration::from_secs(60));
    let (a, b, c) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    assert!(!set.contains(&a).await.unwrap());
    set.insert(&[a.clone(), b.clone()]).await.unwrap();
    set.insert(&[]).await.unwrap();
    assert!(set.contains(&a).await.unwrap());
    assert!(set.contains(&b).await.unwrap());
    assert!(!set.contains(&c).await.unwrap());
    // Inserting again is harmless.
    set.insert(std::slice::from_ref(&a)).await.unwrap();
    assert!(set.contains(&a).await.unwrap());
}

async fn entries_end_with_the_session_lifetime(url: &str) {
    let prefix = format!("authgate-test-{}:", random_suffix());
    let set = set(url, &prefix, Duration::from_millis(300));
    let id = SessionId::generate();
    set.insert(std::slice::from_ref(&id)).await.unwrap();
    assert!(set.contains(&id).await.unwrap());
    // A revoked session's cookie cannot outlive the session lifetime, so
    // neither does the entry.
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !set.contains(&id).await.unwrap() {
            gone = true;
            break;
        }
    }
    assert!(gone, "the entry outlived the session lifetime");
}

#[tokio::test]
async fn every_instance_sees_a_revocation_made_on_another_through_redis() {
    let Some(url) = common::service_url("AUTHGATE_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!("authgate-test-{}:", random_suffix());
    let one = set(&url, &prefix, Duration::from_secs(60));
    let other = set(&url, &prefix, Duration::from_secs(60));
    let id = SessionId::generate();
    one.insert(std::slice::from_ref(&id)).await.unwrap();
    assert!(other.contains(&id).await.unwrap());
    assert_eq!(other.kind(), "redis");
    // The key carries the prefix, so deployments sharing a Redis do not mix.
    let elsewhere = set(
        &url,
        "authgate-test-other-deployment:",
        Duration::from_secs(60),
    );
    assert!(!elsewhere.contains(&id).await.unwrap());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}revoked:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}revoked:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_never_a_silent_not_revoked() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let set = RedisRevocations::open(
        &format!("redis://127.0.0.1:{port}"),
        "authgate-test:",
        Duration::from_secs(60),
    )
    .unwrap();
    let id = SessionId::generate();
    assert!(matches!(set.contains(&id).await, Err(CacheError::Redis(_))));
    assert!(set.insert(&[id]).await.is_err());
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    let r = open_revocation_set(
        "memcached://127.0.0.1",
        &CacheOptions::default(),
        Duration::from_secs(1),
    );
    assert!(matches!(r, Err(CacheError::UnsupportedUrl(_))));
}
