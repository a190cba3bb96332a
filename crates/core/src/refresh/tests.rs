//! The refresh machine driven by hand: an injected clock, no sleeps.

use super::*;

const T0: i64 = 1_800_000_000;

fn settings() -> RefreshSettings {
    RefreshSettings {
        policy: ExpiryPolicy {
            skew: Duration::from_secs(60),
        },
        lease_ttl: Duration::from_secs(9),
        deadline: Duration::from_secs(15),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        },
        persist_deadline: Duration::from_secs(4),
    }
}

fn tokens(access: &str, refresh: Option<&str>, expires_at: i64) -> TokenSet {
    TokenSet {
        access_token: Secret::new(access),
        refresh_token: refresh.map(Secret::new),
        expires_at: Some(UnixTime::from_secs(expires_at)),
        token_type: Some("Bearer".into()),
        scope: None,
        id_token: None,
    }
}

fn snapshot(t: TokenSet, version: i64) -> Option<TokenSnapshot> {
    Some(TokenSnapshot {
        tokens: Some(t),
        version,
        revoked: false,
    })
}

fn stale() -> TokenSet {
    tokens("a1", Some("r1"), T0 + 10)
}

fn fresh() -> TokenSet {
    tokens("a2", Some("r2"), T0 + 3600)
}

/// Drives a machine at a fixed wall-clock time and a caller-controlled elapsed time.
struct Run {
    m: RefreshMachine,
    now: UnixTime,
    elapsed: Duration,
}

impl Run {
    fn new() -> (Self, Command) {
        Self::with(settings())
    }

    fn with(s: RefreshSettings) -> (Self, Command) {
        let mut r = Run {
            m: RefreshMachine::new(s),
            now: UnixTime::from_secs(T0),
            elapsed: Duration::ZERO,
        };
        let c = r.m.step(Event::Start, r.now, r.elapsed);
        (r, c)
    }

    fn step(&mut self, e: Event) -> Command {
        self.m.step(e, self.now, self.elapsed)
    }
}

fn transient(jitter: f64) -> Event {
    Event::ProviderFailed {
        kind: ProviderErrorKind::Transient { retry_after: None },
        jitter,
    }
}

#[test]
fn fresh_tokens_finish_without_a_lease_or_a_provider_call() {
    let (mut r, c) = Run::new();
    assert_eq!(c, Command::ReadTokens);
    assert_eq!(
        r.step(Event::TokensRead(snapshot(fresh(), 4))),
        Command::Finish(Outcome::AlreadyFresh {
            tokens: fresh(),
            version: 4
        })
    );
    assert!(r.m.is_done());
}

#[test]
fn the_lease_winner_calls_the_provider_once_and_persists_before_finishing() {
    let (mut r, _) = Run::new();
    assert_eq!(
        r.step(Event::TokensRead(snapshot(stale(), 1))),
        Command::ClaimLease
    );
    assert_eq!(r.step(Event::LeaseClaimed(true)), Command::ReadTokens);
    assert_eq!(
        r.step(Event::TokensRead(snapshot(stale(), 1))),
        Command::CallProvider {
            refresh_token: Secret::new("r1")
        }
    );
    // The provider does not rotate: the old refresh token is kept.
    let granted = tokens("a2", None, T0 + 3600);
    let expected = tokens("a2", Some("r1"), T0 + 3600);
    assert_eq!(
        r.step(Event::ProviderGranted(granted)),
        Command::Persist {
            tokens: expected.clone(),
            expected_version: 1,
            after: Duration::ZERO,
            within: Duration::from_secs(4),
        }
    );
    assert_eq!(
        r.step(Event::Persisted(WriteResult::Replaced(2))),
        Command::Finish(Outcome::Refreshed {
            tokens: expected,
            version: 2
        })
    );
}

#[test]
fn a_loser_of_the_lease_waits_then_takes_the_winners_tokens() {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 1)));
    assert_eq!(
        r.step(Event::LeaseClaimed(false)),
        Command::WaitForHolder {
            max_wait: Duration::from_secs(9)
        }
    );
    r.elapsed = Duration::from_secs(2);
    assert_eq!(r.step(Event::HolderWaitOver), Command::ReadTokens);
    assert_eq!(
        r.step(Event::TokensRead(snapshot(fresh(), 2))),
        Command::Finish(Outcome::AlreadyFresh {
            tokens: fresh(),
            version: 2
        })
    );
}

