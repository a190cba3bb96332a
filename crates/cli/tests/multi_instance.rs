//! Three `authgate serve` processes sharing PostgreSQL and Redis: a refresh
//! storm spread over all of them costs exactly one grant per session at the
//! strict-rotation `oidc-provider` peer, and no session is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, free_port, require_url};
use common::*;
use reqwest::header::COOKIE;
use sqlx::Connection;
use std::process::Stdio;
use std::time::Duration;

/// A database of its own for this test, dropped at the end.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create(admin_url: &str) -> Self {
        let name = format!(
            "authgate_mi_{}",
            std::process::id() as u64 * 1000 + rand_suffix()
        );
        let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }

    async fn drop_now(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        % 1000
}

/// A child `authgate` process, killed when dropped.
struct Instance {
    child: tokio::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn authgate() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"));
    c.env_remove("AUTHGATE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

#[tokio::test]
async fn a_storm_spread_over_three_processes_costs_exactly_one_grant_per_session() {
    let (Some(pg), Some(redis)) = (
        require_url("AUTHGATE_TEST_POSTGRES_URL"),
        require_url("AUTHGATE_TEST_REDIS_URL"),
    ) else {
        return;
    };
    let db = TestDatabase::create(&pg).await;
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<url::Url> = ports
        .iter()
        .map(|p| url::Url::parse(&format!("http://127.0.0.1:{p}")).unwrap())
        .collect();
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{}auth/callback/op", urls[0]),
        )],
        access_token_ttl_secs: 11,
        ..Default::default()
    })
    .await;
    let (upstream, _upstream_task) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let toml = config_toml(
            url,
            peer.issuer().as_str().trim_end_matches('/'),
            &db.url,
            "",
            "inline",
        )
        .replace(
            "http://127.0.0.1:9",
            upstream.as_str().trim_end_matches('/'),
        )
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{}\"", ports[i]),
        )
        .replace("skew = \"2s\"", "skew = \"10s\"")
        .replace("url = \"memory://\"", &format!("url = \"{redis}\""));
        let path = dir.path().join(format!("authgate-{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        configs.push(path);
    }
    let migrated = authgate()
        .arg("migrate")
        .arg("--config")
        .arg(&configs[0])
        .output()
        .await
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut instances = Vec::new();
    for (i, path) in configs.iter().enumerate() {
        let child = authgate()
            .arg("serve")
            .arg("--config")
            .arg(path)
            // Its log, read if it never becomes ready (a pipe nobody drains
            // would block the process once full).
            .stderr(std::fs::File::create(path.with_extension("log")).unwrap())
            .spawn()
            .unwrap();
        instances.push(Instance {
            log: path.with_extension("log"),
            child,
            url: urls[i].as_str().trim_end_matches('/').to_owned(),
        });
    }
    let probe = reqwest::Client::new();
    for inst in &mut instances {
        let mut ready = false;
        for _ in 0..100 {
            if probe
                .get(format!("{}/readyz", inst.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            let _ = inst.child.start_kill();
            let err = std::fs::read_to_string(&inst.log).unwrap_or_default();
            panic!("instance {} never became ready: {err}", inst.url);
        }
    }

    // 100 users sign in through the first instance.
    let mut browsers = Vec::new();
    let logins: Vec<usize> = (0..100).collect();
    for batch in logins.chunks(10) {
        let mut tasks = Vec::new();
        for &i in batch {
            let gw = urls[0].clone();
            tasks.push(tokio::spawn(async move {
                sign_in_with_peer(&gw, &format!("multi{i}"), "/").await.0
            }));
        }
        for t in tasks {
            browsers.push(t.await.unwrap());
        }
    }
    // Refreshed tokens live 20 s (fresh for 10 s); the sign-in tokens are
    // stale 1 s after issue.
    peer.set_access_token_ttl(20).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    peer.reset_stats().await;

    let mut tasks = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        for j in 0..10 {
            let target = format!("{}/protected/storm", instances[(i + j) % 3].url);
            let (client, cookie) = (b.client.clone(), b.cookie_header());
            tasks.push(tokio::spawn(async move {
                client
                    .get(target)
                    .header(COOKIE, cookie)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let stats = peer.stats().await;
    drop(instances);
    db.drop_now().await;
    assert!(
        statuses.iter().all(|&s| s == 200),
        "every request succeeds: {statuses:?}"
    );
    assert_eq!(
        stats.refresh_grants, 100,
        "exactly one grant per session: {stats:?}"
    );
    assert_eq!(
        stats.refresh_errors("invalid_grant"),
        0,
        "no grant was revoked"
    );
    eprintln!(
        "three instances: 1000 requests, {} grants for 100 sessions",
        stats.refresh_grants
    );
}
