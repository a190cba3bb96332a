//! A refresh token is never spent twice, whatever the store does (issue #9 §5), against the real
//! `oidc-provider` with strict rotation (a replayed refresh token revokes the whole grant) and a
//! real PostgreSQL (own schema per test):
//!
//! - a store error while confirming the lease never counts as holding it;
//! - leases are judged by the store's clock: an instance whose clock is 30 s off cannot take a
//!   lease that is still held;
//! - rotated tokens survive seconds of blocked writes (retried until the persist deadline);
//! - ending a grant (sign-out) serialises with a running refresh, so no live refresh token is
//!   left at the provider;
//! - a lease claim whose answer was lost does not block the account until the lease lapses.
//!
//! Store faults come from a TCP proxy in front of PostgreSQL (`PgFaultProxy`) and from a table
//! lock taken on another connection; provider timing from a `FaultProxy` and the peer's delay.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_oauth::{HttpClient, TokenTypeHint};
use authgate_refresh::{
    EndReason, GrantEnd, Outcome, RefreshService, RefreshSettings, RetryPolicy, Revocation,
    TokenRefresher,
};
use authgate_store::Store;
use authgate_testkit::{
    Fault, FaultProxy, OidcProviderPeer, PeerClient, PeerOptions, PgFaultProxy,
};
use common::*;
use sqlx::Connection as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

async fn peer_with(reuse_detection: bool) -> OidcProviderPeer {
    OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(CLIENT, CLIENT_SECRET, REDIRECT)],
        access_token_ttl_secs: 300,
        reuse_detection,
        ..PeerOptions::default()
    })
    .await
}

/// The refresher straight to the peer.
async fn direct(peer: &OidcProviderPeer) -> Arc<dyn TokenRefresher> {
    catalog_refresher(
        vec![provider_settings(PROVIDER, peer.issuer(), None)],
        &HttpClient::new(&Default::default()).unwrap(),
    )
    .await
}

/// The refresher with token requests through `proxy`.
async fn through(peer: &OidcProviderPeer, proxy: &FaultProxy) -> Arc<dyn TokenRefresher> {
    catalog_refresher(
        vec![provider_settings(
            PROVIDER,
            peer.issuer(),
            Some(proxy.token_endpoint()),
        )],
        &HttpClient::new(&Default::default()).unwrap(),
    )
    .await
}

fn refresh_token(o: &Outcome) -> String {
    match o {
        Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => tokens
            .refresh_token
            .as_ref()
            .expect("a refresh token")
            .expose()
            .to_owned(),
        other => panic!("no tokens in {other:?}"),
    }
}

async fn stored_refresh_token(store: &Arc<dyn Store>, s: &Seeded) -> Option<String> {
    let v = store.read_tokens(&s.account).await.unwrap().unwrap();
    v.tokens
        .and_then(|t| t.refresh_token)
        .map(|t| t.expose().to_owned())
}

/// No refresh token was replayed and no grant revoked at the provider; `grants` were served.
async fn assert_no_double_spend(peer: &OidcProviderPeer, grants: u64) {
    let stats = peer.stats().await;
    assert!(
        stats.refresh_errors.is_empty(),
        "refresh errors at the provider (a replayed refresh token): {:?}",
        stats.refresh_errors
    );
    assert_eq!(stats.grants_revoked, 0, "grants revoked at the provider");
    assert_eq!(stats.refresh_grants, grants, "refresh grants served");
}