#[test]
fn a_lapsed_holder_lets_the_waiter_claim_and_refresh() {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 1)));
    r.step(Event::LeaseClaimed(false));
    r.elapsed = Duration::from_secs(9);
    r.now = UnixTime::from_secs(T0 + 9);
    assert_eq!(r.step(Event::HolderWaitOver), Command::ReadTokens);
    assert!(matches!(
        r.step(Event::TokensRead(snapshot(stale(), 1))),
        Command::ClaimLease
    ));
    assert_eq!(r.step(Event::LeaseClaimed(true)), Command::ReadTokens);
    assert!(matches!(
        r.step(Event::TokensRead(snapshot(stale(), 1))),
        Command::CallProvider { .. }
    ));
}

#[test]
fn a_refresh_found_under_the_lease_releases_it_without_calling_the_provider() {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 1)));
    r.step(Event::LeaseClaimed(true));
    assert_eq!(
        r.step(Event::TokensRead(snapshot(fresh(), 2))),
        Command::ReleaseAndFinish(Outcome::AlreadyFresh {
            tokens: fresh(),
            version: 2
        })
    );
}

fn to_provider_call() -> Run {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 7)));
    r.step(Event::LeaseClaimed(true));
    r.step(Event::TokensRead(snapshot(stale(), 7)));
    r
}

#[test]
fn invalid_grant_records_the_revocation_with_compare_and_swap() {
    let mut r = to_provider_call();
    assert_eq!(
        r.step(Event::ProviderFailed {
            kind: ProviderErrorKind::GrantRevoked,
            jitter: 0.5
        }),
        Command::MarkRevoked {
            expected_version: 7
        }
    );
    assert_eq!(
        r.step(Event::RevocationRecorded(WriteResult::Replaced(8))),
        Command::Finish(Outcome::Revoked)
    );
}

#[test]
fn a_revocation_that_loses_to_a_new_sign_in_rereads_instead_of_wiping_it() {
    let mut r = to_provider_call();
    r.step(Event::ProviderFailed {
        kind: ProviderErrorKind::GrantRevoked,
        jitter: 0.0,
    });
    assert_eq!(
        r.step(Event::RevocationRecorded(WriteResult::LostRace)),
        Command::ReadTokens
    );
    assert!(matches!(
        r.step(Event::TokensRead(snapshot(fresh(), 9))),
        Command::Finish(Outcome::AlreadyFresh { version: 9, .. })
    ));
}

#[test]
fn transient_failures_back_off_retry_and_then_give_up_without_touching_tokens() {
    let mut r = to_provider_call();
    let mut commands = Vec::new();
    let c = r.step(transient(1.0));
    assert_eq!(
        c,
        Command::Sleep {
            duration: Duration::from_millis(100)
        }
    );
    commands.push(c);
    commands.push(r.step(Event::Slept));
    let c = r.step(transient(1.0));
    assert_eq!(
        c,
        Command::Sleep {
            duration: Duration::from_millis(200)
        }
    );
    commands.push(c);
    commands.push(r.step(Event::Slept));
    let last = r.step(Event::ProviderFailed {
        kind: ProviderErrorKind::Transient {
            retry_after: Some(Duration::from_secs(30)),
        },
        jitter: 0.3,
    });
    assert_eq!(
        last,
        Command::ReleaseAndFinish(Outcome::Unavailable {
            retry_after: Duration::from_secs(30)
        })
    );
    assert!(
        commands
            .iter()
            .all(|c| !matches!(c, Command::Persist { .. } | Command::MarkRevoked { .. }))
    );
}

#[test]
fn a_transient_failure_then_success_refreshes() {
    let mut r = to_provider_call();
    r.step(transient(0.5));
    assert_eq!(
        r.step(Event::Slept),
        Command::CallProvider {
            refresh_token: Secret::new("r1")
        }
    );
    assert!(matches!(
        r.step(Event::ProviderGranted(fresh())),
        Command::Persist {
            expected_version: 7,
            ..
        }
    ));
}

#[test]
fn a_backoff_that_would_pass_the_deadline_gives_up_now() {
    let mut r = to_provider_call();
    r.elapsed = Duration::from_millis(14_950);
    assert!(matches!(
        r.step(transient(1.0)),
        Command::ReleaseAndFinish(Outcome::Unavailable { .. })
    ));
}

