//! One conformance suite, run unchanged against SQLite (temp file) and
//! PostgreSQL (own schema per test, from `AUTHGATE_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test bodies are plain async fns

mod common;

use authgate_core::secret::Secret;
use authgate_store::{
    Account, Backend, CryptoError, KeyRing, NewAccount, NewSession, NewUser, ReplaceOutcome,
    SessionExpiry, SessionId, SessionKind, Store, StoreError, User, UserId,
};
use common::{SECRET_A, SECRET_B, TestDb, account, keys, t, token_set, user};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Generates one `#[tokio::test]` per body and backend.
macro_rules! conformance_suite {
    ($($body:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    let db = super::common::TestDb::sqlite();
                    super::$body(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    let Some(db) = super::common::TestDb::postgres().await else { return };
                    super::$body(&db).await;
                }
            )*
        }
    };
}

conformance_suite!(
    migrations_apply_twice_on_an_empty_database,
    users_are_found_by_id_and_email_and_emails_are_unique,
    a_users_profile_is_replaced_and_emails_stay_unique,
    accounts_are_found_by_provider_and_by_user,
    linking_to_a_missing_user_or_twice_is_refused,
    tokens_round_trip_and_start_at_version_one,
    replace_tokens_is_compare_and_swap,
    fifty_racing_replacements_have_exactly_one_winner,
    revoking_a_grant_clears_tokens_and_is_compare_and_swap,
    refresh_lease_is_exclusive_until_it_lapses_by_the_store_clock,
    token_write_releases_only_its_own_lease,
    fifty_racing_lease_claims_have_exactly_one_winner,
    sessions_are_found_by_token_until_they_expire,
    sessions_remember_the_account_they_were_signed_in_with,
    touch_extends_sessions_at_most_once_per_update_age,
    deleted_sessions_are_gone,
    every_sign_in_leaves_a_session_record_for_both_strategies,
    a_revoked_session_never_comes_back,
    a_session_with_a_chosen_id_is_created_once_even_when_racing,
    revoking_an_account_or_a_user_ends_exactly_their_live_sessions,
    a_provider_session_id_ends_exactly_the_sessions_signed_in_through_it,
    session_records_note_visits_at_most_once_per_interval,
    the_sweep_deletes_expired_records_of_both_strategies,
    database_sessions_from_before_session_records_survive_the_migration,
    raw_columns_never_contain_tokens,
    ciphertext_moved_to_another_row_or_column_does_not_decrypt,
    rotated_keys_still_decrypt_and_reencrypt_all_moves_rows_to_the_newest_key,
    imported_rows_are_written_once_keep_their_ids_and_report_conflicts,
);

async fn migrations_apply_twice_on_an_empty_database(db: &TestDb) {
    let store = db.open_unmigrated(keys()).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // And a second process (new pool) sees an up-to-date schema.
    let again = db.open_unmigrated(keys()).await;
    again.migrate().await.unwrap();
    user(&*again, "after-migrate@example.test").await;
    assert_eq!(store.backend(), db.backend());
}

async fn users_are_found_by_id_and_email_and_emails_are_unique(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "ada@example.test").await;
    assert_eq!(store.find_user(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        store.find_user_by_email("ada@example.test").await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(store.find_user_by_email("nobody@x").await.unwrap(), None);
    assert_eq!(
        store.find_user(&UserId::new("missing")).await.unwrap(),
        None
    );
    let dup = store
        .create_user(NewUser {
            email: Some("ada@example.test".into()),
            ..NewUser::default()
        })
        .await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    // Users without e-mail are fine, several of them.
    let a = store.create_user(NewUser::default()).await.unwrap();
    let b = store.create_user(NewUser::default()).await.unwrap();
    assert_ne!(a.id, b.id);
}

async fn a_users_profile_is_replaced_and_emails_stay_unique(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "old@example.test").await;
    let other = user(&*store, "taken@example.test").await;
    let updated = store
        .update_user_profile(
            &u.id,
            NewUser {
                name: Some("New Name".into()),
                email: Some("new@example.test".into()),
                email_verified: None,
                image: Some("https://img.example/new.png".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.id, u.id);
    assert_eq!(updated.email.as_deref(), Some("new@example.test"));
    assert_eq!(store.find_user(&u.id).await.unwrap(), Some(updated));
    assert_eq!(
        store.find_user_by_email("old@example.test").await.unwrap(),
        None
    );
    let clash = store
        .update_user_profile(
            &u.id,
            NewUser {
                email: other.email.clone(),
                ..NewUser::default()
            },
        )
        .await;
    assert!(
        matches!(clash, Err(StoreError::AlreadyExists(_))),
        "{clash:?}"
    );
    let missing = store
        .update_user_profile(&UserId::new("missing"), NewUser::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::UserNotFound)),
        "{missing:?}"
    );
}

