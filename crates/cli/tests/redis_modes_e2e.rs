//! The gateway assembled by `App::build` (as `authgate serve` does) on a TLS
//! Redis trusting `cache.redis_ca_file`, and on Redis Sentinel: `/readyz`
//! reaches the cache through each; a wrong CA leaves the gateway ready on the
//! store alone (losing Redis costs only latency); an unreadable CA file stops
//! the start with the file named. Private redis-server processes on free
//! ports, never the shared Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate::app::{App, Migrations};
use authgate_config::Config;
use authgate_testkit::{RedisInstance, SentinelInstance, TestCa};
use common::{reserve, start};

fn toml(public: &url::Url, cache: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "{public}"

[session]
secret = "test-secret-at-least-32-chars-long!!"

[store]
url = "{{db}}"

[cache]
{cache}
"#,
        public = public.as_str().trim_end_matches('/')
    )
}

async fn readiness(gateway: &common::Gateway) -> (u16, String) {
    let response = reqwest::get(gateway.url.join("/readyz").unwrap())
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reaches_a_tls_redis_through_its_private_ca() {
    let server = RedisInstance::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("redis-ca.pem");
    std::fs::write(&ca_file, server.ca_pem().unwrap()).unwrap();
    let cache = format!(
        "url = \"{}\"\nredis_ca_file = \"{}\"",
        server.url(),
        ca_file.display()
    );
    let reserved = reserve().await;
    let public = reserved.url.clone();
    let gateway = start(reserved, &toml(&public, &cache)).await;
    assert_eq!(readiness(&gateway).await, (200, "ready".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_wrong_ca_the_gateway_is_ready_on_the_store_alone() {
    let server = RedisInstance::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("other-ca.pem");
    std::fs::write(&ca_file, TestCa::generate().other_ca_pem()).unwrap();
    let cache = format!(
        "url = \"{}\"\nredis_ca_file = \"{}\"",
        server.url(),
        ca_file.display()
    );
    let reserved = reserve().await;
    let public = reserved.url.clone();
    let gateway = start(reserved, &toml(&public, &cache)).await;
    let started = std::time::Instant::now();
    let (status, body) = readiness(&gateway).await;
    assert_eq!(status, 200);
    assert!(body.contains("cache unreachable"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn an_unreadable_ca_file_stops_the_start_naming_it() {
    let reserved = reserve().await;
    let db = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", db.path().join("authgate.db").display());
    let toml = toml(
        &reserved.url,
        "url = \"rediss://localhost:1\"\nredis_ca_file = \"/nonexistent/authgate-ca.pem\"",
    )
    .replace("{db}", &db_url);
    let config = Config::from_sources(Some(("test.toml", &toml)), std::iter::empty()).unwrap();
    let error = App::build(&config, Migrations::Apply)
        .await
        .err()
        .expect("the start must fail")
        .to_string();
    assert!(
        error.contains("cache.redis_ca_file") && error.contains("/nonexistent/authgate-ca.pem"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reaches_redis_through_sentinel() {
    let master = RedisInstance::start();
    let sentinel = SentinelInstance::start("authgate-e2e", master.port());
    let cache = format!(
        "url = \"redis+sentinel://127.0.0.1:{}/authgate-e2e\"",
        sentinel.port()
    );
    let reserved = reserve().await;
    let public = reserved.url.clone();
    let gateway = start(reserved, &toml(&public, &cache)).await;
    assert_eq!(readiness(&gateway).await, (200, "ready".to_owned()));
}
