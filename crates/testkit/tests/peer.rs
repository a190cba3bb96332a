//! The oidc-provider peer behaves as the gateway's end-to-end and refresh-storm tests need, and
//! the private redis-server can be killed and restarted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use authgate_testkit::{
    OidcProviderPeer, PeerClient, PeerOptions, Pkce, RedisInstance, interop_dir,
    login_with_dev_interactions, random_token, require_url,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLIENT: &str = "gateway";
const SECRET: &str = "gateway-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/auth/callback/peer";

async fn peer(access_token_ttl_secs: u64) -> OidcProviderPeer {
    OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(CLIENT, SECRET, REDIRECT)],
        access_token_ttl_secs,
        ..PeerOptions::default()
    })
    .await
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn query(url: &url::Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The whole sign-in as the gateway will do it: PKCE S256, prompt=consent, offline_access,
/// dev interactions, code exchange with client_secret_basic (raw HTTP, not the helper).
#[tokio::test]
async fn code_flow_then_strict_rotation_with_reuse_detection() {
    let peer = peer(30).await;
    let pkce = Pkce::new();
    let (state, nonce) = (random_token(16), random_token(16));
    let authorize = peer.authorization_url(
        CLIENT,
        "openid email profile offline_access",
        &state,
        &nonce,
        &pkce,
    );
    assert!(authorize.as_str().starts_with(peer.issuer().as_str()));

    let callback = login_with_dev_interactions(&authorize, "alice.smith").await;
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    let params = query(&callback);
    assert_eq!(params["state"], state);
    assert_eq!(
        params["iss"],
        peer.issuer().as_str().trim_end_matches('/'),
        "RFC 9207 iss"
    );

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = http
        .post(peer.token_endpoint())
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let rt1 = tokens["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    let id_token = tokens["id_token"]
        .as_str()
        .expect("openid gives an id_token");
    assert_eq!(tokens["expires_in"], 30);
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = jwt_claims(id_token);
    assert_eq!(claims["sub"], "alice.smith");
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["email"], "alice.smith@example.test");
    assert_eq!(claims["name"], "Alice Smith");

    let userinfo = peer.userinfo(&access).await.unwrap();
    assert_eq!(userinfo["sub"], "alice.smith");
    assert_eq!(userinfo["email"], "alice.smith@example.test");
    assert_eq!(userinfo["name"], "Alice Smith");

    // Refresh rotates.
    let second = peer.refresh(CLIENT, rt1).await.unwrap();
    let rt2 = second
        .refresh_token
        .clone()
        .expect("rotation issues a new refresh token");
    assert_ne!(rt2, rt1);
    assert_ne!(second.access_token, access);
    assert!(peer.is_active(CLIENT, &rt2).await);
    assert!(peer.is_active(CLIENT, &second.access_token).await);

    // Replaying the consumed token: invalid_grant, and the whole grant dies.
    let reuse = peer.refresh(CLIENT, rt1).await.unwrap_err();
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert_eq!(reuse.error(), Some("invalid_grant"));
    assert!(
        !peer.is_active(CLIENT, &rt2).await,
        "strict rotation revokes the newest RT"
    );
    assert!(!peer.is_active(CLIENT, &second.access_token).await);
    assert_eq!(
        peer.refresh(CLIENT, &rt2).await.unwrap_err().error(),
        Some("invalid_grant")
    );

    let stats = peer.stats().await;
    assert_eq!(stats.code_grants, 1);
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_errors("invalid_grant"), 2);
    assert_eq!(stats.refresh_grants_by_account["alice.smith"], 1);
    assert!(stats.grants_revoked >= 1);
}

/// PKCE is mandatory (S256 only) and offline_access without prompt=consent gives no refresh token.
#[tokio::test]
async fn pkce_required_and_offline_access_needs_consent() {
    let peer = peer(60).await;

    let mut no_pkce = peer.authorization_endpoint();
    no_pkce
        .query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s1");
    let callback = login_with_dev_interactions(&no_pkce, "bob").await;
    let params = query(&callback);
    assert_eq!(params["error"], "invalid_request", "{callback}");
    assert_eq!(params["state"], "s1");

    let mut plain = no_pkce.clone();
    plain
        .query_pairs_mut()
        .append_pair("code_challenge", "x".repeat(43).as_str())
        .append_pair("code_challenge_method", "plain");
    let params = query(&login_with_dev_interactions(&plain, "bob").await);
    assert_eq!(params["error"], "invalid_request");

    // Wrong verifier at the token endpoint.
    let pkce = Pkce::new();
    let url = peer.authorization_url(CLIENT, "openid", "s2", "n2", &pkce);
    let params = query(&login_with_dev_interactions(&url, "bob").await);
    let wrong = peer
        .exchange_code(CLIENT, &params["code"], &Pkce::new().verifier)
        .await
        .unwrap_err();
    assert_eq!(wrong.error(), Some("invalid_grant"));

    // A code is single-use; replaying it also revokes what it gave.
    let pkce = Pkce::new();
    let url = peer.authorization_url(CLIENT, "openid offline_access", "s4", "n4", &pkce);
    let code = query(&login_with_dev_interactions(&url, "bob").await)["code"].clone();
    let tokens = peer
        .exchange_code(CLIENT, &code, &pkce.verifier)
        .await
        .unwrap();
    assert!(peer.is_active(CLIENT, &tokens.access_token).await);
    let replayed = peer
        .exchange_code(CLIENT, &code, &pkce.verifier)
        .await
        .unwrap_err();
    assert_eq!(replayed.error(), Some("invalid_grant"));
    assert!(!peer.is_active(CLIENT, &tokens.access_token).await);
    assert!(!peer.is_active(CLIENT, &tokens.refresh_token.unwrap()).await);
    assert_eq!(peer.stats().await.code_errors["invalid_grant"], 2);

    // offline_access without prompt=consent is silently dropped: no refresh token.
    let pkce = Pkce::new();
    let mut url = peer.authorization_endpoint();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "s3")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let params = query(&login_with_dev_interactions(&url, "bob").await);
    let tokens = peer
        .exchange_code(CLIENT, &params["code"], &pkce.verifier)
        .await
        .unwrap();
    assert!(tokens.refresh_token.is_none());
}