async fn accounts_are_found_by_provider_and_by_user(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "acc").await;
    assert_eq!(store.find_account(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store
            .find_account_by_provider("op", "sub-acc")
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store
            .find_account_by_provider("other", "sub-acc")
            .await
            .unwrap(),
        None
    );
    let github = store
        .link_account(NewAccount {
            user_id: u.id.clone(),
            kind: "oauth".into(),
            provider: "github".into(),
            provider_account_id: "12345".into(),
            tokens: token_set("gh"),
            session_state: Some("state".into()),
        })
        .await
        .unwrap();
    let listed = store.list_accounts_for_user(&u.id).await.unwrap();
    assert_eq!(listed, vec![github, a]);
    assert!(
        store
            .list_accounts_for_user(&UserId::new("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn linking_to_a_missing_user_or_twice_is_refused(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, _) = account(&*store, "twice").await;
    let again = NewAccount {
        user_id: u.id.clone(),
        kind: "oidc".into(),
        provider: "op".into(),
        provider_account_id: "sub-twice".into(),
        tokens: token_set("x"),
        session_state: None,
    };
    let r = store.link_account(again.clone()).await;
    assert!(matches!(r, Err(StoreError::AlreadyExists(_))), "{r:?}");
    let r = store
        .link_account(NewAccount {
            user_id: UserId::new("no-such-user"),
            provider_account_id: "other".into(),
            ..again
        })
        .await;
    assert!(matches!(r, Err(StoreError::UserNotFound)), "{r:?}");
}

async fn tokens_round_trip_and_start_at_version_one(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "rt").await;
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.version, 1);
    assert_eq!(read.tokens, Some(token_set("rt")));
    assert_eq!(read.revoked_at, None);
    // Optional fields stay absent.
    let mut minimal = token_set("min");
    minimal.refresh_token = None;
    minimal.id_token = None;
    minimal.expires_at = None;
    minimal.scope = None;
    minimal.token_type = None;
    let r = store
        .replace_tokens(&a.id, 1, &minimal, None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 2 });
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.tokens, Some(minimal));
    assert_eq!(
        store
            .read_tokens(&authgate_store::AccountId::new("missing"))
            .await
            .unwrap(),
        None
    );
}

async fn replace_tokens_is_compare_and_swap(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "cas").await;
    let r = store
        .replace_tokens(&a.id, 1, &token_set("v2"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 2 });
    // A writer that still believes in version 1 loses and changes nothing.
    let r = store
        .replace_tokens(&a.id, 1, &token_set("stale"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::LostRace { current_version: 2 });
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(read.tokens, Some(token_set("v2")));
    let missing = authgate_store::AccountId::new("missing");
    let r = store
        .replace_tokens(&missing, 1, &token_set("x"), None)
        .await;
    assert!(matches!(r, Err(StoreError::AccountNotFound(_))), "{r:?}");
}

async fn fifty_racing_replacements_have_exactly_one_winner(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "race").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = a.id.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = store
                    .replace_tokens(&id, 1, &token_set(&format!("racer-{i}")), None)
                    .await
                    .unwrap();
                (i, outcome)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        match task.await.unwrap() {
            (i, ReplaceOutcome::Replaced { new_version }) => {
                assert_eq!(new_version, 2);
                winners.push(i);
            }
            (_, ReplaceOutcome::LostRace { current_version }) => {
                assert_eq!(current_version, 2);
                losers += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(losers, 49);
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(
        read.tokens,
        Some(token_set(&format!("racer-{}", winners[0])))
    );
}

async fn revoking_a_grant_clears_tokens_and_is_compare_and_swap(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "revoke").await;
    let r = store
        .mark_grant_revoked(&a.id, 7, t(1000), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::LostRace { current_version: 1 });
    let r = store
        .mark_grant_revoked(&a.id, 1, t(1000), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 2 });
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.tokens, None);
    assert_eq!(read.revoked_at, Some(t(1000)));
    assert_eq!(
        store.find_account(&a.id).await.unwrap().unwrap().revoked_at,
        Some(t(1000))
    );
    assert_eq!(db.raw_column(&a.id, "refresh_token").await, None);
    // Signing in again stores a new grant and clears the flag.
    let r = store
        .replace_tokens(&a.id, 2, &token_set("again"), None)
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 3 });
    let read = store.read_tokens(&a.id).await.unwrap().unwrap();
    assert_eq!(read.tokens, Some(token_set("again")));
    assert_eq!(read.revoked_at, None);
}

/// Waits (at most 5 s) until the store's clock says the lease has lapsed.
async fn until_lapsed(store: &dyn Store, account: &authgate_store::AccountId) {
    for _ in 0..100 {
        match store.read_refresh_lease(account).await.unwrap() {
            Some(lease) if !lease.remaining.is_zero() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return,
        }
    }
    panic!("the lease did not lapse");
}