#[test]
fn waiting_past_the_deadline_ends_unavailable() {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 1)));
    r.step(Event::LeaseClaimed(false));
    r.elapsed = Duration::from_secs(15);
    r.step(Event::HolderWaitOver);
    assert!(matches!(
        r.step(Event::TokensRead(snapshot(stale(), 1))),
        Command::Finish(Outcome::Unavailable { .. })
    ));
}

#[test]
fn the_wait_for_a_holder_never_exceeds_the_remaining_deadline() {
    let (mut r, _) = Run::new();
    r.step(Event::TokensRead(snapshot(stale(), 1)));
    r.elapsed = Duration::from_secs(12);
    assert_eq!(
        r.step(Event::LeaseClaimed(false)),
        Command::WaitForHolder {
            max_wait: Duration::from_secs(3)
        }
    );
}

#[test]
fn a_lost_persist_race_rereads_and_adopts_the_stored_tokens() {
    let mut r = to_provider_call();
    r.step(Event::ProviderGranted(fresh()));
    assert_eq!(
        r.step(Event::Persisted(WriteResult::LostRace)),
        Command::ReadTokens
    );
    assert!(matches!(
        r.step(Event::TokensRead(snapshot(
            tokens("a3", Some("r3"), T0 + 3600),
            8
        ))),
        Command::Finish(Outcome::AlreadyFresh { version: 8, .. })
    ));
}