/// Two concurrent refreshes with one token: one wins, the other gets `invalid_grant`, and the
/// winner's tokens are revoked too — the race the refresh engine must make impossible.
#[tokio::test]
async fn concurrent_refreshes_with_one_token_lose_the_grant() {
    let peer = peer(60).await;
    for delay in [0, 200] {
        peer.set_refresh_delay(delay).await;
        let rt = peer
            .obtain_tokens(CLIENT, &format!("racer{delay}"))
            .await
            .refresh_token
            .unwrap();
        let (a, b) = tokio::join!(peer.refresh(CLIENT, &rt), peer.refresh(CLIENT, &rt));
        let (winner, loser) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("expected one winner and one loser, got {other:?}"),
        };
        assert_eq!(loser.error(), Some("invalid_grant"));
        assert!(!peer.is_active(CLIENT, &winner.refresh_token.unwrap()).await);
        assert!(!peer.is_active(CLIENT, &winner.access_token).await);
    }
    let stats = peer.stats().await;
    assert_eq!(stats.refresh_grants, 2);
    assert_eq!(stats.refresh_errors("invalid_grant"), 2);
}

/// Counters are exact (also under concurrency across accounts) and reset to zero.
#[tokio::test]
async fn stats_count_refresh_grants_exactly() {
    let peer = peer(60).await;
    let mut rts = Vec::new();
    for login in ["u1", "u2", "u3", "u4"] {
        rts.push((
            login,
            peer.obtain_tokens(CLIENT, login)
                .await
                .refresh_token
                .unwrap(),
        ));
    }
    assert_eq!(peer.stats().await.code_grants, 4);

    let peer = std::sync::Arc::new(peer);
    for _round in 0..3 {
        let handles: Vec<_> = rts
            .iter()
            .map(|(_, rt)| {
                let (peer, rt) = (peer.clone(), rt.clone());
                tokio::spawn(async move { peer.refresh(CLIENT, &rt).await })
            })
            .collect();
        for ((_, rt), handle) in rts.iter_mut().zip(handles) {
            *rt = handle.await.unwrap().unwrap().refresh_token.unwrap();
        }
    }
    let stats = peer.stats().await;
    assert_eq!(stats.refresh_grants, 12);
    assert!(stats.refresh_errors.is_empty(), "{stats:?}");
    for (login, _) in &rts {
        assert_eq!(stats.refresh_grants_by_account[*login], 3);
    }
    assert_eq!(stats.refresh_in_flight, 0);

    peer.reset_stats().await;
    let stats = peer.stats().await;
    assert_eq!((stats.code_grants, stats.refresh_grants), (0, 0));
    assert!(stats.refresh_grants_by_account.is_empty());

    peer.refresh(CLIENT, &rts[0].1).await.unwrap();
    assert_eq!(peer.stats().await.refresh_grants, 1);
}

/// `set_refresh_delay` makes every refresh grant take at least the delay; concurrent delayed
/// refreshes are visible as in-flight.
#[tokio::test]
async fn refresh_delay_is_applied_at_runtime() {
    let peer = peer(60).await;
    let a = peer
        .obtain_tokens(CLIENT, "slow-a")
        .await
        .refresh_token
        .unwrap();
    let b = peer
        .obtain_tokens(CLIENT, "slow-b")
        .await
        .refresh_token
        .unwrap();

    peer.set_refresh_delay(600).await;
    assert_eq!(peer.stats().await.delay_refresh_ms, 600);
    let started = Instant::now();
    let (ra, rb) = tokio::join!(peer.refresh(CLIENT, &a), peer.refresh(CLIENT, &b));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(1150),
        "delays overlap: {elapsed:?}"
    );
    let a = ra.unwrap().refresh_token.unwrap();
    rb.unwrap();
    let stats = peer.stats().await;
    assert_eq!(stats.max_refresh_in_flight, 2);
    assert_eq!(stats.refresh_grants, 2);

    peer.set_refresh_delay(0).await;
    let started = Instant::now();
    peer.refresh(CLIENT, &a).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// RFC 7009 revocation: refresh tokens and access tokens die; unknown tokens answer 200.
