//! Store and cache latency: session lookup through the in-process cache,
//! Redis, SQLite and PostgreSQL; token compare-and-swap updates on SQLite and
//! PostgreSQL; the per-request revocation check of `revocation_check =
//! "request"` (a revocation-set lookup, in-process and Redis, and the
//! store's session-record lookup it falls back to). Backends whose URL (`AUTHGATE_TEST_POSTGRES_URL`,
//! `AUTHGATE_TEST_REDIS_URL`) is unset are skipped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::cache::{
    CacheOptions, CachedStore, RevocationSet, open_cache, open_revocation_set,
};
use authgate_store::{
    AccountId, KeyRing, NewAccount, NewSession, NewUser, PostgresStore, ReplaceOutcome, SessionId,
    SqliteStore, Store,
};
use criterion::{Criterion, criterion_group, criterion_main};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::hint::black_box;
use std::str::FromStr as _;
use std::sync::Arc;
use tokio::runtime::Runtime;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn keys() -> KeyRing {
    KeyRing::from_secrets(&["bench-secret-that-is-at-least-32-bytes-long"]).unwrap()
}

fn env(var: &str) -> Option<String> {
    let url = std::env::var(var).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("note: {var} is not set; skipping that backend");
    }
    url
}

fn tokens(i: u64) -> TokenSet {
    TokenSet {
        access_token: Secret::new(format!("access-token-{i}-{}", "x".repeat(800))),
        refresh_token: Some(Secret::new(format!("refresh-token-{i}"))),
        expires_at: Some(UnixTime::from_secs(1_900_000_000)),
        token_type: Some("Bearer".into()),
        scope: Some("openid email profile offline_access".into()),
        id_token: Some(Secret::new(format!("id-token-{i}-{}", "y".repeat(600)))),
    }
}