async fn eventually_async<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut ok: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if ok().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Bullet 1. Instance A holds the lease and backs off after a 429 (Retry-After: 6 s); its store
/// becomes unreachable, so it can neither renew nor confirm the lease, which lapses by the store's
/// clock. Instance B then refreshes (rotating the refresh token). When A's backoff ends, A must
/// not take its failed confirmations for "still held" and present the consumed refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_while_confirming_the_lease_never_counts_as_holding_it() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = peer_with(true).await;
    let b_store = pg.store().await;
    let seeded = seed_accounts(&peer, &b_store, 1).await;
    peer.reset_stats().await;
    let pg_proxy = PgFaultProxy::start(&pg.url()).await;
    let a_store = PgSchema::store_at(pg_proxy.url().as_str()).await;
    let token_proxy = FaultProxy::start(peer.issuer()).await;
    token_proxy.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after_secs: 6,
        },
    );
    let a_settings = RefreshSettings {
        deadline: Duration::from_secs(15),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(6),
        },
        ..settings()
    };
    let a = service(
        a_store,
        through(&peer, &token_proxy).await,
        polling(),
        a_settings,
        lenient_breaker(),
        "instance-a",
    );
    let b = service(
        Arc::clone(&b_store),
        direct(&peer).await,
        polling(),
        settings(),
        lenient_breaker(),
        "instance-b",
    );

    let account = seeded[0].account.clone();
    let a_flight = {
        let (a, account) = (a.clone(), account.clone());
        tokio::spawn(async move { a.refresh(&account, PROVIDER).await })
    };
    assert!(
        eventually(Duration::from_secs(10), || token_proxy.token_requests()
            == 1)
        .await,
        "A asked the provider once and got a 429"
    );
    pg_proxy.down();
    // A's lease lapses by the store's clock (2 s lease, no renewal reaches the store).
    let lapsed = eventually_async(Duration::from_secs(5), || {
        let (store, account) = (Arc::clone(&b_store), account.clone());
        async move {
            store
                .read_refresh_lease(&account)
                .await
                .unwrap()
                .is_none_or(|l| l.remaining.is_zero())
        }
    })
    .await;
    assert!(lapsed, "A's lease lapsed");
    let b_outcome = b.refresh(&account, PROVIDER).await;
    assert!(
        matches!(b_outcome, Outcome::Refreshed { .. }),
        "{b_outcome:?}"
    );
    let a_outcome = a_flight.await.unwrap();
    pg_proxy.up();

    assert!(
        matches!(a_outcome, Outcome::Unavailable { .. }),
        "A gave up without the store's word: {a_outcome:?}"
    );
    assert_eq!(
        token_proxy.token_requests(),
        1,
        "A never presented the refresh token again"
    );
    assert_no_double_spend(&peer, 1).await;
    let live = stored_refresh_token(&b_store, &seeded[0]).await.unwrap();
    assert_eq!(live, refresh_token(&b_outcome));
    assert!(peer.is_active(CLIENT, &live).await, "the grant lives on");
}

/// Bullet 2. Two instances share PostgreSQL; B's clock is 30 s ahead. A holds the lease while a
/// slow provider (3 s) answers; B, judging by its own clock, would think A's 2 s lease long gone.
/// The store's clock decides: B waits for A's result, and the provider sees exactly one grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_is_30s_ahead_cannot_take_a_held_lease() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = peer_with(true).await;
    let observer = pg.store().await;
    let seeded = seed_accounts(&peer, &observer, 1).await;
    peer.reset_stats().await;
    peer.set_refresh_delay(3_000).await;
    let refresher = direct(&peer).await;
    let a = service(
        pg.store().await,
        Arc::clone(&refresher),
        polling(),
        settings(),
        lenient_breaker(),
        "instance-a",
    );
    let b = service_with_clock(
        pg.store().await,
        refresher,
        polling(),
        settings(),
        lenient_breaker(),
        "instance-b-clock-ahead",
        Arc::new(OffsetClock(Duration::from_secs(30))),
    );

    let account = seeded[0].account.clone();
    let a_flight = {
        let (a, account) = (a.clone(), account.clone());
        tokio::spawn(async move { a.refresh(&account, PROVIDER).await })
    };
    let mut in_flight = false;
    for _ in 0..250 {
        if peer.stats().await.refresh_in_flight == 1 {
            in_flight = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_flight, "A's grant is at the provider");
    let b_outcome = b.refresh(&account, PROVIDER).await;
    let a_outcome = a_flight.await.unwrap();

    assert!(
        matches!(a_outcome, Outcome::Refreshed { .. }),
        "{a_outcome:?}"
    );
    assert!(
        matches!(b_outcome, Outcome::AlreadyFresh { .. }),
        "B waited for A's result: {b_outcome:?}"
    );
    assert_eq!(access_token(&a_outcome), access_token(&b_outcome));
    assert_no_double_spend(&peer, 1).await;
    assert!(
        observer
            .read_refresh_lease(&account)
            .await
            .unwrap()
            .is_none()
    );
}

/// Takes `LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE` on its own connection for `hold`, right
/// after the provider's first successful answer (before the gateway can write it).
struct LocksAccountsAfterTheGrant {
    inner: Arc<dyn TokenRefresher>,
    url: String,
    hold: Duration,
    armed: AtomicBool,
    lock: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl TokenRefresher for LocksAccountsAfterTheGrant {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        let answer = self.inner.refresh(provider, refresh_token, now).await;
        if answer.is_ok() && self.armed.swap(false, Ordering::SeqCst) {
            let (locked, is_locked) = tokio::sync::oneshot::channel();
            let (url, hold) = (self.url.clone(), self.hold);
            let task = tokio::spawn(async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                sqlx::query("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                locked.send(()).unwrap();
                tokio::time::sleep(hold).await;
                tx.rollback().await.unwrap();
            });
            is_locked.await.unwrap();
            *self.lock.lock().unwrap() = Some(task);
        }
        answer
    }

