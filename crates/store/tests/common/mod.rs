//! Shared test support: service URLs, per-test databases, fixtures, a counting
//! store decorator and a private redis-server.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::{
    Account, AccountId, AccountStore, Backend, CreatedSession, HeldLease, ImportStore, KeyRing,
    NewAccount, NewSession, NewUser, PostgresStore, RefreshLease, RefreshLeaseStore,
    ReplaceOutcome, RevokedSession, Session, SessionExpiry, SessionId, SessionRecord, SessionStore,
    SqliteStore, Store, StoreError, TokenStore, User, UserId, UserStore, VersionedTokens,
};
use rand::Rng as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const SECRET_A: &str = "test-secret-A-that-is-at-least-32-bytes-long";
pub const SECRET_B: &str = "test-secret-B-that-is-at-least-32-bytes-long";

/// The URL of a service the test needs, from the environment. `None` (after a
/// note) when unset; a failure when `AUTHGATE_REQUIRE_SERVICES=1`.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("AUTHGATE_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{var} is not set but AUTHGATE_REQUIRE_SERVICES=1: this test needs the service"
            );
            eprintln!("note: {var} is not set; skipping this test");
            None
        }
    }
}

pub fn keys() -> KeyRing {
    KeyRing::from_secrets(&[SECRET_A]).unwrap()
}

pub fn random_suffix() -> String {
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}

pub fn t(secs: i64) -> UnixTime {
    UnixTime::from_secs(secs)
}

/// A distinctive token set; every credential contains `tag`.
pub fn token_set(tag: &str) -> TokenSet {
    TokenSet {
        access_token: Secret::new(format!("AT-PLAINTEXT-{tag}")),
        refresh_token: Some(Secret::new(format!("RT-PLAINTEXT-{tag}"))),
        expires_at: Some(t(1_900_000_000)),
        token_type: Some("Bearer".into()),
        scope: Some("openid email offline_access".into()),
        id_token: Some(Secret::new(format!("IDT-PLAINTEXT-{tag}"))),
    }
}

pub async fn user(store: &dyn Store, email: &str) -> User {
    store
        .create_user(NewUser {
            name: Some("Test User".into()),
            email: Some(email.into()),
            email_verified: Some(t(1_700_000_000)),
            image: None,
        })
        .await
        .unwrap()
}

/// A user with one linked account holding `token_set(tag)`.
pub async fn account(store: &dyn Store, tag: &str) -> (User, Account) {
    let u = user(store, &format!("{tag}@example.test")).await;
    let a = store
        .link_account(NewAccount {
            user_id: u.id.clone(),
            kind: "oidc".into(),
            provider: "op".into(),
            provider_account_id: format!("sub-{tag}"),
            tokens: token_set(tag),
            session_state: None,
        })
        .await
        .unwrap();
    (u, a)
}