#[tokio::test]
async fn revocation_endpoint_revokes_tokens() {
    let peer = peer(60).await;
    let tokens = peer.obtain_tokens(CLIENT, "carol").await;
    let rt = tokens.refresh_token.unwrap();
    assert!(peer.is_active(CLIENT, &rt).await);
    assert!(peer.is_active(CLIENT, &tokens.access_token).await);

    assert_eq!(
        peer.revoke(CLIENT, &rt, Some("refresh_token")).await,
        StatusCode::OK
    );
    assert!(!peer.is_active(CLIENT, &rt).await);
    assert_eq!(
        peer.refresh(CLIENT, &rt).await.unwrap_err().error(),
        Some("invalid_grant")
    );

    let other = peer.obtain_tokens(CLIENT, "dave").await;
    assert_eq!(
        peer.revoke(CLIENT, &other.access_token, None).await,
        StatusCode::OK
    );
    assert!(!peer.is_active(CLIENT, &other.access_token).await);
    assert!(peer.userinfo(&other.access_token).await.is_err());
    assert_eq!(
        peer.revoke(CLIENT, "no-such-token", None).await,
        StatusCode::OK
    );
    assert_eq!(peer.stats().await.revocations, 3);
}

/// Without reuse detection a consumed refresh token is simply gone: replaying it is
/// `invalid_grant` but the grant lives on, and revoking it leaves the newer token alive.
#[tokio::test]
async fn without_reuse_detection_a_consumed_refresh_token_is_forgotten() {
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(CLIENT, SECRET, REDIRECT)],
        reuse_detection: false,
        ..PeerOptions::default()
    })
    .await;
    let tokens = peer.obtain_tokens(CLIENT, "erin").await;
    let first = tokens.refresh_token.unwrap();
    let second = peer.refresh(CLIENT, &first).await.unwrap();
    let second_rt = second.refresh_token.unwrap();
    assert_ne!(second_rt, first, "still rotated");

    assert_eq!(
        peer.refresh(CLIENT, &first).await.unwrap_err().error(),
        Some("invalid_grant")
    );
    assert_eq!(
        peer.revoke(CLIENT, &first, Some("refresh_token")).await,
        StatusCode::OK
    );
    assert!(
        peer.is_active(CLIENT, &second_rt).await,
        "the grant lives on"
    );
    assert_eq!(peer.stats().await.grants_revoked, 0);
    // Revoking the newest one does end the grant.
    peer.revoke(CLIENT, &second_rt, Some("refresh_token")).await;
    assert!(!peer.is_active(CLIENT, &second_rt).await);
}

fn process_gone(pid: u32) -> bool {
    let status = Path::new("/proc").join(pid.to_string()).join("status");
    match std::fs::read_to_string(status) {
        Err(_) => true,
        // A zombie has exited already.
        Ok(text) => text
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

#[tokio::test]
async fn peer_process_is_gone_after_drop() {
    let peer = peer(60).await;
    let pid = peer.pid();
    assert!(!process_gone(pid));
    drop(peer);
    assert!(process_gone(pid), "the peer {pid} still runs after drop");
}

/// The peer exits by itself when its stdin closes (a killed parent never leaves it running).
#[test]
fn peer_exits_when_stdin_closes() {
    authgate_testkit::ensure_node_modules();
    let mut child = Command::new("node")
        .arg("oidc-provider.mjs")
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let announced: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        announced["issuer"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(announced["stats"].as_str().unwrap().ends_with("/__stats"));

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the peer did not exit after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

#[test]
fn redis_instance_start_kill_restart() {
    let mut redis = RedisInstance::start();
    let port = redis.port();
    assert_ne!(port, 6379);
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/"));
    assert!(redis_ping(port));

    redis.kill();
    assert!(!redis.is_running());
    assert!(!redis_ping(port), "killed redis still answers");

    redis.restart();
    assert_eq!(redis.port(), port);
    assert!(redis_ping(port));
    let pid = redis.pid().unwrap();
    drop(redis);
    assert!(process_gone(pid));
    assert!(!redis_ping(port));
}

#[test]
fn require_url_skips_or_fails_when_unset() {
    const VAR: &str = "AUTHGATE_TESTKIT_NEVER_SET_URL";
    let required = std::env::var("AUTHGATE_REQUIRE_SERVICES").as_deref() == Ok("1");
    let outcome = std::panic::catch_unwind(|| require_url(VAR));
    if required {
        assert!(outcome.is_err());
    } else {
        assert_eq!(outcome.unwrap(), None);
    }
    // A variable that is surely set is returned as is.
    assert!(require_url("PATH").is_some());
}

/// A peer that cannot start panics with its own stderr in the message.
#[tokio::test]
#[should_panic(expected = "listen failed")]
async fn startup_failure_reports_the_peer_output() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    OidcProviderPeer::start(PeerOptions {
        port: Some(port),
        ..PeerOptions::default()
    })
    .await;
}