/// A session token and an account in `store`.
async fn seed(store: &dyn Store) -> (Secret, AccountId) {
    let user = store
        .create_user(NewUser {
            email: Some(format!("bench-{}@example.test", uuid_like())),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let account = store
        .link_account(NewAccount {
            user_id: user.id.clone(),
            kind: "oidc".into(),
            provider: "op".into(),
            provider_account_id: uuid_like(),
            tokens: tokens(0),
            session_state: None,
        })
        .await
        .unwrap();
    let session = store
        .create_session(
            &user.id,
            None,
            NOW,
            NOW.saturating_add(std::time::Duration::from_secs(86_400)),
        )
        .await
        .unwrap();
    (session.token, account.id)
}

fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn bench_session_lookup(c: &mut Criterion, rt: &Runtime, name: &str, store: &dyn Store) {
    let (token, _) = rt.block_on(seed(store));
    c.bench_function(&format!("session_lookup/{name}"), |b| {
        b.iter(|| {
            let s = rt.block_on(store.find_session(&token, NOW)).unwrap();
            black_box(s.expect("session exists"));
        });
    });
}

fn bench_token_read(c: &mut Criterion, rt: &Runtime, name: &str, store: &dyn Store) {
    let (_, account) = rt.block_on(seed(store));
    c.bench_function(&format!("token_read/{name}"), |b| {
        b.iter(|| {
            let t = rt.block_on(store.read_tokens(&account)).unwrap();
            black_box(t.expect("account exists"));
        });
    });
}

fn bench_token_cas(c: &mut Criterion, rt: &Runtime, name: &str, store: &dyn Store) {
    let (_, account) = rt.block_on(seed(store));
    let mut version = 1;
    let next = tokens(1);
    c.bench_function(&format!("token_cas_update/{name}"), |b| {
        b.iter(|| {
            let outcome = rt
                .block_on(store.replace_tokens(&account, version, &next, None))
                .unwrap();
            match outcome {
                ReplaceOutcome::Replaced { new_version } => version = new_version,
                ReplaceOutcome::LostRace { .. } => panic!("no one else writes"),
            }
        });
    });
}

/// `revocation_check = "request"`: is a live session's id in the set?
fn bench_revocation_check(c: &mut Criterion, rt: &Runtime, name: &str, set: &dyn RevocationSet) {
    rt.block_on(set.insert(&[SessionId::generate()])).unwrap();
    let live = SessionId::generate();
    c.bench_function(&format!("revocation_check/{name}"), |b| {
        b.iter(|| rt.block_on(set.contains(black_box(&live))).unwrap());
    });
}

/// The fallback when the set cannot answer: the session record by id.
fn bench_session_record(c: &mut Criterion, rt: &Runtime, name: &str, store: &dyn Store) {
    let id = rt.block_on(async {
        let user = store.create_user(NewUser::default()).await.unwrap();
        store
            .create_jwt_session(NewSession {
                user_id: user.id,
                account_id: None,
                now: NOW,
                expires: UnixTime::from_secs(1_900_000_000),
                user_agent: None,
                provider_sid: None,
                attributes: Default::default(),
            })
            .await
            .unwrap()
            .id
    });
    c.bench_function(&format!("session_record_lookup/{name}"), |b| {
        b.iter(|| {
            rt.block_on(store.find_live_session(black_box(&id), NOW))
                .unwrap()
        });
    });
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = SqliteStore::open(&url, keys()).await.unwrap();
        store.migrate().await.unwrap();
        Arc::new(store)
    });

    // In-process cache in front of SQLite.
    let memory = rt.block_on(async {
        let cache = open_cache("memory://", &CacheOptions::default())
            .await
            .unwrap();
        CachedStore::new(Arc::clone(&sqlite), cache, keys())
    });
    bench_session_lookup(c, &rt, "memory_cache", &memory);
    bench_token_read(c, &rt, "memory_cache", &memory);
    let lifetime = std::time::Duration::from_secs(30 * 24 * 3600);
    let memory_set = open_revocation_set("memory://", &CacheOptions::default(), lifetime).unwrap();
    bench_revocation_check(c, &rt, "memory", &*memory_set);

    if let Some(url) = env("AUTHGATE_TEST_REDIS_URL") {
        let redis = rt.block_on(async {
            let options = CacheOptions {
                key_prefix: format!("authgate-bench-{}:", uuid_like()),
                ..CacheOptions::default()
            };
            let cache = open_cache(&url, &options).await.unwrap();
            CachedStore::new(Arc::clone(&sqlite), cache, keys())
        });
        bench_session_lookup(c, &rt, "redis_cache", &redis);
        bench_token_read(c, &rt, "redis_cache", &redis);
        let options = CacheOptions {
            key_prefix: format!("authgate-bench-{}:", uuid_like()),
            ..CacheOptions::default()
        };
        let redis_set =
            rt.block_on(async { open_revocation_set(&url, &options, lifetime).unwrap() });
        bench_revocation_check(c, &rt, "redis", &*redis_set);
    }

    bench_session_lookup(c, &rt, "sqlite", &*sqlite);
    bench_token_read(c, &rt, "sqlite", &*sqlite);
    bench_token_cas(c, &rt, "sqlite", &*sqlite);
    bench_session_record(c, &rt, "sqlite", &*sqlite);

    if let Some(url) = env("AUTHGATE_TEST_POSTGRES_URL") {
        let schema = format!("authgate_bench_{}", uuid_like());
        let admin = rt.block_on(async {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&admin)
                .await
                .unwrap();
            admin
        });
        let postgres: Arc<dyn Store> = rt.block_on(async {
            let options = PgConnectOptions::from_str(&url)
                .unwrap()
                .application_name("authgate-bench")
                .options([("search_path", schema.as_str())]);
            let store = PostgresStore::connect_with(options, keys(), 4)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            Arc::new(store)
        });
        bench_session_lookup(c, &rt, "postgres", &*postgres);
        bench_token_read(c, &rt, "postgres", &*postgres);
        bench_token_cas(c, &rt, "postgres", &*postgres);
        bench_session_record(c, &rt, "postgres", &*postgres);
        rt.block_on(async {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{schema}\" CASCADE"
            )))
            .execute(&admin)
            .await
            .unwrap();
        });
    }
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