/// One database for one test: a temp SQLite file, or a fresh PostgreSQL
/// schema that is dropped when this value is dropped.
pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        base_url: String,
        schema: String,
        application_name: String,
    },
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authgate.db");
        Self::Sqlite { dir, path }
    }

    pub async fn postgres() -> Option<Self> {
        let base_url = service_url("AUTHGATE_TEST_POSTGRES_URL")?;
        let suffix = random_suffix();
        let schema = format!("authgate_test_{suffix}");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&base_url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Some(Self::Postgres {
            base_url,
            schema,
            application_name: format!("authgate-test-{suffix}"),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A store on this database (not migrated).
    pub async fn open_unmigrated(&self, keys: KeyRing) -> Arc<dyn Store> {
        match self {
            Self::Sqlite { path, .. } => {
                let url = format!("sqlite://{}", path.display());
                Arc::new(SqliteStore::open(&url, keys).await.unwrap())
            }
            Self::Postgres {
                base_url,
                schema,
                application_name,
            } => {
                let options = PgConnectOptions::from_str(base_url)
                    .unwrap()
                    .application_name(application_name)
                    .options([("search_path", schema.as_str())]);
                Arc::new(PostgresStore::connect_with(options, keys, 8).await.unwrap())
            }
        }
    }

    /// A migrated store on this database, connecting to the server at `server_url`
    /// (e.g. a fault proxy in front of it) instead of the configured one (PostgreSQL only).
    pub async fn open_through(&self, server_url: &str, keys: KeyRing) -> Arc<dyn Store> {
        let Self::Postgres {
            schema,
            application_name,
            ..
        } = self
        else {
            panic!("not a PostgreSQL test database");
        };
        let options = PgConnectOptions::from_str(server_url)
            .unwrap()
            .application_name(application_name)
            .options([("search_path", schema.as_str())]);
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect_with(options, keys, 2).await.unwrap());
        store.migrate().await.unwrap();
        store
    }

    /// A migrated store on this database with its import operations.
    pub async fn open_import(&self, keys: KeyRing) -> Arc<dyn ImportStore> {
        let store: Arc<dyn ImportStore> = match self {
            Self::Sqlite { path, .. } => {
                let url = format!("sqlite://{}", path.display());
                Arc::new(SqliteStore::open(&url, keys).await.unwrap())
            }
            Self::Postgres {
                base_url,
                schema,
                application_name,
            } => {
                let options = PgConnectOptions::from_str(base_url)
                    .unwrap()
                    .application_name(application_name)
                    .options([("search_path", schema.as_str())]);
                Arc::new(PostgresStore::connect_with(options, keys, 4).await.unwrap())
            }
        };
        store.migrate().await.unwrap();
        store
    }

    /// A migrated store on this database.
    pub async fn open(&self, keys: KeyRing) -> Arc<dyn Store> {
        let store = self.open_unmigrated(keys).await;
        store.migrate().await.unwrap();
        store
    }

    /// A raw PostgreSQL pool on this test's schema (PostgreSQL only).
    pub async fn raw_pg(&self) -> sqlx::PgPool {
        let Self::Postgres {
            base_url, schema, ..
        } = self
        else {
            panic!("not a PostgreSQL test database");
        };
        let options = PgConnectOptions::from_str(base_url)
            .unwrap()
            .application_name("authgate-test-admin")
            .options([("search_path", schema.as_str())]);
        PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    /// A raw SQLite pool on this test's file (SQLite only).
    pub async fn raw_sqlite(&self) -> sqlx::SqlitePool {
        let Self::Sqlite { path, .. } = self else {
            panic!("not a SQLite test database");
        };
        sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap()
    }

    /// Overwrites one raw column of one account row.
    pub async fn set_raw_column(&self, account: &AccountId, column: &str, value: &str) {
        let sql = format!("UPDATE accounts SET {column} = $1 WHERE id = $2");
        match self {
            Self::Sqlite { .. } => {
                let pool = self.raw_sqlite().await;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(value)
                    .bind(account.as_str())
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Self::Postgres { .. } => {
                let pool = self.raw_pg().await;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(value)
                    .bind(account.as_str())
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }

    /// Reads one raw text column of one account row.
    pub async fn raw_column(&self, account: &AccountId, column: &str) -> Option<String> {
        let sql = format!("SELECT {column} FROM accounts WHERE id = $1");
        match self {
            Self::Sqlite { .. } => {
                let pool = self.raw_sqlite().await;
                let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(account.as_str())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                v
            }
            Self::Postgres { .. } => {
                let pool = self.raw_pg().await;
                let v = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .bind(account.as_str())
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                v
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            base_url, schema, ..
        } = self
        {
            let base_url = base_url.clone();
            let schema = schema.clone();
            // Async drop is not a thing: use a private runtime on a thread.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(pool) = PgPoolOptions::new()
                        .max_connections(1)
                        .connect(&base_url)
                        .await
                    {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                        )))
                        .execute(&pool)
                        .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A store decorator that counts every call that reaches the real store.
pub struct CountingStore {
    pub inner: Arc<dyn Store>,
    calls: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl UserStore for CountingStore {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.hit();
        self.inner.create_user(user).await
    }
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.hit();
        self.inner.find_user(id).await
    }
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.hit();
        self.inner.find_user_by_email(email).await
    }
    async fn update_user_profile(&self, id: &UserId, profile: NewUser) -> Result<User, StoreError> {
        self.hit();
        self.inner.update_user_profile(id, profile).await
    }
}

#[async_trait]
impl AccountStore for CountingStore {
    async fn link_account(&self, account: NewAccount) -> Result<Account, StoreError> {
        self.hit();
        self.inner.link_account(account).await
    }
    async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
        self.hit();
        self.inner.find_account(id).await
    }
    async fn find_account_by_provider(
        &self,
        provider: &str,
        provider_account_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        self.hit();
        self.inner
            .find_account_by_provider(provider, provider_account_id)
            .await
    }
    async fn list_accounts_for_user(&self, user: &UserId) -> Result<Vec<Account>, StoreError> {
        self.hit();
        self.inner.list_accounts_for_user(user).await
    }
}

#[async_trait]
impl TokenStore for CountingStore {
    async fn read_tokens(
        &self,
        account: &AccountId,
    ) -> Result<Option<VersionedTokens>, StoreError> {
        self.hit();
        self.inner.read_tokens(account).await
    }
    async fn replace_tokens(
        &self,
        account: &AccountId,
        expected_version: i64,
        tokens: &TokenSet,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError> {
        self.hit();
        self.inner
            .replace_tokens(account, expected_version, tokens, release_lease_of)
            .await
    }
    async fn mark_grant_revoked(
        &self,
        account: &AccountId,
        expected_version: i64,
        now: UnixTime,
        release_lease_of: Option<&str>,
    ) -> Result<ReplaceOutcome, StoreError> {
        self.hit();
        self.inner
            .mark_grant_revoked(account, expected_version, now, release_lease_of)
            .await
    }
}

#[async_trait]
impl RefreshLeaseStore for CountingStore {
    async fn try_claim_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        self.hit();
        self.inner
            .try_claim_refresh_lease(account, owner, ttl)
            .await
    }
    async fn renew_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        self.hit();
        self.inner.renew_refresh_lease(account, owner, ttl).await
    }
    async fn release_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
    ) -> Result<bool, StoreError> {
        self.hit();
        self.inner.release_refresh_lease(account, owner).await
    }
    async fn read_refresh_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<RefreshLease>, StoreError> {
        self.hit();
        self.inner.read_refresh_lease(account).await
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn create_jwt_session(&self, new: NewSession) -> Result<SessionRecord, StoreError> {
        self.hit();
        self.inner.create_jwt_session(new).await
    }
    async fn create_jwt_session_with_id(
        &self,
        id: SessionId,
        new: NewSession,
    ) -> Result<SessionRecord, StoreError> {
        self.hit();
        self.inner.create_jwt_session_with_id(id, new).await
    }
    async fn create_database_session(&self, new: NewSession) -> Result<CreatedSession, StoreError> {
        self.hit();
        self.inner.create_database_session(new).await
    }
    async fn find_session(
        &self,
        token: &Secret,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        self.hit();
        self.inner.find_session(token, now).await
    }
    async fn touch_session(
        &self,
        token: &Secret,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<Session>, StoreError> {
        self.hit();
        self.inner.touch_session(token, now, expiry).await
    }
    async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError> {
        self.hit();
        self.inner.delete_session(token).await
    }
    async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.hit();
        self.inner.delete_expired_sessions(now).await
    }
    async fn find_live_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.hit();
        self.inner.find_live_session(id, now).await
    }
    async fn touch_session_record(
        &self,
        id: &SessionId,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.hit();
        self.inner.touch_session_record(id, now, expiry).await
    }
    async fn list_user_sessions(&self, user: &UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.hit();
        self.inner.list_user_sessions(user).await
    }
    async fn revoke_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<RevokedSession>, StoreError> {
        self.hit();
        self.inner.revoke_session(id, now).await
    }
    async fn revoke_account_sessions(
        &self,
        account: &AccountId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.hit();
        self.inner.revoke_account_sessions(account, now).await
    }
    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.hit();
        self.inner.revoke_user_sessions(user, now).await
    }
    async fn revoke_provider_sessions(
        &self,
        provider: &str,
        provider_sid: &str,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.hit();
        self.inner
            .revoke_provider_sessions(provider, provider_sid, now)
            .await
    }
}

#[async_trait]
impl Store for CountingStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.hit();
        self.inner.migrate().await
    }
    async fn reencrypt_all(&self) -> Result<u64, StoreError> {
        self.hit();
        self.inner.reencrypt_all().await
    }
}

/// A private redis-server on a free port, killed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut server = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read as _, Write as _};
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