async fn refresh_lease_is_exclusive_until_it_lapses_by_the_store_clock(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "lease").await;
    assert_eq!(store.read_refresh_lease(&a.id).await.unwrap(), None);
    let ttl = Duration::from_secs(30);
    let held = store
        .try_claim_refresh_lease(&a.id, "A", ttl)
        .await
        .unwrap()
        .expect("a free lease is claimed");
    // Whole seconds of the store's clock, rounded up: never less than asked.
    assert!(
        held.remaining >= ttl && held.remaining <= ttl + Duration::from_secs(1),
        "{held:?}"
    );
    // Held by A: B is refused, A may claim again (idempotent) and renew.
    assert_eq!(
        store
            .try_claim_refresh_lease(&a.id, "B", ttl)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .try_claim_refresh_lease(&a.id, "A", ttl)
            .await
            .unwrap()
            .is_some()
    );
    let renewed = store
        .renew_refresh_lease(&a.id, "A", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the holder renews");
    assert!(renewed.remaining >= Duration::from_secs(60), "{renewed:?}");
    assert_eq!(
        store.renew_refresh_lease(&a.id, "B", ttl).await.unwrap(),
        None
    );
    let lease = store.read_refresh_lease(&a.id).await.unwrap().unwrap();
    assert_eq!(lease.owner, "A");
    assert!(
        lease.remaining > Duration::from_secs(55) && lease.remaining <= Duration::from_secs(61),
        "{lease:?}"
    );
    // Renewed for no time, it lapses at the store's next whole second;
    // then B may claim it.
    store
        .renew_refresh_lease(&a.id, "A", Duration::ZERO)
        .await
        .unwrap();
    until_lapsed(&*store, &a.id).await;
    let lapsed = store.read_refresh_lease(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (lapsed.owner.as_str(), lapsed.remaining),
        ("A", Duration::ZERO)
    );
    assert!(
        store
            .try_claim_refresh_lease(&a.id, "B", ttl)
            .await
            .unwrap()
            .is_some()
    );
    // A lost it: A can neither renew nor release it.
    assert_eq!(
        store.renew_refresh_lease(&a.id, "A", ttl).await.unwrap(),
        None
    );
    assert!(!store.release_refresh_lease(&a.id, "A").await.unwrap());
    assert!(store.release_refresh_lease(&a.id, "B").await.unwrap());
    assert_eq!(store.read_refresh_lease(&a.id).await.unwrap(), None);
    assert!(
        store
            .try_claim_refresh_lease(&a.id, "C", ttl)
            .await
            .unwrap()
            .is_some()
    );
}

async fn token_write_releases_only_its_own_lease(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "release").await;
    assert!(
        store
            .try_claim_refresh_lease(&a.id, "A", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some()
    );
    // A write naming another owner keeps A's lease.
    let r = store
        .replace_tokens(&a.id, 1, &token_set("v2"), Some("B"))
        .await
        .unwrap();
    assert!(r.is_replaced());
    assert_eq!(
        store
            .read_refresh_lease(&a.id)
            .await
            .unwrap()
            .map(|l| l.owner),
        Some("A".to_owned())
    );
    // A lost race releases nothing either.
    let r = store
        .replace_tokens(&a.id, 1, &token_set("stale"), Some("A"))
        .await
        .unwrap();
    assert!(!r.is_replaced());
    assert!(store.read_refresh_lease(&a.id).await.unwrap().is_some());
    // The holder's successful write releases it in the same statement.
    let r = store
        .replace_tokens(&a.id, 2, &token_set("v3"), Some("A"))
        .await
        .unwrap();
    assert_eq!(r, ReplaceOutcome::Replaced { new_version: 3 });
    assert_eq!(store.read_refresh_lease(&a.id).await.unwrap(), None);
    // Same for revocation.
    assert!(
        store
            .try_claim_refresh_lease(&a.id, "A", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some()
    );
    let r = store
        .mark_grant_revoked(&a.id, 3, t(201), Some("A"))
        .await
        .unwrap();
    assert!(r.is_replaced());
    assert_eq!(store.read_refresh_lease(&a.id).await.unwrap(), None);
}

async fn fifty_racing_lease_claims_have_exactly_one_winner(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "leaserace").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = a.id.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let owner = format!("instance-{i}");
                let won = store
                    .try_claim_refresh_lease(&id, &owner, Duration::from_secs(30))
                    .await
                    .unwrap()
                    .is_some();
                (owner, won)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (owner, won) = task.await.unwrap();
        if won {
            winners.push(owner);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let lease = store.read_refresh_lease(&a.id).await.unwrap().unwrap();
    assert_eq!(lease.owner, winners[0]);
}

async fn sessions_remember_the_account_they_were_signed_in_with(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "sess-acc").await;
    let created = store
        .create_session(&u.id, Some(&a.id), t(1000), t(2000))
        .await
        .unwrap();
    assert_eq!(created.session.account_id, Some(a.id.clone()));
    let found = store
        .find_session(&created.token, t(1001))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account_id, Some(a.id));
    let touched = store
        .touch_session(
            &created.token,
            t(1500),
            SessionExpiry {
                max_age: Duration::from_secs(1000),
                update_age: Duration::ZERO,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.account_id, found.account_id);
}

async fn sessions_are_found_by_token_until_they_expire(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "sess@example.test").await;
    let created = store
        .create_session(&u.id, None, t(1000), t(2000))
        .await
        .unwrap();
    assert_eq!(created.session.user_id, u.id);
    let found = store
        .find_session(&created.token, t(1999))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created.session);
    assert_eq!(
        store.find_session(&created.token, t(2000)).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_session(&Secret::new("not-a-session"), t(1000))
            .await
            .unwrap(),
        None
    );
    let other = store
        .create_session(&u.id, None, t(1000), t(5000))
        .await
        .unwrap();
    assert_ne!(other.token, created.token);
    assert_eq!(store.delete_expired_sessions(t(3000)).await.unwrap(), 1);
    assert!(
        store
            .find_session(&other.token, t(3000))
            .await
            .unwrap()
            .is_some()
    );
    let r = store
        .create_session(&UserId::new("ghost"), None, t(1), t(2))
        .await;
    assert!(matches!(r, Err(StoreError::UserNotFound)), "{r:?}");
}