    async fn revoke(
        &self,
        provider: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<Revocation, ProviderError> {
        self.inner.revoke(provider, token, hint).await
    }
}

/// Bullet 3. The accounts table is locked for 3 s right after the provider rotated the tokens.
/// With `lock_timeout` set (as many deployments do), every write and lease renewal fails
/// meanwhile; without it, they wait. Either way the rotated tokens are kept in memory and written
/// once the table is free, the session survives, and the next refresh presents the new refresh
/// token (a replay of the consumed one would revoke the grant).
async fn rotated_tokens_survive_blocked_writes(lock_timeout: bool) {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = peer_with(true).await;
    let observer = pg.store().await;
    let seeded = seed_accounts(&peer, &observer, 1).await;
    peer.reset_stats().await;
    let url = if lock_timeout {
        format!("{}&options%5Block_timeout%5D=200ms", pg.url())
    } else {
        pg.url()
    };
    let locking = Arc::new(LocksAccountsAfterTheGrant {
        inner: direct(&peer).await,
        url: pg.url(),
        hold: Duration::from_secs(3),
        armed: AtomicBool::new(true),
        lock: std::sync::Mutex::new(None),
    });
    let svc = service(
        PgSchema::store_at(&url).await,
        locking.clone(),
        polling(),
        settings(),
        lenient_breaker(),
        "blocked-writes",
    );
    let account = &seeded[0].account;
    let before = observer.read_tokens(account).await.unwrap().unwrap();

    let first = svc.refresh(account, PROVIDER).await;
    assert!(
        matches!(first, Outcome::Refreshed { .. }),
        "the session survives the blocked writes: {first:?}"
    );
    let lock = locking
        .lock
        .lock()
        .unwrap()
        .take()
        .expect("the table was locked");
    lock.await.unwrap();
    let after = observer.read_tokens(account).await.unwrap().unwrap();
    assert_eq!(after.version, before.version + 1);
    assert_eq!(
        stored_refresh_token(&observer, &seeded[0]).await.unwrap(),
        refresh_token(&first)
    );
    assert!(
        observer
            .read_refresh_lease(account)
            .await
            .unwrap()
            .is_none()
    );

    make_stale(&observer, &seeded).await;
    let second = svc.refresh(account, PROVIDER).await;
    assert!(matches!(second, Outcome::Refreshed { .. }), "{second:?}");
    assert_no_double_spend(&peer, 2).await;
    assert!(peer.is_active(CLIENT, &refresh_token(&second)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_survive_three_seconds_of_failing_writes() {
    rotated_tokens_survive_blocked_writes(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_tokens_survive_three_seconds_of_waiting_writes() {
    rotated_tokens_survive_blocked_writes(false).await;
}

/// Remembers every refresh token the provider handed out through it.
struct Recording {
    inner: Arc<dyn TokenRefresher>,
    issued: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl TokenRefresher for Recording {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        let answer = self.inner.refresh(provider, refresh_token, now).await;
        if let Ok(TokenSet {
            refresh_token: Some(rt),
            ..
        }) = &answer
        {
            self.issued.lock().unwrap().push(rt.expose().to_owned());
        }
        answer
    }

    async fn revoke(
        &self,
        provider: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<Revocation, ProviderError> {
        self.inner.revoke(provider, token, hint).await
    }
}

/// Bullet 4. A refresh rotates at the provider, whose answer takes 2 s to arrive; meanwhile the
/// user signs out, on another instance and on the same one. Ending the grant waits for the
/// rotation and revokes the newest refresh token: afterwards the provider knows no active
/// refresh token of the grant. Against a provider without reuse detection, revoking the consumed
/// token (what a sign-out that ignores the running refresh does) would leave the new one alive.
async fn sign_out_racing_a_rotation_leaves_no_live_refresh_token(reuse_detection: bool) {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = peer_with(reuse_detection).await;
    let observer = pg.store().await;
    let seeded = seed_accounts(&peer, &observer, 2).await;
    peer.reset_stats().await;
    let token_proxy = FaultProxy::start(peer.issuer()).await;
    token_proxy.set(Fault::DelayAnswer(Duration::from_secs(2)));
    let slow = Arc::new(Recording {
        inner: through(&peer, &token_proxy).await,
        issued: std::sync::Mutex::new(Vec::new()),
    });
    let a = service(
        pg.store().await,
        slow.clone(),
        polling(),
        settings(),
        lenient_breaker(),
        "instance-a",
    );
    let b = service(
        pg.store().await,
        direct(&peer).await,
        polling(),
        settings(),
        lenient_breaker(),
        "instance-b",
    );
    let ender_for = |i: usize| if i == 0 { b.clone() } else { a.clone() };
    for (i, s) in seeded.iter().enumerate() {
        let first = stored_refresh_token(&observer, s).await.unwrap();
        let grants = peer.stats().await.refresh_grants;
        let flight = {
            let (a, account) = (a.clone(), s.account.clone());
            tokio::spawn(async move { a.refresh(&account, PROVIDER).await })
        };
        // The provider has rotated; the answer is on its way back.
        let mut rotated = false;
        for _ in 0..250 {
            if peer.stats().await.refresh_grants == grants + 1 {
                rotated = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(rotated, "account {i}: the provider rotated");
        let ended = ender_for(i)
            .end_grant(&s.account, PROVIDER, EndReason::SignOut)
            .await;
        let refreshed = flight.await.unwrap();

        let newest = slow.issued.lock().unwrap().last().cloned().unwrap();
        for rt in [&first, &newest] {
            assert!(
                !peer.is_active(CLIENT, rt).await,
                "account {i}: a refresh token is still active at the provider"
            );
        }
        assert_eq!(
            ended,
            GrantEnd::Ended {
                revoked_at_provider: true
            },
            "account {i}"
        );
        // The refresh landed first (the sign-out waited for it), with the newest token.
        assert_eq!(refresh_token(&refreshed), newest, "account {i}");
        let stored = observer.read_tokens(&s.account).await.unwrap().unwrap();
        assert!(stored.tokens.is_none() && stored.revoked_at.is_some());
        assert!(
            observer
                .read_refresh_lease(&s.account)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(a.refresh(&s.account, PROVIDER).await, Outcome::Revoked);
    }
    let stats = peer.stats().await;
    assert!(
        stats.refresh_errors.is_empty(),
        "{:?}",
        stats.refresh_errors
    );
    assert_eq!(stats.refresh_grants, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_racing_a_rotation_leaves_no_live_refresh_token() {
    sign_out_racing_a_rotation_leaves_no_live_refresh_token(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_racing_a_rotation_leaves_no_live_refresh_token_without_reuse_detection() {
    sign_out_racing_a_rotation_leaves_no_live_refresh_token(false).await;
}

/// Ending a grant nobody is refreshing revokes it at once; ending it again finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_an_idle_grant_revokes_it_and_a_second_end_finds_nothing() {
    let peer = start_peer().await;
    let (_dir, store) = sqlite_store().await;
    let seeded = seed_accounts(&peer, &store, 1).await;
    let svc = service(
        Arc::clone(&store),
        direct(&peer).await,
        polling(),
        settings(),
        lenient_breaker(),
        "idle",
    );
    let rt = stored_refresh_token(&store, &seeded[0]).await.unwrap();
    let account = &seeded[0].account;
    assert_eq!(
        svc.end_grant(account, PROVIDER, EndReason::SignOut).await,
        GrantEnd::Ended {
            revoked_at_provider: true
        }
    );
    assert!(!peer.is_active(CLIENT, &rt).await);
    assert_eq!(
        svc.end_grant(account, PROVIDER, EndReason::Admin).await,
        GrantEnd::NothingToEnd
    );
    assert_eq!(svc.refresh(account, PROVIDER).await, Outcome::Revoked);
}

/// Bullet 5. The claim of the lease commits but its answer is lost (the connection breaks). The
/// flight claims again with the same owner id and finds the lease its lost answer granted,
/// instead of leaving the account blocked for the whole (here 30 s) lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_claim_whose_answer_was_lost_does_not_block_the_account() {
    let Some(pg) = PgSchema::create().await else {
        return;
    };
    let peer = peer_with(true).await;
    let observer = pg.store().await;
    let seeded = seed_accounts(&peer, &observer, 1).await;
    peer.reset_stats().await;
    let pg_proxy = PgFaultProxy::start(&pg.url()).await;
    let svc: RefreshService = service(
        PgSchema::store_at(pg_proxy.url().as_str()).await,
        direct(&peer).await,
        polling(),
        RefreshSettings {
            lease_ttl: Duration::from_secs(30),
            deadline: Duration::from_secs(5),
            ..settings()
        },
        lenient_breaker(),
        "lost-claim",
    );
    // The lease owner id (`lost-claim:…`) is bound in the claim statement, the first one
    // that names it.
    pg_proxy.lose_reply_to(b"lost-claim:");
    let outcome = svc.refresh(&seeded[0].account, PROVIDER).await;
    assert_eq!(pg_proxy.replies_lost(), 1, "the claim's answer was lost");
    assert!(matches!(outcome, Outcome::Refreshed { .. }), "{outcome:?}");
    assert_no_double_spend(&peer, 1).await;
    assert!(
        observer
            .read_refresh_lease(&seeded[0].account)
            .await
            .unwrap()
            .is_none(),
        "released with the token write"
    );
}