#[test]
fn a_failed_persist_is_retried_with_backoff_then_reported_as_unavailable_never_as_refreshed() {
    let mut r = to_provider_call();
    r.elapsed = Duration::from_secs(2);
    r.step(Event::ProviderGranted(fresh()));
    // 100 ms, 200 ms, 400 ms, 800 ms, then 1 s each, while the persist
    // budget (4 s from the provider's answer) lasts.
    let mut pauses = Vec::new();
    loop {
        match r.step(Event::Persisted(WriteResult::Failed)) {
            Command::Persist {
                after,
                within,
                expected_version,
                ..
            } => {
                assert_eq!(expected_version, 7);
                assert!(after < within, "{after:?} within {within:?}");
                pauses.push(after);
                r.elapsed += after + Duration::from_millis(50);
            }
            Command::ReleaseAndFinish(Outcome::Unavailable { .. }) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    assert!(r.elapsed - Duration::from_secs(2) <= Duration::from_secs(4));
}

#[test]
fn a_write_is_retried_past_the_refresh_deadline_until_the_persist_deadline() {
    let mut r = to_provider_call();
    // The provider answered just before the refresh deadline (15 s).
    r.elapsed = Duration::from_secs(14);
    r.step(Event::ProviderGranted(fresh()));
    r.elapsed = Duration::from_secs(16);
    assert!(matches!(
        r.step(Event::Persisted(WriteResult::Failed)),
        Command::Persist { within, .. } if within == Duration::from_secs(2)
    ));
    r.elapsed = Duration::from_secs(17);
    assert!(matches!(
        r.step(Event::Persisted(WriteResult::Replaced(8))),
        Command::Finish(Outcome::Refreshed { version: 8, .. })
    ));
}

#[test]
fn a_retried_write_that_finds_its_first_attempt_landed_adopts_the_stored_tokens() {
    let mut r = to_provider_call();
    r.step(Event::ProviderGranted(fresh()));
    assert!(matches!(
        r.step(Event::Persisted(WriteResult::Failed)),
        Command::Persist { .. }
    ));
    // The first write did land (its answer was lost): the repeat loses the
    // compare-and-swap, and the re-read finds the tokens it wrote.
    assert_eq!(
        r.step(Event::Persisted(WriteResult::LostRace)),
        Command::ReadTokens
    );
    assert_eq!(
        r.step(Event::TokensRead(snapshot(fresh(), 8))),
        Command::Finish(Outcome::AlreadyFresh {
            tokens: fresh(),
            version: 8
        })
    );
}

#[test]
fn configuration_errors_end_without_touching_tokens() {
    let mut r = to_provider_call();
    assert_eq!(
        r.step(Event::ProviderFailed {
            kind: ProviderErrorKind::Misconfigured,
            jitter: 0.0
        }),
        Command::ReleaseAndFinish(Outcome::ProviderRejected(ProviderErrorKind::Misconfigured))
    );
}

#[test]
fn stale_tokens_without_a_refresh_token_cannot_be_refreshed() {
    let (mut r, _) = Run::new();
    assert_eq!(
        r.step(Event::TokensRead(snapshot(tokens("a", None, T0), 1))),
        Command::Finish(Outcome::NoRefreshToken)
    );
}

#[test]
fn revoked_and_missing_accounts_finish_immediately() {
    let (mut r, _) = Run::new();
    assert_eq!(
        r.step(Event::TokensRead(Some(TokenSnapshot {
            tokens: None,
            version: 3,
            revoked: true
        }))),
        Command::Finish(Outcome::Revoked)
    );
    let (mut r, _) = Run::new();
    assert_eq!(
        r.step(Event::TokensRead(None)),
        Command::Finish(Outcome::AccountMissing)
    );
}

#[test]
fn a_store_failure_ends_unavailable_and_releases_a_held_lease() {
    let (mut r, _) = Run::new();
    assert!(matches!(
        r.step(Event::StoreFailed),
        Command::Finish(Outcome::Unavailable { .. })
    ));
    let mut r = to_provider_call();
    r.step(transient(0.0));
    assert!(matches!(
        r.step(Event::StoreFailed),
        Command::ReleaseAndFinish(Outcome::Unavailable { .. })
    ));
}

#[test]
fn an_out_of_place_event_ends_safely_without_a_write() {
    let (mut r, _) = Run::new();
    assert!(matches!(
        r.step(Event::ProviderGranted(fresh())),
        Command::ReleaseAndFinish(Outcome::Unavailable { .. })
    ));
}

#[test]
fn backoff_grows_exponentially_is_capped_and_honours_retry_after() {
    let p = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    assert_eq!(p.delay(1, 1.0, None), Duration::from_millis(100));
    assert_eq!(p.delay(3, 1.0, None), Duration::from_millis(400));
    assert_eq!(p.delay(30, 1.0, None), Duration::from_secs(1));
    assert_eq!(p.delay(3, 0.0, None), Duration::ZERO);
    assert_eq!(p.delay(3, 0.5, None), Duration::from_millis(200));
    assert_eq!(
        p.delay(1, 0.0, Some(Duration::from_millis(700))),
        Duration::from_millis(700)
    );
    assert_eq!(
        p.delay(1, 0.0, Some(Duration::from_secs(60))),
        Duration::from_secs(1)
    );
    assert_eq!(p.delay(1, 7.0, None), Duration::from_millis(100));
}

#[test]
fn the_circuit_opens_after_consecutive_failures_and_closes_after_a_good_probe() {
    let mut cb = CircuitBreaker::new(3, Duration::from_secs(30));
    let t = |s| UnixTime::from_secs(T0 + s);
    for _ in 0..2 {
        assert!(cb.try_acquire(t(0)).is_ok());
        cb.record(true, t(0));
    }
    assert_eq!(cb.state(), CircuitState::Closed { failures: 2 });
    assert!(cb.try_acquire(t(0)).is_ok());
    cb.record(true, t(0));
    assert_eq!(cb.state(), CircuitState::Open { until: t(30) });
    assert_eq!(cb.try_acquire(t(10)), Err(Duration::from_secs(20)));
    // Time is up: exactly one probe goes through.
    assert!(cb.try_acquire(t(30)).is_ok());
    assert_eq!(cb.state(), CircuitState::HalfOpen);
    assert!(cb.try_acquire(t(30)).is_err());
    cb.record(false, t(31));
    assert_eq!(cb.state(), CircuitState::Closed { failures: 0 });
}

#[test]
fn a_failed_probe_reopens_the_circuit_and_success_resets_the_count() {
    let mut cb = CircuitBreaker::new(2, Duration::from_secs(5));
    let t = |s| UnixTime::from_secs(T0 + s);
    cb.record(true, t(0));
    cb.record(false, t(0));
    assert_eq!(cb.state(), CircuitState::Closed { failures: 0 });
    cb.record(true, t(0));
    cb.record(true, t(0));
    assert!(cb.try_acquire(t(5)).is_ok());
    cb.record(true, t(5));
    assert_eq!(cb.state(), CircuitState::Open { until: t(10) });
}

#[test]
fn a_lease_is_renewed_three_times_per_lifetime() {
    assert_eq!(
        RefreshSettings {
            lease_ttl: Duration::from_secs(15),
            ..RefreshSettings::default()
        }
        .lease_renewal_interval(),
        Duration::from_secs(5)
    );
    assert_eq!(
        RefreshSettings {
            lease_ttl: Duration::from_secs(3),
            ..RefreshSettings::default()
        }
        .lease_renewal_interval(),
        Duration::from_secs(1)
    );
}