async fn touch_extends_sessions_at_most_once_per_update_age(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "touch@example.test").await;
    let expiry = SessionExpiry {
        max_age: Duration::from_secs(1000),
        update_age: Duration::from_secs(100),
    };
    let created = store
        .create_session(&u.id, None, t(0), t(1000))
        .await
        .unwrap();
    // Within update_age: no write, same expiry.
    let s = store
        .touch_session(&created.token, t(99), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.expires, s.updated_at), (t(1000), t(0)));
    // Due: expires = now + max_age.
    let s = store
        .touch_session(&created.token, t(100), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.expires, s.updated_at), (t(1100), t(100)));
    let s = store
        .touch_session(&created.token, t(150), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expires, t(1100));
    // update_age = 0 extends on every touch.
    let every = SessionExpiry {
        update_age: Duration::ZERO,
        ..expiry
    };
    let s = store
        .touch_session(&created.token, t(151), every)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.expires, t(1151));
    // An expired session is not revived.
    assert_eq!(
        store
            .touch_session(&created.token, t(1151), every)
            .await
            .unwrap(),
        None
    );
}

async fn deleted_sessions_are_gone(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "del@example.test").await;
    let created = store
        .create_session(&u.id, None, t(0), t(1000))
        .await
        .unwrap();
    assert!(store.delete_session(&created.token).await.unwrap());
    assert!(!store.delete_session(&created.token).await.unwrap());
    assert_eq!(
        store.find_session(&created.token, t(1)).await.unwrap(),
        None
    );
}

fn sign_in(user: &User, account: Option<&Account>, now: i64, expires: i64) -> NewSession {
    NewSession {
        user_id: user.id.clone(),
        account_id: account.map(|a| a.id.clone()),
        now: t(now),
        expires: t(expires),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Test/1.0".into()),
        provider_sid: None,
    }
}

