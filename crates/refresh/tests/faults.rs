//! Provider failures, injected by a `FaultProxy` in front of the real `oidc-provider`'s token
//! endpoint: transient failures are retried and, once the budget is spent, end as
//! `Outcome::Unavailable` with the tokens untouched; the circuit breaker opens and closes;
//! definitive answers (`invalid_grant`, GitHub's HTTP 200 `bad_refresh_token`, Auth0's 403) end
//! the grant; and a lost response on a strict-rotation provider costs the grant (the known limit).
//!
//! Each test starts its own peer and proxy and keeps its accounts in a temporary SQLite store.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::provider_error::ProviderErrorKind;
use authgate_oauth::{Preset, ProviderSettings};
use authgate_refresh::{BreakerSettings, Outcome, RefreshService, RefreshSettings, RetryPolicy};
use authgate_store::{Store, VersionedTokens};
use authgate_testkit::{Fault, FaultProxy, OidcProviderPeer};
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Short enough that a hanging provider times out quickly, long enough for the peer.
const HTTP_TIMEOUT: Duration = Duration::from_millis(400);

struct Fixture {
    peer: OidcProviderPeer,
    proxy: FaultProxy,
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    seeded: Vec<Seeded>,
}

impl Fixture {
    async fn start(accounts: usize) -> Self {
        let peer = start_peer().await;
        let proxy = FaultProxy::start(peer.issuer()).await;
        let (dir, store) = sqlite_store().await;
        let seeded = seed_accounts(&peer, &store, accounts).await;
        peer.reset_stats().await;
        Self {
            peer,
            proxy,
            _dir: dir,
            store,
            seeded,
        }
    }

    /// The generic OIDC provider (discovery at the peer), token requests through the proxy.
    fn through_proxy(&self) -> ProviderSettings {
        provider_settings(
            PROVIDER,
            self.peer.issuer(),
            Some(self.proxy.token_endpoint()),
        )
    }

    async fn service(
        &self,
        providers: Vec<ProviderSettings>,
        settings: RefreshSettings,
        breaker: BreakerSettings,
    ) -> RefreshService {
        let refresher = catalog_refresher(providers, &http_client(HTTP_TIMEOUT)).await;
        service(
            Arc::clone(&self.store),
            refresher,
            polling(),
            settings,
            breaker,
            "faults",
        )
    }

    async fn tokens(&self, i: usize) -> VersionedTokens {
        self.store
            .read_tokens(&self.seeded[i].account)
            .await
            .unwrap()
            .unwrap()
    }

    async fn refresh(&self, svc: &RefreshService, i: usize) -> Outcome {
        svc.refresh(&self.seeded[i].account, PROVIDER).await
    }

    async fn grants(&self) -> u64 {
        self.peer.stats().await.refresh_grants
    }

    /// The grant is revoked in the store: tokens cleared, `revoked_at` set, no lease left.
    async fn assert_revoked_in_store(&self, i: usize, before: &VersionedTokens) {
        let after = self.tokens(i).await;
        assert!(after.tokens.is_none(), "tokens cleared");
        assert!(after.revoked_at.is_some(), "revoked_at set");
        assert_eq!(after.version, before.version + 1);
        let account = self
            .store
            .find_account(&self.seeded[i].account)
            .await
            .unwrap()
            .unwrap();
        assert!(account.revoked_at.is_some());
        assert!(
            self.store
                .read_refresh_lease(&self.seeded[i].account)
                .await
                .unwrap()
                .is_none()
        );
    }
}

fn is_unavailable(o: &Outcome) -> bool {
    matches!(o, Outcome::Unavailable { .. })
}

fn is_refreshed(o: &Outcome) -> bool {
    matches!(o, Outcome::Refreshed { .. })
}

