//! `authgate import authjs` end to end. The source databases are written
//! the way Auth.js apps write them: `@auth/drizzle-adapter` and
//! `@auth/pg-adapter` through their own `createUser` / `linkAccount` /
//! `createSession` (interop/authjs-adapter-seed.mjs), and Prisma's shape
//! from the DDL `prisma migrate` generates for `@auth/prisma-adapter`'s
//! documented schema (see `prisma_postgres_ddl`). The accounts carry grants
//! really issued by `oidc-provider` (strict rotation with reuse detection).
//! Then the real `authgate` binary imports (dry run first, then twice), and
//! a gateway on the imported store refreshes every account exactly once and
//! accepts the Auth.js database-session cookies as they are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::client_secret::SecretHash;
use authgate_store::{Store, UserId};
use authgate_testkit::{OidcProviderPeer, PeerClient, PeerOptions, TokenResponse, require_url};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const USERS: usize = 3;
/// When the users' addresses were verified (e-mail sign-in), as epoch seconds.
const EMAIL_VERIFIED: i64 = 1_700_000_000;
const COOKIE_NAME: &str = "authjs.session-token";
const SERVICE_SECRET: &str = "Yq3m9xKfV2pL7sT0wR4nB8cJ6hD1gZ5eA-uNoPiQ_Mk";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Where the Auth.js data lives and how it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Drizzle,
    PgAdapter,
    PrismaPostgres,
    PrismaSqlite,
}

/// A PostgreSQL schema of its own for one test, dropped at the end.
struct PgSchema {
    base_url: String,
    name: String,
}

impl PgSchema {
    async fn create(base_url: &str, tag: &str) -> Self {
        use sqlx::Connection as _;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("authgate_import_{tag}_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(base_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            base_url: base_url.to_owned(),
            name,
        }
    }

