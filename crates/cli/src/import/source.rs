//! Reading an Auth.js database (PostgreSQL or SQLite) whose schema
//! [`super::schema::detect`] recognised. Timestamps are converted to epoch
//! seconds in SQL; ids to text (`@auth/pg-adapter` uses `SERIAL` ids).

use super::schema::{Detected, Tables};
use authgate_core::secret::Secret;
use sqlx::Row as _;
use std::str::FromStr as _;

/// Why the source database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The `--from` URL names neither PostgreSQL nor SQLite.
    #[error("unsupported --from url {0:?}: expected postgres://… or sqlite:…")]
    UnsupportedUrl(String),
    /// The database could not be opened or read.
    #[error("{0}")]
    Database(#[from] sqlx::Error),
}

/// Which backend the source is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// An open source database.
pub struct Source {
    pool: Pool,
}

enum Pool {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// A user row.
#[derive(Debug, Clone)]
pub struct SourceUser {
    /// `id`, as text.
    pub id: String,
    /// `name`.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `emailVerified`, epoch seconds.
    pub email_verified: Option<i64>,
    /// `image`.
    pub image: Option<String>,
}

/// An account row; the token columns as [`Secret`]s.
#[derive(Debug, Clone)]
pub struct SourceAccount {
    /// `id` as text, when the schema has one.
    pub id: Option<String>,
    /// `userId`, as text.
    pub user_id: String,
    /// `type`.
    pub kind: String,
    /// `provider`.
    pub provider: String,
    /// `providerAccountId`.
    pub provider_account_id: String,
    /// `access_token`.
    pub access_token: Option<Secret>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
    /// `id_token`.
    pub id_token: Option<Secret>,
    /// `expires_at`, epoch seconds.
    pub expires_at: Option<i64>,
    /// `token_type`.
    pub token_type: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `session_state`.
    pub session_state: Option<String>,
}

/// A database-session row.
#[derive(Debug, Clone)]
pub struct SourceSession {
    /// `userId`, as text.
    pub user_id: String,
    /// `sessionToken`: the browser's cookie value.
    pub token: Secret,
    /// `expires`, epoch seconds.
    pub expires: Option<i64>,
}

/// A table name quoted for SQL (the names come from [`super::schema`]'s
/// constants, never from input).
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

impl Source {
    /// Opens `url` (`postgres://…`, `postgresql://…` or `sqlite:…`; a SQLite
    /// file is opened read-only and must exist).
    pub async fn open(url: &str) -> Result<Self, SourceError> {
        let pool = match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("postgres" | "postgresql") => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)?
                    .application_name("authgate-import");
                Pool::Postgres(
                    sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await?,
                )
            }
            Some("sqlite") => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                    .read_only(true)
                    .create_if_missing(false);
                Pool::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await?,
                )
            }
            _ => return Err(SourceError::UnsupportedUrl(redacted(url))),
        };
        Ok(Self { pool })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The tables of the current schema (PostgreSQL: `current_schema()`,
    /// so a `search_path` in the URL chooses it) and their columns.
    pub async fn tables(&self) -> Result<Tables, SourceError> {
        let sql = match self.pool {
            Pool::Postgres(_) => {
                "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c
                 FROM information_schema.columns WHERE table_schema = current_schema()"
            }
            Pool::Sqlite(_) => {
                "SELECT m.name AS t, p.name AS c
                 FROM sqlite_master AS m, pragma_table_info(m.name) AS p
                 WHERE m.type = 'table'"
            }
        };
        let pairs = self
            .fetch(sql.to_owned(), |row| Ok((row.take(0)?, row.take(1)?)))
            .await?;
        let mut tables = Tables::new();
        for (table, column) in pairs {
            tables.entry(table).or_default().insert(column);
        }
        Ok(tables)
    }

    /// An expression for a timestamp column as epoch seconds (BIGINT).
    /// PostgreSQL: `timestamp` / `timestamptz`. SQLite: Prisma's integer
    /// milliseconds, integer seconds, or ISO-8601 text.
    fn epoch(&self, column: &str) -> String {
        match self.pool {
            Pool::Postgres(_) => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
            Pool::Sqlite(_) => format!(
                "CASE typeof({column})
                   WHEN 'integer' THEN CASE WHEN {column} > 100000000000
                                            THEN {column} / 1000 ELSE {column} END
                   WHEN 'real' THEN CAST(CASE WHEN {column} > 100000000000
                                            THEN {column} / 1000 ELSE {column} END AS INTEGER)
                   WHEN 'text' THEN unixepoch({column})
                 END"
            ),
        }
    }

    /// Every user.
    pub async fn users(&self, schema: Detected) -> Result<Vec<SourceUser>, SourceError> {
        let sql = format!(
            r#"SELECT CAST(id AS TEXT), name, email, {}, image FROM {} ORDER BY 1"#,
            self.epoch(r#""emailVerified""#),
            quoted(schema.flavor.users())
        );
        self.fetch(sql, |row| {
            Ok(SourceUser {
                id: row.take(0)?,
                name: row.take(1)?,
                email: row.take(2)?,
                email_verified: row.take(3)?,
                image: row.take(4)?,
            })
        })
        .await
    }

    /// Every account.
    pub async fn accounts(&self, schema: Detected) -> Result<Vec<SourceAccount>, SourceError> {
        let id = if schema.account_ids {
            "CAST(id AS TEXT)"
        } else {
            "CAST(NULL AS TEXT)"
        };
        let sql = format!(
            r#"SELECT {id}, CAST("userId" AS TEXT), type, provider, "providerAccountId",
                      access_token, refresh_token, id_token, CAST(expires_at AS BIGINT),
                      token_type, scope, session_state
               FROM {} ORDER BY 2, 4, 5"#,
            quoted(schema.flavor.accounts())
        );
        self.fetch(sql, |row| {
            let secret = |v: Option<String>| v.map(Secret::new);
            Ok(SourceAccount {
                id: row.take(0)?,
                user_id: row.take(1)?,
                kind: row.take(2)?,
                provider: row.take(3)?,
                provider_account_id: row.take(4)?,
                access_token: secret(row.take(5)?),
                refresh_token: secret(row.take(6)?),
                id_token: secret(row.take(7)?),
                expires_at: row.take(8)?,
                token_type: row.take(9)?,
                scope: row.take(10)?,
                session_state: row.take(11)?,
            })
        })
        .await
    }

    /// Every database session.
    pub async fn sessions(&self, schema: Detected) -> Result<Vec<SourceSession>, SourceError> {
        let sql = format!(
            r#"SELECT CAST("userId" AS TEXT), "sessionToken", {} FROM {} ORDER BY 1"#,
            self.epoch("expires"),
            quoted(schema.flavor.sessions())
        );
        self.fetch(sql, |row| {
            Ok(SourceSession {
                user_id: row.take(0)?,
                token: Secret::new(row.take::<String>(1)?),
                expires: row.take(2)?,
            })
        })
        .await
    }

    /// Runs `sql` (built from constants) and maps every row.
    async fn fetch<T>(
        &self,
        sql: String,
        map: impl Fn(AnyRow<'_>) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, SourceError> {
        let out = match &self.pool {
            Pool::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| map(AnyRow(RowRef::Postgres(r))))
                .collect::<Result<Vec<_>, _>>()?,
            Pool::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| map(AnyRow(RowRef::Sqlite(r))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(out)
    }
}

/// A row of either backend, read by position.
pub struct AnyRow<'r>(RowRef<'r>);

enum RowRef<'r> {
    Postgres(&'r sqlx::postgres::PgRow),
    Sqlite(&'r sqlx::sqlite::SqliteRow),
}

/// What a column can be read as (text or integer, possibly NULL).
pub trait Column:
    for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
{
}

impl AnyRow<'_> {
    /// Column `index`, decoded.
    fn take<T: Column>(&self, index: usize) -> Result<T, sqlx::Error> {
        match self.0 {
            RowRef::Postgres(row) => row.try_get(index),
            RowRef::Sqlite(row) => row.try_get(index),
        }
    }
}

/// `url` without a password, for messages.
pub fn redacted(url: &str) -> String {
    authgate_config::ServiceUrl::new(url).redacted()
}