async fn every_sign_in_leaves_a_session_record_for_both_strategies(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "records").await;
    let jwt = store
        .create_jwt_session(sign_in(&u, Some(&a), 1000, 5000))
        .await
        .unwrap();
    assert_eq!(jwt.kind, SessionKind::Jwt);
    assert_eq!(
        (
            jwt.created_at,
            jwt.last_seen_at,
            jwt.expires,
            jwt.revoked_at
        ),
        (t(1000), t(1000), t(5000), None)
    );
    let mut long_agent = sign_in(&u, Some(&a), 1001, 5000);
    long_agent.user_agent = Some(format!("Agent\u{7}{}", "x".repeat(1000)));
    let database = store.create_database_session(long_agent).await.unwrap();
    assert_ne!(database.session.id, jwt.id);
    assert!(jwt.id.as_str().len() >= 43, "a 256-bit random id");

    // Looked up by id (one primary-key query), as stored.
    let found = store
        .find_live_session(&jwt.id, t(1500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, jwt);
    let db_record = store
        .find_live_session(&database.session.id, t(1500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db_record.kind, SessionKind::Database);
    let agent = db_record.user_agent.unwrap();
    assert_eq!(agent.chars().count(), authgate_store::MAX_USER_AGENT_CHARS);
    assert!(agent.starts_with("Agentxxx"), "control characters dropped");
    // The database strategy's token finds the same record.
    let by_token = store
        .find_session(&database.token, t(1500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_token.id, database.session.id);
    // A JWT record has no token: no token finds it.
    assert_eq!(
        store
            .find_live_session(&SessionId::new("no-such-session"), t(1500))
            .await
            .unwrap(),
        None
    );
    // Expired records are not live.
    assert_eq!(
        store.find_live_session(&jwt.id, t(5000)).await.unwrap(),
        None
    );
    // A user's sessions, newest first.
    let listed: Vec<_> = store
        .list_user_sessions(&u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![database.session.id.clone(), jwt.id.clone()]);
    let r = store
        .create_jwt_session(NewSession {
            user_id: UserId::new("ghost"),
            ..sign_in(&u, None, 1, 2)
        })
        .await;
    assert!(matches!(r, Err(StoreError::UserNotFound)), "{r:?}");
}

async fn a_revoked_session_never_comes_back(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "revoked").await;
    let jwt = store
        .create_jwt_session(sign_in(&u, Some(&a), 1000, 9000))
        .await
        .unwrap();
    let database = store
        .create_database_session(sign_in(&u, Some(&a), 1000, 9000))
        .await
        .unwrap();
    let revoked = store
        .revoke_session(&jwt.id, t(1100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (revoked.id.clone(), revoked.token_hash),
        (jwt.id.clone(), None)
    );
    let revoked = store
        .revoke_session(&database.session.id, t(1100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked.token_hash.as_deref(),
        Some(authgate_store::session_token_hash(&database.token).as_str())
    );
    // Gone for every lookup, and revoking again changes nothing.
    assert_eq!(
        store.find_live_session(&jwt.id, t(1200)).await.unwrap(),
        None
    );
    let every = SessionExpiry {
        max_age: Duration::from_secs(1000),
        update_age: Duration::ZERO,
    };
    assert_eq!(
        store
            .touch_session_record(&jwt.id, t(1200), every)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.find_session(&database.token, t(1200)).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .touch_session(&database.token, t(1200), every)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.revoke_session(&jwt.id, t(1300)).await.unwrap(), None);
    // Signing in again creates a new record; the old one stays revoked.
    let again = store
        .create_jwt_session(sign_in(&u, Some(&a), 1400, 9000))
        .await
        .unwrap();
    assert_ne!(again.id, jwt.id);
    assert!(
        store
            .find_live_session(&again.id, t(1500))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.find_live_session(&jwt.id, t(1500)).await.unwrap(),
        None
    );
    let old = store
        .list_user_sessions(&u.id)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == jwt.id)
        .unwrap();
    assert_eq!(old.revoked_at, Some(t(1100)));
}

async fn a_session_with_a_chosen_id_is_created_once_even_when_racing(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "chosen").await;
    let id = SessionId::generate();
    let mut racers = Vec::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        let (id, new) = (id.clone(), sign_in(&u, Some(&a), 1000, 9000));
        racers.push(tokio::spawn(async move {
            store.create_jwt_session_with_id(id, new).await
        }));
    }
    let mut created = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(record) => {
                assert_eq!(record.id, id);
                created += 1;
            }
            Err(StoreError::AlreadyExists(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert!(
        store
            .find_live_session(&id, t(1100))
            .await
            .unwrap()
            .is_some()
    );
    // Revoked, the id is still taken: it never comes back.
    store.revoke_session(&id, t(1200)).await.unwrap().unwrap();
    assert!(matches!(
        store
            .create_jwt_session_with_id(id.clone(), sign_in(&u, Some(&a), 1300, 9000))
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(store.find_live_session(&id, t(1400)).await.unwrap(), None);
}

async fn revoking_an_account_or_a_user_ends_exactly_their_live_sessions(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "revoke-all").await;
    let b = store
        .link_account(NewAccount {
            user_id: u.id.clone(),
            kind: "oidc".into(),
            provider: "other".into(),
            provider_account_id: "sub-other".into(),
            tokens: token_set("other"),
            session_state: None,
        })
        .await
        .unwrap();
    let (stranger, s) = account(&*store, "stranger").await;
    let on_a_jwt = store
        .create_jwt_session(sign_in(&u, Some(&a), 100, 9000))
        .await
        .unwrap();
    let on_a_db = store
        .create_database_session(sign_in(&u, Some(&a), 100, 9000))
        .await
        .unwrap();
    let on_a_expired = store
        .create_jwt_session(sign_in(&u, Some(&a), 100, 200))
        .await
        .unwrap();
    let on_a_revoked = store
        .create_jwt_session(sign_in(&u, Some(&a), 100, 9000))
        .await
        .unwrap();
    store
        .revoke_session(&on_a_revoked.id, t(150))
        .await
        .unwrap();
    let on_b = store
        .create_jwt_session(sign_in(&u, Some(&b), 100, 9000))
        .await
        .unwrap();
    let strangers = store
        .create_jwt_session(sign_in(&stranger, Some(&s), 100, 9000))
        .await
        .unwrap();

    let mut revoked = store.revoke_account_sessions(&a.id, t(300)).await.unwrap();
    revoked.sort_by(|x, y| x.id.cmp(&y.id));
    let mut expected = vec![
        (on_a_jwt.id.clone(), None),
        (
            on_a_db.session.id.clone(),
            Some(authgate_store::session_token_hash(&on_a_db.token)),
        ),
    ];
    expected.sort();
    assert_eq!(
        revoked
            .into_iter()
            .map(|r| (r.id, r.token_hash))
            .collect::<Vec<_>>(),
        expected
    );
    assert!(
        store
            .find_live_session(&on_b.id, t(300))
            .await
            .unwrap()
            .is_some()
    );
    let expired = store.list_user_sessions(&u.id).await.unwrap();
    let expired = expired.iter().find(|r| r.id == on_a_expired.id).unwrap();
    assert_eq!(
        expired.revoked_at, None,
        "an expired session is not revoked again"
    );

    let revoked = store.revoke_user_sessions(&u.id, t(400)).await.unwrap();
    assert_eq!(
        revoked.into_iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![on_b.id.clone()]
    );
    assert!(
        store
            .find_live_session(&strangers.id, t(400))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .revoke_user_sessions(&u.id, t(500))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_provider_session_id_ends_exactly_the_sessions_signed_in_through_it(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "provider-sid").await;
    let elsewhere = store
        .link_account(NewAccount {
            user_id: u.id.clone(),
            kind: "oidc".into(),
            provider: "other".into(),
            provider_account_id: "sub-provider-sid".into(),
            tokens: token_set("other"),
            session_state: None,
        })
        .await
        .unwrap();
    let through = |account: &Account, sid: Option<&str>, expires: i64| NewSession {
        provider_sid: sid.map(str::to_owned),
        ..sign_in(&u, Some(account), 100, expires)
    };
    let jwt = store
        .create_jwt_session(through(&a, Some("op-sid-1"), 9000))
        .await
        .unwrap();
    let database = store
        .create_database_session(through(&a, Some("op-sid-1"), 9000))
        .await
        .unwrap();
    let other_sid = store
        .create_jwt_session(through(&a, Some("op-sid-2"), 9000))
        .await
        .unwrap();
    let no_sid = store
        .create_jwt_session(through(&a, None, 9000))
        .await
        .unwrap();
    // The same sid value at another provider is another provider's session.
    let other_provider = store
        .create_jwt_session(through(&elsewhere, Some("op-sid-1"), 9000))
        .await
        .unwrap();

    let mut revoked = store
        .revoke_provider_sessions("op", "op-sid-1", t(300))
        .await
        .unwrap();
    revoked.sort_by(|x, y| x.id.cmp(&y.id));
    let mut expected = vec![
        (jwt.id.clone(), None),
        (
            database.session.id.clone(),
            Some(authgate_store::session_token_hash(&database.token)),
        ),
    ];
    expected.sort();
    assert_eq!(
        revoked
            .into_iter()
            .map(|r| (r.id, r.token_hash))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        store.find_live_session(&jwt.id, t(300)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_session(&database.token, t(300)).await.unwrap(),
        None
    );
    for kept in [&other_sid, &no_sid, &other_provider] {
        assert!(
            store
                .find_live_session(&kept.id, t(300))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        store
            .revoke_provider_sessions("op", "op-sid-1", t(400))
            .await
            .unwrap()
            .is_empty(),
        "a second logout for the same sid finds nothing live"
    );
}

async fn session_records_note_visits_at_most_once_per_interval(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "visits@example.test").await;
    let record = store
        .create_jwt_session(sign_in(&u, None, 0, 1000))
        .await
        .unwrap();
    let expiry = SessionExpiry {
        max_age: Duration::from_secs(1000),
        update_age: Duration::from_secs(100),
    };
    let seen = store
        .touch_session_record(&record.id, t(99), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.last_seen_at, seen.expires), (t(0), t(1000)));
    let seen = store
        .touch_session_record(&record.id, t(100), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.last_seen_at, seen.expires), (t(100), t(1100)));
    let seen = store
        .touch_session_record(&record.id, t(150), expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.last_seen_at, seen.expires), (t(100), t(1100)));
    assert_eq!(seen.created_at, t(0));
    // An expired record is not revived.
    assert_eq!(
        store
            .touch_session_record(&record.id, t(1100), expiry)
            .await
            .unwrap(),
        None
    );
}

async fn the_sweep_deletes_expired_records_of_both_strategies(db: &TestDb) {
    let store = db.open(keys()).await;
    let u = user(&*store, "sweep@example.test").await;
    let jwt_expired = store
        .create_jwt_session(sign_in(&u, None, 0, 100))
        .await
        .unwrap();
    let db_expired = store
        .create_database_session(sign_in(&u, None, 0, 100))
        .await
        .unwrap();
    let revoked_live = store
        .create_jwt_session(sign_in(&u, None, 0, 1000))
        .await
        .unwrap();
    store.revoke_session(&revoked_live.id, t(50)).await.unwrap();
    let live = store
        .create_database_session(sign_in(&u, None, 0, 1000))
        .await
        .unwrap();
    assert_eq!(store.delete_expired_sessions(t(100)).await.unwrap(), 2);
    let left: BTreeSet<_> = store
        .list_user_sessions(&u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        left,
        BTreeSet::from([revoked_live.id.clone(), live.session.id.clone()])
    );
    assert!(!left.contains(&jwt_expired.id) && !left.contains(&db_expired.session.id));
    // A revoked record is kept until it expires, so it stays revoked.
    assert_eq!(store.delete_expired_sessions(t(1000)).await.unwrap(), 2);
}

async fn database_sessions_from_before_session_records_survive_the_migration(db: &TestDb) {
    let store = db.open_unmigrated(keys()).await;
    let dir = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dir);
    let first_only = sqlx::migrate::Migrator::new(path).await.unwrap();
    let token = authgate_store::generate_session_token();
    let insert = r#"INSERT INTO sessions ("sessionToken", "userId", "accountId", expires, updated_at)
                    VALUES ($1, $2, NULL, 5000, 100)"#;
    let u;
    match db.backend() {
        Backend::Sqlite => {
            let pool = db.raw_sqlite().await;
            first_only.run_to(1, &pool).await.unwrap();
            u = user(&*store, "legacy@example.test").await;
            sqlx::query(insert)
                .bind(authgate_store::session_token_hash(&token))
                .bind(u.id.as_str())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = db.raw_pg().await;
            first_only.run_to(1, &pool).await.unwrap();
            u = user(&*store, "legacy@example.test").await;
            sqlx::query(insert)
                .bind(authgate_store::session_token_hash(&token))
                .bind(u.id.as_str())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    store.migrate().await.unwrap();
    let session = store.find_session(&token, t(200)).await.unwrap().unwrap();
    assert_eq!((session.user_id, session.expires), (u.id.clone(), t(5000)));
    let record = store
        .find_live_session(&session.id, t(200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.kind, record.created_at, record.last_seen_at),
        (SessionKind::Database, t(100), t(100))
    );
    // Records made after the migration sit beside it.
    let jwt = store
        .create_jwt_session(sign_in(&u, None, 300, 5000))
        .await
        .unwrap();
    assert_eq!(store.list_user_sessions(&u.id).await.unwrap().len(), 2);
    assert!(
        store
            .find_live_session(&jwt.id, t(301))
            .await
            .unwrap()
            .is_some()
    );
}

/// Every plaintext that must never reach the database.
fn plaintexts(tag: &str) -> Vec<String> {
    let t = token_set(tag);
    vec![
        t.access_token.expose().to_owned(),
        t.refresh_token.unwrap().expose().to_owned(),
        t.id_token.unwrap().expose().to_owned(),
    ]
}

async fn raw_columns_never_contain_tokens(db: &TestDb) {
    let store = db.open(keys()).await;
    let (u, a) = account(&*store, "rawcheck").await;
    store
        .replace_tokens(&a.id, 1, &token_set("rawcheck2"), None)
        .await
        .unwrap();
    let session = store
        .create_session(&u.id, None, t(0), t(1000))
        .await
        .unwrap();
    let mut forbidden = plaintexts("rawcheck");
    forbidden.extend(plaintexts("rawcheck2"));
    forbidden.push(session.token.expose().to_owned());
    for column in ["access_token", "refresh_token", "id_token"] {
        let raw = db.raw_column(&a.id, column).await.unwrap();
        assert!(raw.starts_with("v1."), "{column} is not in the v1 format");
        for p in &forbidden {
            assert!(!raw.contains(p.as_str()), "{column} contains a plaintext");
        }
    }
    match db {
        TestDb::Sqlite { path, .. } => {
            // Every byte on disk: the database file and its WAL.
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                if let Ok(b) = std::fs::read(&p) {
                    bytes.extend(b);
                }
            }
            assert!(
                bytes.len() > 4096,
                "the database files are unexpectedly empty"
            );
            // Sanity check: the file does contain unencrypted data we wrote.
            assert!(contains(&bytes, b"rawcheck@example.test"));
            for p in &forbidden {
                assert!(
                    !contains(&bytes, p.as_bytes()),
                    "a plaintext credential is in the SQLite files"
                );
            }
        }
        TestDb::Postgres { .. } => {
            // Every column of every row, as text.
            let pool = db.raw_pg().await;
            for table in ["accounts", "sessions", "users"] {
                let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT row_to_json(t)::text FROM {table} t"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                assert!(!rows.is_empty());
                for row in &rows {
                    for p in &forbidden {
                        assert!(!row.contains(p.as_str()), "{table} contains a plaintext");
                    }
                }
            }
            pool.close().await;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn ciphertext_moved_to_another_row_or_column_does_not_decrypt(db: &TestDb) {
    let store = db.open(keys()).await;
    let (_, a) = account(&*store, "swap-a").await;
    let (_, b) = account(&*store, "swap-b").await;
    // Another row's refresh token pasted into b.
    let a_refresh = db.raw_column(&a.id, "refresh_token").await.unwrap();
    db.set_raw_column(&b.id, "refresh_token", &a_refresh).await;
    let r = store.read_tokens(&b.id).await;
    assert!(
        matches!(
            r,
            Err(StoreError::Decrypt {
                column: "refresh_token",
                source: CryptoError::Authentication,
                ..
            })
        ),
        "{r:?}"
    );
    // The same row's refresh token pasted into its access token column.
    let a_access = db.raw_column(&a.id, "access_token").await.unwrap();
    db.set_raw_column(&a.id, "access_token", &a_refresh).await;
    assert!(matches!(
        store.read_tokens(&a.id).await,
        Err(StoreError::Decrypt {
            column: "access_token",
            ..
        })
    ));
    db.set_raw_column(&a.id, "access_token", &a_access).await;
    assert!(store.read_tokens(&a.id).await.is_ok());
}

async fn rotated_keys_still_decrypt_and_reencrypt_all_moves_rows_to_the_newest_key(db: &TestDb) {
    let old_ring = KeyRing::from_secrets(&[SECRET_A]).unwrap();
    let rotated = KeyRing::from_secrets(&[SECRET_B, SECRET_A]).unwrap();
    let new_only = KeyRing::from_secrets(&[SECRET_B]).unwrap();

    let old = db.open(old_ring.clone()).await;
    let mut accounts = Vec::new();
    for i in 0..3 {
        accounts.push(account(&*old, &format!("rot{i}")).await.1);
    }
    // A revoked row (no tokens) is left alone.
    old.mark_grant_revoked(&accounts[2].id, 1, t(5), None)
        .await
        .unwrap();

    let store = db.open(rotated.clone()).await;
    // New writes use the newest key; old values still decrypt.
    store
        .replace_tokens(&accounts[1].id, 1, &token_set("rot1-new"), None)
        .await
        .unwrap();
    let kid = |raw: String| KeyRing::key_id_of(&raw).unwrap().to_owned();
    assert_eq!(
        kid(db
            .raw_column(&accounts[0].id, "access_token")
            .await
            .unwrap()),
        old_ring.current_key_id()
    );
    assert_eq!(
        kid(db
            .raw_column(&accounts[1].id, "access_token")
            .await
            .unwrap()),
        rotated.current_key_id()
    );
    assert_eq!(
        store
            .read_tokens(&accounts[0].id)
            .await
            .unwrap()
            .unwrap()
            .tokens,
        Some(token_set("rot0"))
    );
    // Without the old key, the old row cannot be read...
    let without_old = db.open(new_only.clone()).await;
    assert!(matches!(
        without_old.read_tokens(&accounts[0].id).await,
        Err(StoreError::Decrypt {
            source: CryptoError::UnknownKey { .. },
            ..
        })
    ));
    // ...until everything is re-encrypted under the newest key.
    assert_eq!(store.reencrypt_all().await.unwrap(), 1);
    assert_eq!(store.reencrypt_all().await.unwrap(), 0);
    for (a, tag) in [(&accounts[0], "rot0"), (&accounts[1], "rot1-new")] {
        let read = without_old.read_tokens(&a.id).await.unwrap().unwrap();
        assert_eq!(read.tokens, Some(token_set(tag)));
        let kids: BTreeSet<_> = [
            db.raw_column(&a.id, "access_token").await,
            db.raw_column(&a.id, "refresh_token").await,
            db.raw_column(&a.id, "id_token").await,
        ]
        .into_iter()
        .map(|raw| kid(raw.unwrap()))
        .collect();
        assert_eq!(kids, BTreeSet::from([new_only.current_key_id().to_owned()]));
    }
    // Re-encryption does not change versions (no CAS is disturbed).
    assert_eq!(
        without_old
            .read_tokens(&accounts[0].id)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    let _: &dyn Store = &*without_old;
    let _ = Backend::Sqlite;
}

async fn imported_rows_are_written_once_keep_their_ids_and_report_conflicts(db: &TestDb) {
    use authgate_store::{
        AccountId, ImportStore, Imported, ImportedAccount, ImportedSession, session_token_hash,
    };
    let store = db.open_import(keys()).await;
    let authjs_user = |id: &str, email: &str| User {
        id: UserId::new(id),
        name: Some(format!("User {id}")),
        email: Some(email.to_owned()),
        email_verified: None,
        image: None,
    };
    async fn one_user(store: &dyn ImportStore, user: &User) -> Imported {
        store
            .import_users(std::slice::from_ref(user))
            .await
            .unwrap()[0]
    }
    async fn one_account(
        store: &dyn ImportStore,
        account: &ImportedAccount,
    ) -> (Imported, AccountId) {
        store
            .import_accounts(std::slice::from_ref(account))
            .await
            .unwrap()
            .remove(0)
    }

    // Users: their own ids, once; an e-mail held by another user is a conflict.
    let ada = authjs_user("1", "ada@example.test");
    let bob = authjs_user("3", "bob@example.test");
    assert_eq!(
        store
            .import_users(&[
                ada.clone(),
                authjs_user("2", "ada@example.test"),
                bob.clone()
            ])
            .await
            .unwrap(),
        vec![
            Imported::Created,
            Imported::Conflict("another user has this e-mail address"),
            Imported::Created
        ]
    );
    assert_eq!(store.find_user(&ada.id).await.unwrap(), Some(ada.clone()));
    assert!(store.find_user(&UserId::new("2")).await.unwrap().is_none());
    let renamed = NewUser {
        name: Some("Ada L.".into()),
        email: ada.email.clone(),
        ..NewUser::default()
    };
    store.update_user_profile(&ada.id, renamed).await.unwrap();
    assert_eq!(one_user(&*store, &ada).await, Imported::AlreadyPresent);
    let kept = store.find_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(
        kept.name.as_deref(),
        Some("Ada L."),
        "an existing row is never changed"
    );

    // Accounts: tokens encrypted at version 1, once per provider account.
    let account = |id: &str, user: &User, subject: &str, tag: Option<&str>| ImportedAccount {
        id: AccountId::new(id),
        user_id: user.id.clone(),
        kind: "oidc".into(),
        provider: "op".into(),
        provider_account_id: subject.into(),
        tokens: tag.map(token_set),
        session_state: None,
    };
    let first = account("10", &ada, "ada-sub", Some("imported"));
    assert_eq!(
        one_account(&*store, &first).await,
        (Imported::Created, first.id.clone())
    );
    let stored = store.read_tokens(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.tokens, Some(token_set("imported")));
    assert_eq!(
        one_account(&*store, &first).await,
        (Imported::AlreadyPresent, first.id.clone())
    );
    // The same provider account under a new id (a schema without account
    // ids, imported again): already there, under the stored id.
    assert_eq!(
        one_account(&*store, &account("11", &ada, "ada-sub", Some("other"))).await,
        (Imported::AlreadyPresent, first.id.clone())
    );
    assert_eq!(
        store.read_tokens(&first.id).await.unwrap().unwrap().tokens,
        Some(token_set("imported")),
        "tokens are never overwritten by an import"
    );
    assert!(matches!(
        one_account(&*store, &account("12", &bob, "ada-sub", Some("bob")))
            .await
            .0,
        Imported::Conflict(_)
    ));
    assert!(matches!(
        one_account(&*store, &account("10", &bob, "bob-sub", Some("bob")))
            .await
            .0,
        Imported::Conflict(_)
    ));
    let tokenless = account("13", &bob, "bob-sub", None);
    assert_eq!(one_account(&*store, &tokenless).await.0, Imported::Created);
    assert_eq!(
        store
            .read_tokens(&tokenless.id)
            .await
            .unwrap()
            .unwrap()
            .tokens,
        None
    );
    // A batch naming a missing user is refused whole.
    let batch = [
        account("15", &bob, "bob-other", None),
        account("14", &authjs_user("missing", "m@example.test"), "m", None),
    ];
    assert!(matches!(
        store.import_accounts(&batch).await,
        Err(StoreError::UserNotFound)
    ));
    assert!(
        store
            .find_account(&AccountId::new("15"))
            .await
            .unwrap()
            .is_none()
    );

    // Sessions: the browser's token, hashed, once.
    let cookie = Secret::new("authjs-session-token-value");
    let session = ImportedSession {
        token_hash: session_token_hash(&cookie),
        user_id: ada.id.clone(),
        account_id: Some(first.id.clone()),
        expires: t(10_000),
        now: t(1_000),
    };
    assert!(
        !store
            .session_token_exists(&session.token_hash)
            .await
            .unwrap()
    );
    let twice = [session.clone(), session.clone()];
    assert_eq!(
        store.import_sessions(&twice).await.unwrap(),
        vec![Imported::Created, Imported::AlreadyPresent]
    );
    assert!(
        store
            .session_token_exists(&session.token_hash)
            .await
            .unwrap()
    );
    let found = store
        .find_session(&cookie, t(2_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, ada.id);
    assert_eq!(found.account_id, Some(first.id.clone()));
    assert_eq!(found.expires, t(10_000));
    assert_eq!(store.list_user_sessions(&ada.id).await.unwrap().len(), 1);
}