    /// The base URL with `search_path` set to this schema (sqlx's form,
    /// which `--from` accepts).
    fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{sep}options%5Bsearch_path%5D={}",
            self.base_url, self.name
        )
    }

    async fn connect(&self) -> sqlx::PgConnection {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.base_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{}\"",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn
    }

    async fn drop_now(self) {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.base_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// What the Auth.js app holds for one user.
struct AuthjsUser {
    login: String,
    grant: TokenResponse,
    /// The `expires_at` the app recorded (already past: the user has not
    /// been around since).
    expires_at: i64,
    /// Live database sessions (cookie values), then one expired.
    live_sessions: Vec<String>,
    expired_session: Option<String>,
    /// A second account at a provider authgate is not configured for.
    github: bool,
}

/// The users every source gets: three real grants; user 0 also has a
/// GitHub account (not configured: skipped) and an expired session; users
/// 0 and 1 have a live database session; user 2 has none.
async fn authjs_users(peer: &OidcProviderPeer, tag: &str) -> Vec<AuthjsUser> {
    let mut users = Vec::new();
    for i in 0..USERS {
        let login = format!("{tag}-user-{i}");
        let grant = peer.obtain_tokens("test", &login).await;
        assert!(grant.refresh_token.is_some(), "offline_access granted");
        users.push(AuthjsUser {
            login,
            grant,
            expires_at: now() - 60,
            live_sessions: if i < 2 {
                vec![authgate_testkit::random_token(32)]
            } else {
                Vec::new()
            },
            expired_session: (i == 0).then(|| authgate_testkit::random_token(32)),
            github: i == 0,
        });
    }
    users
}

/// The accounts of `u` as Auth.js's `linkAccount` receives them.
fn accounts_json(u: &AuthjsUser) -> Vec<serde_json::Value> {
    let mut accounts = vec![json!({
        "provider": "op",
        "providerAccountId": u.login,
        "type": "oidc",
        "access_token": u.grant.access_token,
        "refresh_token": u.grant.refresh_token,
        "id_token": u.grant.id_token,
        "expires_at": u.expires_at,
        "token_type": u.grant.token_type.to_lowercase(),
        "scope": u.grant.scope,
    })];
    if u.github {
        accounts.push(json!({
            "provider": "github",
            "providerAccountId": "583231",
            "type": "oauth",
            "access_token": "gho_not-a-real-token",
            "token_type": "bearer",
            "scope": "read:user,user:email",
        }));
    }
    accounts
}

fn sessions_json(u: &AuthjsUser) -> Vec<serde_json::Value> {
    let mut sessions: Vec<_> = u
        .live_sessions
        .iter()
        .map(|t| json!({"sessionToken": t, "expires": now() + 30 * 86_400}))
        .collect();
    if let Some(t) = &u.expired_session {
        sessions.push(json!({"sessionToken": t, "expires": now() - 3_600}));
    }
    sessions
}

/// Writes the users through the real adapter (`drizzle` or `pg`) into
/// `schema`; returns the user ids the adapter assigned.
async fn seed_with_adapter(adapter: &str, schema: &PgSchema, users: &[AuthjsUser]) -> Vec<String> {
    use tokio::io::AsyncWriteExt as _;
    authgate_testkit::ensure_node_modules();
    let input = json!({
        "adapter": adapter,
        "url": schema.base_url,
        "schema": schema.name,
        "users": users.iter().map(|u| json!({
            "name": format!("User {}", u.login),
            "email": format!("{}@example.com", u.login),
            "emailVerified": EMAIL_VERIFIED,
            "accounts": accounts_json(u),
            "sessions": sessions_json(u),
        })).collect::<Vec<_>>(),
    });
    let dir = authgate_testkit::interop_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("authjs-adapter-seed.mjs"))
        .current_dir(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The tables `prisma migrate dev` creates on PostgreSQL for the schema
/// `@auth/prisma-adapter` documents (authjs.dev, current version: `Account`
/// keyed by provider + `providerAccountId`, `createdAt`/`updatedAt`).
///
/// Written out here because the Prisma CLI cannot run on these machines: it
/// downloads its schema engine at run time, and only package registries are
/// reachable. The rows are then inserted with plain SQL, as Prisma Client
/// would write them (`TIMESTAMP(3)` in UTC, cuid-style ids).
const PRISMA_POSTGRES_DDL: &str = r#"
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "email" TEXT NOT NULL,
    "emailVerified" TIMESTAMP(3),
    "image" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Account" (
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "refresh_token" TEXT,
    "access_token" TEXT,
    "expires_at" INTEGER,
    "token_type" TEXT,
    "scope" TEXT,
    "id_token" TEXT,
    "session_state" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "Account_pkey" PRIMARY KEY ("provider","providerAccountId")
);
CREATE TABLE "Session" (
    "sessionToken" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL
);
CREATE TABLE "VerificationToken" (
    "identifier" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "VerificationToken_pkey" PRIMARY KEY ("identifier","token")
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE UNIQUE INDEX "Session_sessionToken_key" ON "Session"("sessionToken");
ALTER TABLE "Account" ADD CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Session" ADD CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"#;

/// The tables `prisma migrate dev` creates on SQLite for the schema as
/// `@auth/prisma-adapter` documented it before `Account` and `Session` lost
/// their `id` (so both variants are covered). Prisma stores `DateTime` on
/// SQLite as integer milliseconds since the epoch. Written out for the same
/// reason as [`PRISMA_POSTGRES_DDL`].
const PRISMA_SQLITE_DDL: &str = r#"
CREATE TABLE "Account" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    "refresh_token" TEXT,
    "access_token" TEXT,
    "expires_at" INTEGER,
    "token_type" TEXT,
    "scope" TEXT,
    "id_token" TEXT,
    "session_state" TEXT,
    CONSTRAINT "Account_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE "Session" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "sessionToken" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "expires" DATETIME NOT NULL,
    CONSTRAINT "Session_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE "User" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT,
    "email" TEXT,
    "emailVerified" DATETIME,
    "image" TEXT
);
CREATE TABLE "VerificationToken" (
    "identifier" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires" DATETIME NOT NULL
);
CREATE UNIQUE INDEX "Account_provider_providerAccountId_key" ON "Account"("provider", "providerAccountId");
CREATE UNIQUE INDEX "Session_sessionToken_key" ON "Session"("sessionToken");
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE UNIQUE INDEX "VerificationToken_token_key" ON "VerificationToken"("token");
CREATE UNIQUE INDEX "VerificationToken_identifier_token_key" ON "VerificationToken"("identifier", "token");
"#;

/// A Prisma-style id (cuid-like; Prisma Client generates them).
fn cuid(prefix: &str, i: usize) -> String {
    format!(
        "c{prefix}{i:02}{}",
        authgate_testkit::random_token(9).to_lowercase()
    )
}

/// The rows of `users` as plain SQL statements with their parameters:
/// (sql, text params, integer params in order) would be overkill; each
/// backend binds its own.
async fn seed_prisma_postgres(schema: &PgSchema, users: &[AuthjsUser]) -> Vec<String> {
    let mut conn = schema.connect().await;
    sqlx::raw_sql(PRISMA_POSTGRES_DDL)
        .execute(&mut conn)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let id = cuid("pg", i);
        sqlx::query(
            r#"INSERT INTO "User" (id, name, email, "emailVerified", "updatedAt")
               VALUES ($1, $2, $3, to_timestamp($4) AT TIME ZONE 'UTC', CURRENT_TIMESTAMP)"#,
        )
        .bind(&id)
        .bind(format!("User {}", u.login))
        .bind(format!("{}@example.com", u.login))
        .bind(EMAIL_VERIFIED as f64)
        .execute(&mut conn)
        .await
        .unwrap();
        for a in accounts_json(u) {
            sqlx::query(
                r#"INSERT INTO "Account" ("userId", type, provider, "providerAccountId",
                       refresh_token, access_token, expires_at, token_type, scope, id_token,
                       "updatedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CURRENT_TIMESTAMP)"#,
            )
            .bind(&id)
            .bind(a["type"].as_str())
            .bind(a["provider"].as_str())
            .bind(a["providerAccountId"].as_str())
            .bind(a["refresh_token"].as_str())
            .bind(a["access_token"].as_str())
            .bind(a["expires_at"].as_i64().map(|e| e as i32))
            .bind(a["token_type"].as_str())
            .bind(a["scope"].as_str())
            .bind(a["id_token"].as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        for s in sessions_json(u) {
            // Prisma writes UTC wall-clock time into TIMESTAMP(3).
            sqlx::query(
                r#"INSERT INTO "Session" ("sessionToken", "userId", expires, "updatedAt")
                   VALUES ($1, $2, to_timestamp($3) AT TIME ZONE 'UTC', CURRENT_TIMESTAMP)"#,
            )
            .bind(s["sessionToken"].as_str())
            .bind(&id)
            .bind(s["expires"].as_i64().unwrap() as f64)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        ids.push(id);
    }
    ids
}

async fn seed_prisma_sqlite(path: &Path, users: &[AuthjsUser]) -> Vec<String> {
    use sqlx::Connection as _;
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
    sqlx::raw_sql(PRISMA_SQLITE_DDL)
        .execute(&mut conn)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let id = cuid("sq", i);
        let insert = sqlx::query(
            r#"INSERT INTO "User" (id, name, email, "emailVerified") VALUES ($1, $2, $3, $4)"#,
        )
        .bind(&id)
        .bind(format!("User {}", u.login))
        .bind(format!("{}@example.com", u.login));
        // Prisma writes integer milliseconds; one row as ISO-8601 text, as
        // other SQLite writers (and older tools) leave them.
        let insert = if i == 1 {
            insert.bind("2023-11-14T22:13:20.000Z")
        } else {
            insert.bind(EMAIL_VERIFIED * 1000)
        };
        insert.execute(&mut conn).await.unwrap();
        for (j, a) in accounts_json(u).into_iter().enumerate() {
            sqlx::query(
                r#"INSERT INTO "Account" (id, "userId", type, provider, "providerAccountId",
                       refresh_token, access_token, expires_at, token_type, scope, id_token)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#,
            )
            .bind(cuid(&format!("acc{j}"), i))
            .bind(&id)
            .bind(a["type"].as_str())
            .bind(a["provider"].as_str())
            .bind(a["providerAccountId"].as_str())
            .bind(a["refresh_token"].as_str())
            .bind(a["access_token"].as_str())
            .bind(a["expires_at"].as_i64())
            .bind(a["token_type"].as_str())
            .bind(a["scope"].as_str())
            .bind(a["id_token"].as_str())
            .execute(&mut conn)
            .await
            .unwrap();
        }
        for (j, s) in sessions_json(u).into_iter().enumerate() {
            sqlx::query(
                r#"INSERT INTO "Session" (id, "sessionToken", "userId", expires)
                   VALUES ($1, $2, $3, $4)"#,
            )
            .bind(cuid(&format!("ses{j}"), i))
            .bind(s["sessionToken"].as_str())
            .bind(&id)
            .bind(s["expires"].as_i64().unwrap() * 1000)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        ids.push(id);
    }
    ids
}

/// `authgate <args>` (the real binary).
async fn authgate(args: &[&str]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .env_remove("AUTHGATE_CONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn service_client_toml() -> String {
    let hash = SecretHash::new(SERVICE_SECRET.as_bytes(), &mut rand::rngs::OsRng);
    format!(
        "\n[[service_clients]]\nid = \"jobs\"\nsecret_hash = \"{hash}\"\nallow = [\"token:offline\"]\n"
    )
}

/// `POST {gw}/auth/token` naming the user by id (a nightly job).
async fn offline_token(gw: &url::Url, user_id: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(gw.join("/auth/token").unwrap())
        .header(
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("jobs:{SERVICE_SECRET}"))
            ),
        )
        .json(&json!({"user_id": user_id, "provider": "op"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The whole journey for one kind of source.
async fn import_refresh_once_and_keep_sessions(kind: Kind, store_on_postgres: bool) {
    let pg = match kind {
        Kind::PrismaSqlite => None,
        _ => match require_url("AUTHGATE_TEST_POSTGRES_URL") {
            Some(url) => Some(url),
            None => return,
        },
    };
    let tag = match kind {
        Kind::Drizzle => "drizzle",
        Kind::PgAdapter => "pgadapter",
        Kind::PrismaPostgres => "prismapg",
        Kind::PrismaSqlite => "prismasqlite",
    };
    let dir = tempfile::tempdir().unwrap();
    let reserved = reserve().await;
    let peer = OidcProviderPeer::start(PeerOptions {
        clients: vec![PeerClient::confidential(
            "test",
            "test-secret",
            &format!("{}auth/callback/op", reserved.url),
        )],
        access_token_ttl_secs: 300,
        ..Default::default()
    })
    .await;

    // The Auth.js app's database, with real grants in it.
    let users = authjs_users(&peer, tag).await;
    let schema = match &pg {
        Some(url) => Some(PgSchema::create(url, tag).await),
        None => None,
    };
    let (from, ids) = match kind {
        Kind::Drizzle | Kind::PgAdapter => {
            let schema = schema.as_ref().unwrap();
            let adapter = if kind == Kind::Drizzle {
                "drizzle"
            } else {
                "pg"
            };
            (
                schema.url(),
                seed_with_adapter(adapter, schema, &users).await,
            )
        }
        Kind::PrismaPostgres => {
            let schema = schema.as_ref().unwrap();
            (schema.url(), seed_prisma_postgres(schema, &users).await)
        }
        Kind::PrismaSqlite => {
            let path = dir.path().join("authjs.db");
            let ids = seed_prisma_sqlite(&path, &users).await;
            (format!("sqlite://{}", path.display()), ids)
        }
    };
    assert_eq!(ids.len(), USERS);
    let secrets: Vec<String> = users
        .iter()
        .flat_map(|u| {
            [
                u.grant.access_token.clone(),
                u.grant.refresh_token.clone().unwrap(),
            ]
        })
        .collect();

    // authgate's configuration: provider "op" only, database sessions.
    let store_schema = match (&pg, store_on_postgres) {
        (Some(url), true) => Some(PgSchema::create(url, &format!("{tag}_store")).await),
        _ => None,
    };
    let store_url = match &store_schema {
        Some(schema) => schema.url(),
        None => format!("sqlite://{}", dir.path().join("authgate.db").display()),
    };
    let toml = config_toml(
        &reserved.url,
        peer.issuer().as_str().trim_end_matches('/'),
        &store_url,
        "strategy = \"database\"",
        "inline",
    ) + &service_client_toml();
    let config_path = dir.path().join("authgate.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let config = config_path.to_str().unwrap();
    let migrate = authgate(&["migrate", "--config", config]).await;
    assert!(migrate.status.success(), "{:?}", text(&migrate));

    // A dry run says what would happen and writes nothing.
    let dry = authgate(&[
        "import",
        "authjs",
        "--from",
        &from,
        "--dry-run",
        "--config",
        config,
    ])
    .await;
    let (out, err) = text(&dry);
    assert!(dry.status.success(), "{out}\n{err}");
    assert!(
        out.contains("users: 3 to create, 0 already present, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("accounts: 3 to create, 0 already present, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("sessions: 2 to create, 0 already present, 1 skipped"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing written"), "{out}");
    let store = open_store(&toml).await;
    for id in &ids {
        assert!(
            store.find_user(&UserId::new(id)).await.unwrap().is_none(),
            "dry run wrote {id}"
        );
    }

    // The import.
    let first = authgate(&["import", "authjs", "--from", &from, "--config", config]).await;
    let (out, err) = text(&first);
    assert!(first.status.success(), "{out}\n{err}");
    let expected_source = match kind {
        Kind::Drizzle => "Drizzle (@auth/drizzle-adapter) schema on PostgreSQL",
        Kind::PgAdapter => "@auth/pg-adapter schema on PostgreSQL",
        Kind::PrismaPostgres => "Prisma (@auth/prisma-adapter) schema on PostgreSQL",
        Kind::PrismaSqlite => "Prisma (@auth/prisma-adapter) schema on SQLite",
    };
    assert!(out.contains(expected_source), "{out}");
    assert!(
        out.contains("users: 3 created, 0 already present, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("accounts: 3 created, 0 already present, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("1 skipped: provider \"github\" is not configured"),
        "{out}"
    );
    assert!(
        out.contains("sessions: 2 created, 0 already present, 1 skipped"),
        "{out}"
    );
    assert!(out.contains("1 skipped: expired"), "{out}");
    assert!(
        err.contains("warning: 1 account(s) at provider \"github\" skipped"),
        "{err}"
    );
    for secret in &secrets {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "token material printed"
        );
    }

    // An import interrupted half-way (here: before the last user was
    // written) is simply run again: it writes what is missing.
    match &store_schema {
        Some(schema) => {
            let mut conn = schema.connect().await;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(&ids[USERS - 1])
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => {
            use sqlx::Connection as _;
            let mut conn = sqlx::SqliteConnection::connect(&store_url).await.unwrap();
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(&ids[USERS - 1])
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let resumed = authgate(&["import", "authjs", "--from", &from, "--config", config]).await;
    let (out, err) = text(&resumed);
    assert!(resumed.status.success(), "{out}\n{err}");
    assert!(
        out.contains("users: 1 created, 2 already present, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("accounts: 1 created, 2 already present, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("sessions: 0 created, 2 already present, 1 skipped"),
        "{out}"
    );
    assert!(out.contains("imported: 2 rows created"), "{out}");

    // Again: nothing changes, and it says so.
    let second = authgate(&["import", "authjs", "--from", &from, "--config", config]).await;
    let (out, err) = text(&second);
    assert!(second.status.success(), "{out}\n{err}");
    assert!(
        out.contains("users: 0 created, 3 already present, 0 skipped"),
        "{out}"
    );
    assert!(
        out.contains("accounts: 0 created, 3 already present, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("sessions: 0 created, 2 already present, 1 skipped"),
        "{out}"
    );
    assert!(out.contains("nothing to do"), "{out}");

    // What the store holds: the same user ids, tokens encrypted at rest
    // with their expiry, written once (version 1).
    for (u, id) in users.iter().zip(&ids) {
        let user = store
            .find_user(&UserId::new(id))
            .await
            .unwrap()
            .expect("user kept its id");
        assert_eq!(
            user.email_verified.map(|t| t.as_secs()),
            Some(EMAIL_VERIFIED)
        );
        assert_eq!(
            user.email.as_deref(),
            Some(format!("{}@example.com", u.login).as_str())
        );
        let account = store
            .find_account_by_provider("op", &u.login)
            .await
            .unwrap()
            .expect("account imported");
        assert_eq!(account.user_id.as_str(), id);
        let stored = store.read_tokens(&account.id).await.unwrap().unwrap();
        assert_eq!(stored.version, 1);
        let tokens = stored.tokens.unwrap();
        assert_eq!(
            tokens.refresh_token.unwrap().expose(),
            u.grant.refresh_token.as_deref().unwrap()
        );
        assert_eq!(tokens.access_token.expose(), u.grant.access_token);
        assert_eq!(tokens.expires_at.map(|e| e.as_secs()), Some(u.expires_at));
        assert!(
            store
                .find_account_by_provider("github", "583231")
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_tokens_encrypted_at_rest(&store_url, store_schema.as_ref(), &secrets).await;
    drop(store);

    // The gateway on the imported store: a nightly job asks for each
    // user's token; every imported grant refreshes exactly once.
    let gw = start(reserved, &toml).await;
    for (u, id) in users.iter().zip(&ids) {
        let (status, answer) = offline_token(&gw.url, id).await;
        assert_eq!(status, 200, "{}: {answer}", u.login);
        assert_ne!(
            answer["access_token"].as_str().unwrap(),
            u.grant.access_token,
            "refreshed"
        );
        let (status, again) = offline_token(&gw.url, id).await;
        assert_eq!(status, 200);
        assert_eq!(
            again["access_token"], answer["access_token"],
            "no second refresh"
        );
    }

    // The browsers' Auth.js database-session cookies are accepted as they
    // are, for the same users; the expired one is no session.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (u, id) in users.iter().zip(&ids) {
        for token in &u.live_sessions {
            let r = client
                .get(gw.url.join("/auth/session").unwrap())
                .header("cookie", format!("{COOKIE_NAME}={token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let session: serde_json::Value = r.json().await.unwrap();
            assert_eq!(
                session["user"]["id"].as_str(),
                Some(id.as_str()),
                "{session}"
            );
            assert_eq!(
                session["provider"], "op",
                "tied to the user's one account: {session}"
            );
            assert!(session["error"].is_null(), "{session}");
        }
        if let Some(token) = &u.expired_session {
            let r = client
                .get(gw.url.join("/auth/session").unwrap())
                .header("cookie", format!("{COOKIE_NAME}={token}"))
                .send()
                .await
                .unwrap();
            let session: serde_json::Value = r.json().await.unwrap();
            assert!(
                session.is_null(),
                "expired Auth.js session accepted: {session}"
            );
        }
    }

    let stats = peer.stats().await;
    for u in &users {
        assert_eq!(
            stats.refresh_grants_by_account.get(&u.login).copied(),
            Some(1),
            "{}: exactly one refresh grant ({stats:?})",
            u.login
        );
    }
    assert_eq!(stats.refresh_grants, USERS as u64);
    assert!(stats.refresh_errors.is_empty(), "{stats:?}");
    assert_eq!(stats.grants_revoked, 0);
    drop(gw);
    for schema in [schema, store_schema].into_iter().flatten() {
        schema.drop_now().await;
    }
}

/// The store named by `toml`'s `[store]`, with its keys.
async fn open_store(toml: &str) -> Arc<dyn Store> {
    let config =
        authgate_config::Config::from_sources(Some(("test.toml", toml)), std::iter::empty())
            .unwrap();
    let keys = authgate::settings::key_ring(&config).unwrap();
    authgate_store::connect(config.store.url.as_str(), keys)
        .await
        .unwrap()
}

/// No token column of the store holds a token in clear.
async fn assert_tokens_encrypted_at_rest(
    store_url: &str,
    store_schema: Option<&PgSchema>,
    secrets: &[String],
) {
    use sqlx::{Connection as _, Row as _};
    const SQL: &str = "SELECT access_token, refresh_token, id_token FROM accounts";
    let values: Vec<Option<String>> = match store_schema {
        Some(schema) => {
            let mut conn = schema.connect().await;
            let rows = sqlx::query(SQL).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .flat_map(|r| (0..3).map(|c| r.try_get(c).unwrap()).collect::<Vec<_>>())
                .collect()
        }
        None => {
            let mut conn = sqlx::SqliteConnection::connect(store_url).await.unwrap();
            let rows = sqlx::query(SQL).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .flat_map(|r| (0..3).map(|c| r.try_get(c).unwrap()).collect::<Vec<_>>())
                .collect()
        }
    };
    assert_eq!(values.len(), 3 * USERS);
    for value in values.into_iter().flatten() {
        assert!(value.starts_with("v1."), "not encrypted");
        assert!(!secrets.iter().any(|s| value.contains(s.as_str())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drizzle_adapter_database_imports_into_a_postgres_store_once_refreshes_once_and_keeps_sessions()
 {
    // The production shape: authgate's store on PostgreSQL too.
    import_refresh_once_and_keep_sessions(Kind::Drizzle, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_adapter_database_imports_once_refreshes_once_and_keeps_sessions() {
    import_refresh_once_and_keep_sessions(Kind::PgAdapter, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prisma_postgres_database_imports_once_refreshes_once_and_keeps_sessions() {
    import_refresh_once_and_keep_sessions(Kind::PrismaPostgres, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prisma_sqlite_database_imports_once_refreshes_once_and_keeps_sessions() {
    import_refresh_once_and_keep_sessions(Kind::PrismaSqlite, false).await;
}

/// A configuration with a SQLite store in `dir`, for the error cases.
fn plain_config(dir: &Path) -> String {
    let toml = config_toml(
        &url::Url::parse("http://127.0.0.1:1").unwrap(),
        "http://127.0.0.1:2",
        &format!("sqlite://{}", dir.join("authgate.db").display()),
        "",
        "inline",
    );
    let path = dir.join("authgate.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_unrecognised_schema_is_refused_naming_the_table_or_column_expected() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let config = plain_config(dir.path());

    // Prisma-shaped, but `Account` lacks `providerAccountId`.
    let path = dir.path().join("almost.db");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
    let ddl = PRISMA_SQLITE_DDL
        .replace("\"providerAccountId\" TEXT NOT NULL,\n", "")
        .replace(
            r#"CREATE UNIQUE INDEX "Account_provider_providerAccountId_key" ON "Account"("provider", "providerAccountId");"#,
            "",
        );
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let from = format!("sqlite://{}", path.display());
    let out = authgate(&["import", "authjs", "--from", &from, "--config", &config]).await;
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{err}");
    assert!(
        err.contains(r#"table "Account" has no column "providerAccountId""#),
        "{err}"
    );

    // No Auth.js table at all.
    let path = dir.path().join("other.db");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
    sqlx::raw_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let from = format!("sqlite://{}", path.display());
    let out = authgate(&["import", "authjs", "--from", &from, "--config", &config]).await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains(r#"expected a table named "User" (Prisma), "user" (Drizzle) or "users" (@auth/pg-adapter)"#), "{err}");

    // Prisma-shaped without a `Session` table.
    let path = dir.path().join("nosessions.db");
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
    sqlx::raw_sql(PRISMA_SQLITE_DDL)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(r#"DROP TABLE "Session""#)
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let from = format!("sqlite://{}", path.display());
    let out = authgate(&["import", "authjs", "--from", &from, "--config", &config]).await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains(r#"expected a table named "Session" next to "User""#),
        "{err}"
    );

    // authgate's own store is not an Auth.js database.
    let migrate = authgate(&["migrate", "--config", &config]).await;
    assert!(migrate.status.success());
    let from = format!("sqlite://{}", dir.path().join("authgate.db").display());
    let out = authgate(&["import", "authjs", "--from", &from, "--config", &config]).await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("is an authgate store"), "{err}");

    // A source that does not exist is an error, not a new empty file.
    let missing = dir.path().join("missing.db");
    let from = format!("sqlite://{}", missing.display());
    let out = authgate(&["import", "authjs", "--from", &from, "--config", &config]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists());
}