#[tokio::test]
async fn two_503s_then_success_are_retried_into_one_grant() {
    let f = Fixture::start(1).await;
    // Resolved through the proxy itself: its discovery document points the token endpoint at it.
    let svc = f
        .service(
            vec![provider_settings(PROVIDER, f.proxy.url(), None)],
            settings(),
            lenient_breaker(),
        )
        .await;
    f.proxy.fail_next(2, Fault::Status(503));
    let before = f.tokens(0).await;

    let outcome = f.refresh(&svc, 0).await;
    assert!(is_refreshed(&outcome), "{outcome:?}");
    let stats = f.proxy.stats();
    assert_eq!(stats.token_requests, 3, "two failures and one success");
    assert_eq!(stats.token_forwarded, 1);
    assert!(
        stats.requests > stats.token_requests,
        "discovery went through the proxy"
    );
    assert_eq!(f.grants().await, 1);
    let after = f.tokens(0).await;
    assert_eq!(after.version, before.version + 1);
    assert_ne!(
        after.tokens.unwrap().refresh_token,
        before.tokens.unwrap().refresh_token,
        "the rotated refresh token was stored"
    );
}

#[tokio::test]
async fn persistent_transient_faults_end_unavailable_after_the_budget_and_keep_the_tokens() {
    let f = Fixture::start(1).await;
    let settings = settings();
    let svc = f
        .service(vec![f.through_proxy()], settings, lenient_breaker())
        .await;
    let attempts = u64::from(settings.retry.max_attempts);
    let cases = [
        (Fault::Status(500), Duration::from_secs(5)),
        (Fault::Status(502), Duration::from_secs(5)),
        (Fault::Status(503), Duration::from_secs(5)),
        (Fault::TemporarilyUnavailable, Duration::from_secs(5)),
        (Fault::Reset, Duration::from_secs(5)),
        (Fault::Hang, Duration::from_secs(5)),
        (
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            Duration::from_secs(1),
        ),
    ];
    let mut grants = 0;
    for (fault, retry_after) in cases {
        let before = f.tokens(0).await;
        let proxy_before = f.proxy.stats();
        f.proxy.set(fault.clone());

        let started = Instant::now();
        let outcome = f.refresh(&svc, 0).await;
        let took = started.elapsed();
        assert_eq!(outcome, Outcome::Unavailable { retry_after }, "{fault:?}");
        let proxy_after = f.proxy.stats();
        assert_eq!(
            proxy_after.token_requests - proxy_before.token_requests,
            attempts,
            "{fault:?}: the whole retry budget, no more"
        );
        assert_eq!(proxy_after.token_forwarded, proxy_before.token_forwarded);
        assert_eq!(f.tokens(0).await, before, "{fault:?}: tokens untouched");
        assert!(
            f.store
                .read_refresh_lease(&f.seeded[0].account)
                .await
                .unwrap()
                .is_none(),
            "{fault:?}: lease released"
        );
        assert_eq!(f.grants().await, grants, "{fault:?}");

        // The fault clears: the same refresh token still works.
        f.proxy.clear();
        let outcome = f.refresh(&svc, 0).await;
        assert!(is_refreshed(&outcome), "{fault:?} then pass: {outcome:?}");
        grants += 1;
        assert_eq!(f.grants().await, grants);
        eprintln!(
            "{fault:?}: Unavailable after {attempts} attempts in {:.0} ms",
            ms(took)
        );
        make_stale(&f.store, &f.seeded).await;
    }
    assert!(f.peer.stats().await.refresh_errors.is_empty());
}

#[tokio::test]
async fn retry_after_of_a_429_is_honoured() {
    let f = Fixture::start(1).await;
    let settings = RefreshSettings {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(300),
        },
        ..settings()
    };
    let svc = f
        .service(vec![f.through_proxy()], settings, lenient_breaker())
        .await;
    f.proxy.set(Fault::TooManyRequests {
        retry_after_secs: 7,
    });
    let before = f.tokens(0).await;

    let started = Instant::now();
    let outcome = f.refresh(&svc, 0).await;
    let took = started.elapsed();
    // The hint reaches the caller (an API answers 503 with Retry-After: 7) …
    assert_eq!(
        outcome,
        Outcome::Unavailable {
            retry_after: Duration::from_secs(7)
        }
    );
    // … and every backoff waited at least the hint, capped at max_delay (without the hint the
    // jittered backoff would be at most 1–2 ms).
    assert_eq!(f.proxy.token_requests(), 3);
    assert!(took >= Duration::from_millis(600), "took {took:?}");
    assert_eq!(f.tokens(0).await, before);
}

#[tokio::test]
async fn the_circuit_opens_after_the_threshold_fails_fast_and_closes_after_a_probe() {
    let f = Fixture::start(1).await;
    let open_for = Duration::from_secs(2);
    let settings = RefreshSettings {
        retry: RetryPolicy {
            max_attempts: 1,
            ..settings().retry
        },
        ..settings()
    };
    let svc = f
        .service(
            vec![f.through_proxy()],
            settings,
            BreakerSettings {
                failure_threshold: 3,
                open_for,
            },
        )
        .await;
    f.proxy.set(Fault::Status(503));
    let before = f.tokens(0).await;

    for n in 1..=3 {
        let outcome = f.refresh(&svc, 0).await;
        assert!(is_unavailable(&outcome), "call {n}: {outcome:?}");
        assert_eq!(f.proxy.token_requests(), n);
    }
    // Open: calls fail fast without reaching the provider, even once the provider is back.
    let opened = Instant::now();
    for fault in [Fault::Status(503), Fault::PassThrough] {
        f.proxy.set(fault);
        let started = Instant::now();
        let outcome = f.refresh(&svc, 0).await;
        let Outcome::Unavailable { retry_after } = outcome else {
            panic!("open circuit: {outcome:?}");
        };
        assert!(
            retry_after >= Duration::from_secs(1) && retry_after <= open_for,
            "{retry_after:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(500), "fails fast");
        assert_eq!(f.proxy.token_requests(), 3, "the provider is not called");
    }
    assert_eq!(f.tokens(0).await, before);

    // After open_for (whole seconds on the wall clock), one probe goes through and closes it.
    tokio::time::sleep((open_for + Duration::from_millis(1100)).saturating_sub(opened.elapsed()))
        .await;
    let outcome = f.refresh(&svc, 0).await;
    assert!(is_refreshed(&outcome), "probe: {outcome:?}");
    assert_eq!(f.proxy.token_requests(), 4);
    make_stale(&f.store, &f.seeded).await;
    let outcome = f.refresh(&svc, 0).await;
    assert!(is_refreshed(&outcome), "closed: {outcome:?}");
    assert_eq!(f.proxy.token_requests(), 5);
    assert_eq!(f.grants().await, 2);
}

#[tokio::test]
async fn invalid_grant_from_the_provider_revokes_and_clears_the_tokens() {
    let f = Fixture::start(1).await;
    let svc = f
        .service(
            vec![provider_settings(PROVIDER, f.peer.issuer(), None)],
            settings(),
            lenient_breaker(),
        )
        .await;
    let before = f.tokens(0).await;
    let refresh_token = before
        .tokens
        .as_ref()
        .unwrap()
        .refresh_token
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    // The user revoked the grant at the provider (RFC 7009).
    let status = f
        .peer
        .revoke(CLIENT, &refresh_token, Some("refresh_token"))
        .await;
    assert!(status.is_success(), "{status}");

    let outcome = f.refresh(&svc, 0).await;
    assert_eq!(outcome, Outcome::Revoked);
    let stats = f.peer.stats().await;
    assert_eq!(
        stats.refresh_errors("invalid_grant"),
        1,
        "asked once, never retried"
    );
    assert_eq!(stats.refresh_grants, 0);
    f.assert_revoked_in_store(0, &before).await;

    // Later calls answer from the store without asking the provider again.
    assert_eq!(f.refresh(&svc, 0).await, Outcome::Revoked);
    assert_eq!(f.peer.stats().await.refresh_errors("invalid_grant"), 1);
}

#[tokio::test]
async fn auth0_style_403_invalid_grant_revokes() {
    let f = Fixture::start(1).await;
    let svc = f
        .service(vec![f.through_proxy()], settings(), lenient_breaker())
        .await;
    f.proxy.set(Fault::Auth0InvalidGrant);
    let before = f.tokens(0).await;

    assert_eq!(f.refresh(&svc, 0).await, Outcome::Revoked);
    assert_eq!(
        f.proxy.token_requests(),
        1,
        "a definitive answer is not retried"
    );
    f.assert_revoked_in_store(0, &before).await;
}

#[tokio::test]
async fn github_style_200_bad_refresh_token_revokes_with_the_github_preset() {
    let f = Fixture::start(2).await;
    // The GitHub preset has fixed endpoints; only the token endpoint is overridden (to the proxy).
    let mut github = ProviderSettings::new("github", CLIENT, CLIENT_SECRET);
    github.preset = Some(Preset::GitHub);
    github.endpoints.token = Some(f.proxy.token_endpoint());
    let refresher =
        catalog_refresher(vec![f.through_proxy(), github], &http_client(HTTP_TIMEOUT)).await;
    let svc = service(
        Arc::clone(&f.store),
        refresher,
        polling(),
        settings(),
        lenient_breaker(),
        "faults",
    );
    f.proxy.set(Fault::GitHubBadRefreshToken);

    // To a generic provider `bad_refresh_token` is an unknown code on a 200: a protocol error,
    // which keeps the tokens (an operator must look), and is not retried.
    let before = f.tokens(0).await;
    let outcome = svc.refresh(&f.seeded[0].account, PROVIDER).await;
    assert_eq!(
        outcome,
        Outcome::ProviderRejected(ProviderErrorKind::Protocol)
    );
    assert_eq!(f.tokens(0).await, before);
    assert_eq!(f.proxy.token_requests(), 1);

    // With the GitHub preset's quirks it ends the grant.
    let before = f.tokens(1).await;
    let outcome = svc.refresh(&f.seeded[1].account, "github").await;
    assert_eq!(outcome, Outcome::Revoked);
    assert_eq!(f.proxy.token_requests(), 2);
    f.assert_revoked_in_store(1, &before).await;
}

/// The known limit: the provider rotated the refresh token but its answer never arrived. The
/// transient failure is retried with the only refresh token we have — now consumed — and a
/// strict-rotation provider answers `invalid_grant` and revokes the whole grant. Nothing on the
/// client side can avoid this (the new tokens exist only in the lost response); providers with a
/// reuse grace period (Okta, Auth0 `leeway`) survive it. The session ends honestly as Revoked.
#[tokio::test]
async fn a_lost_response_costs_the_grant_on_a_strict_rotation_provider() {
    let f = Fixture::start(1).await;
    let svc = f
        .service(vec![f.through_proxy()], settings(), lenient_breaker())
        .await;
    f.proxy.fail_next(1, Fault::LoseResponse);
    let before = f.tokens(0).await;

    let outcome = f.refresh(&svc, 0).await;
    assert_eq!(outcome, Outcome::Revoked);
    let proxy = f.proxy.stats();
    assert_eq!(proxy.token_requests, 2);
    assert_eq!(
        proxy.token_forwarded, 2,
        "both attempts reached the provider"
    );
    let stats = f.peer.stats().await;
    assert_eq!(stats.refresh_grants, 1, "the lost answer was a real grant");
    assert_eq!(
        stats.refresh_errors("invalid_grant"),
        1,
        "the retry replayed it"
    );
    assert!(
        stats.grants_revoked >= 1,
        "reuse detection revoked the grant"
    );
    f.assert_revoked_in_store(0, &before).await;
}
