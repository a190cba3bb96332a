//! The SQL implementation shared by both backends.
//!
//! SQLite and PostgreSQL run the same statements (both accept `$n`
//! placeholders, `RETURNING`, and quoted camel-case column names), so the
//! trait implementations are written once, in [`impl_sql_store!`], and
//! instantiated for `SqlStore<Sqlite>` and `SqlStore<Postgres>`. Only
//! connecting and the migration directories differ (see `sqlite.rs`,
//! `postgres.rs`).

use crate::crypto::KeyRing;
use crate::error::StoreError;
use crate::model::AccountId;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;

/// A store backed by a SQL database through an sqlx pool.
///
/// Use the aliases [`crate::SqliteStore`] and [`crate::PostgresStore`].
pub struct SqlStore<DB: sqlx::Database> {
    pub(crate) pool: sqlx::Pool<DB>,
    pub(crate) keys: KeyRing,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Wraps an existing pool. Call [`crate::Store::migrate`] before use.
    pub fn from_pool(pool: sqlx::Pool<DB>, keys: KeyRing) -> Self {
        Self { pool, keys }
    }

    /// The connection pool (for health checks and administration).
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }

    /// The key ring tokens are encrypted with.
    pub fn key_ring(&self) -> &KeyRing {
        &self.keys
    }
}

/// Names of the encrypted token columns, used in the AAD.
pub(crate) const ACCESS_TOKEN: &str = "access_token";
pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
pub(crate) const ID_TOKEN: &str = "id_token";

/// Associated data binding an encrypted value to its account row and column.
pub(crate) fn token_aad(account: &AccountId, column: &str) -> Vec<u8> {
    format!("authgate/accounts/{}/{column}", account.as_str()).into_bytes()
}

/// A token set as stored: credentials encrypted, the rest as is.
pub(crate) struct EncryptedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

fn encrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: &Secret,
) -> Result<String, StoreError> {
    keys.encrypt_str(value.expose(), &token_aad(account, column))
        .map_err(StoreError::Encrypt)
}

pub(crate) fn decrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: &str,
) -> Result<Secret, StoreError> {
    keys.decrypt_str(value, &token_aad(account, column))
        .map(Secret::new)
        .map_err(|source| StoreError::Decrypt {
            account: account.clone(),
            column,
            source,
        })
}

pub(crate) fn encrypt_tokens(
    keys: &KeyRing,
    account: &AccountId,
    tokens: &TokenSet,
) -> Result<EncryptedTokens, StoreError> {
    Ok(EncryptedTokens {
        access_token: encrypt_column(keys, account, ACCESS_TOKEN, &tokens.access_token)?,
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| encrypt_column(keys, account, REFRESH_TOKEN, t))
            .transpose()?,
        id_token: tokens
            .id_token
            .as_ref()
            .map(|t| encrypt_column(keys, account, ID_TOKEN, t))
            .transpose()?,
        expires_at: tokens.expires_at.map(UnixTime::as_secs),
        token_type: tokens.token_type.clone(),
        scope: tokens.scope.clone(),
    })
}

/// The token columns of one account row, as read.
pub(crate) struct StoredTokenColumns {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_at: Option<i64>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

pub(crate) fn decrypt_tokens(
    keys: &KeyRing,
    account: &AccountId,
    columns: StoredTokenColumns,
) -> Result<Option<TokenSet>, StoreError> {
    let Some(access) = columns.access_token else {
        return Ok(None);
    };
    let decrypt_opt = |column, value: Option<String>| {
        value
            .map(|v| decrypt_column(keys, account, column, &v))
            .transpose()
    };
    Ok(Some(TokenSet {
        access_token: decrypt_column(keys, account, ACCESS_TOKEN, &access)?,
        refresh_token: decrypt_opt(REFRESH_TOKEN, columns.refresh_token)?,
        id_token: decrypt_opt(ID_TOKEN, columns.id_token)?,
        expires_at: columns.expires_at.map(UnixTime::from_secs),
        token_type: columns.token_type,
        scope: columns.scope,
    }))
}

/// Re-encrypts one optional column under the newest key when it is not
/// already; `Ok(None)` for a missing value.
pub(crate) fn reencrypt_column(
    keys: &KeyRing,
    account: &AccountId,
    column: &'static str,
    value: Option<String>,
) -> Result<Option<String>, StoreError> {
    match value {
        None => Ok(None),
        Some(v) if !keys.needs_reencryption(&v) => Ok(Some(v)),
        Some(v) => {
            let plain = decrypt_column(keys, account, column, &v)?;
            encrypt_column(keys, account, column, &plain).map(Some)
        }
    }
}

/// Seconds of a `Duration` as the `i64` the columns use (saturating).
pub(crate) fn secs_i64(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Columns of `accounts` that make up an [`crate::Account`].
macro_rules! account_columns {
    () => {
        r#"id, "userId", type, provider, "providerAccountId", session_state, revoked_at"#
    };
}
pub(crate) use account_columns;

/// Implements every store trait for `SqlStore<$db>`.
macro_rules! impl_sql_store {
    ($db:ty, $backend:expr, $migrator:expr) => {
        use $crate::sql::{
            ACCESS_TOKEN, ID_TOKEN, REFRESH_TOKEN, SqlStore, StoredTokenColumns, account_columns,
            decrypt_tokens, encrypt_tokens, reencrypt_column, secs_i64,
        };
        use $crate::{
            Account, AccountId, AccountStore, Backend, CreatedSession, NewAccount, NewUser,
            RefreshLease, RefreshLeaseStore, ReplaceOutcome, Session, SessionExpiry, SessionStore,
            Store, StoreError, TokenStore, User, UserId, UserStore, VersionedTokens,
            generate_session_token, session_token_hash,
        };
        use async_trait::async_trait;
        use authgate_core::secret::Secret;
        use authgate_core::time::UnixTime;
        use authgate_core::token::TokenSet;
        use sqlx::Row as _;

        type DbRow = <$db as sqlx::Database>::Row;

        fn user_from_row(row: &DbRow) -> Result<User, StoreError> {
            Ok(User {
                id: UserId::new(row.try_get::<String, _>("id")?),
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                email_verified: row
                    .try_get::<Option<i64>, _>("emailVerified")?
                    .map(UnixTime::from_secs),
                image: row.try_get("image")?,
            })
        }

        fn account_from_row(row: &DbRow) -> Result<Account, StoreError> {
            Ok(Account {
                id: AccountId::new(row.try_get::<String, _>("id")?),
                user_id: UserId::new(row.try_get::<String, _>("userId")?),
                kind: row.try_get("type")?,
                provider: row.try_get("provider")?,
                provider_account_id: row.try_get("providerAccountId")?,
                session_state: row.try_get("session_state")?,
                revoked_at: row
                    .try_get::<Option<i64>, _>("revoked_at")?
                    .map(UnixTime::from_secs),
            })
        }

        fn session_from_row(row: &DbRow) -> Result<Session, StoreError> {
            Ok(Session {
                user_id: UserId::new(row.try_get::<String, _>("userId")?),
                account_id: row
                    .try_get::<Option<String>, _>("accountId")?
                    .map(AccountId::new),
                expires: UnixTime::from_secs(row.try_get("expires")?),
                updated_at: UnixTime::from_secs(row.try_get("updated_at")?),
            })
        }

        impl SqlStore<$db> {
            /// The version of an account after a failed compare-and-swap.
            async fn lost_race_or_missing(
                &self,
                account: &AccountId,
            ) -> Result<ReplaceOutcome, StoreError> {
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM accounts WHERE id = $1")
                        .bind(account.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                match current {
                    Some(current_version) => Ok(ReplaceOutcome::LostRace { current_version }),
                    None => Err(StoreError::AccountNotFound(account.clone())),
                }
            }
        }

        #[async_trait]
        impl UserStore for SqlStore<$db> {
            async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
                let id = UserId::generate();
                sqlx::query(
                    r#"INSERT INTO users (id, name, email, "emailVerified", image)
                       VALUES ($1, $2, $3, $4, $5)"#,
                )
                .bind(id.as_str())
                .bind(user.name.as_deref())
                .bind(user.email.as_deref())
                .bind(user.email_verified.map(UnixTime::as_secs))
                .bind(user.image.as_deref())
                .execute(&self.pool)
                .await?;
                Ok(User {
                    id,
                    name: user.name,
                    email: user.email,
                    email_verified: user.email_verified,
                    image: user.image,
                })
            }

            async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
                sqlx::query(
                    r#"SELECT id, name, email, "emailVerified", image FROM users WHERE id = $1"#,
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(user_from_row)
                .transpose()
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
                sqlx::query(
                    r#"SELECT id, name, email, "emailVerified", image FROM users WHERE email = $1"#,
                )
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(user_from_row)
                .transpose()
            }

            async fn update_user_profile(&self, id: &UserId, profile: NewUser) -> Result<User, StoreError> {
                sqlx::query(
                    r#"UPDATE users SET name = $2, email = $3, "emailVerified" = $4, image = $5
                       WHERE id = $1
                       RETURNING id, name, email, "emailVerified", image"#,
                )
                .bind(id.as_str())
                .bind(profile.name.as_deref())
                .bind(profile.email.as_deref())
                .bind(profile.email_verified.map(UnixTime::as_secs))
                .bind(profile.image.as_deref())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(user_from_row)
                .transpose()?
                .ok_or(StoreError::UserNotFound)
            }
        }

        #[async_trait]
        impl AccountStore for SqlStore<$db> {
            async fn link_account(&self, account: NewAccount) -> Result<Account, StoreError> {
                let id = AccountId::generate();
                let enc = encrypt_tokens(&self.keys, &id, &account.tokens)?;
                sqlx::query(
                    r#"INSERT INTO accounts (id, "userId", type, provider, "providerAccountId",
                           access_token, refresh_token, id_token, expires_at, token_type, scope,
                           session_state, version)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)"#,
                )
                .bind(id.as_str())
                .bind(account.user_id.as_str())
                .bind(account.kind.as_str())
                .bind(account.provider.as_str())
                .bind(account.provider_account_id.as_str())
                .bind(enc.access_token)
                .bind(enc.refresh_token)
                .bind(enc.id_token)
                .bind(enc.expires_at)
                .bind(enc.token_type)
                .bind(enc.scope)
                .bind(account.session_state.as_deref())
                .execute(&self.pool)
                .await?;
                Ok(Account {
                    id,
                    user_id: account.user_id,
                    kind: account.kind,
                    provider: account.provider,
                    provider_account_id: account.provider_account_id,
                    session_state: account.session_state,
                    revoked_at: None,
                })
            }

            async fn find_account(&self, id: &AccountId) -> Result<Option<Account>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    account_columns!(),
                    " FROM accounts WHERE id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(account_from_row)
                .transpose()
            }

            async fn find_account_by_provider(
                &self,
                provider: &str,
                provider_account_id: &str,
            ) -> Result<Option<Account>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    account_columns!(),
                    r#" FROM accounts WHERE provider = $1 AND "providerAccountId" = $2"#
                ))
                .bind(provider)
                .bind(provider_account_id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(account_from_row)
                .transpose()
            }

            async fn list_accounts_for_user(
                &self,
                user: &UserId,
            ) -> Result<Vec<Account>, StoreError> {
                sqlx::query(concat!(
                    "SELECT ",
                    account_columns!(),
                    r#" FROM accounts WHERE "userId" = $1 ORDER BY provider, "providerAccountId""#
                ))
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(account_from_row)
                .collect()
            }
        }

        #[async_trait]
        impl TokenStore for SqlStore<$db> {
            async fn read_tokens(
                &self,
                account: &AccountId,
            ) -> Result<Option<VersionedTokens>, StoreError> {
                let Some(row) = sqlx::query(
                    "SELECT access_token, refresh_token, id_token, expires_at, token_type, scope,
                            version, revoked_at
                     FROM accounts WHERE id = $1",
                )
                .bind(account.as_str())
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                let columns = StoredTokenColumns {
                    access_token: row.try_get(ACCESS_TOKEN)?,
                    refresh_token: row.try_get(REFRESH_TOKEN)?,
                    id_token: row.try_get(ID_TOKEN)?,
                    expires_at: row.try_get("expires_at")?,
                    token_type: row.try_get("token_type")?,
                    scope: row.try_get("scope")?,
                };
                Ok(Some(VersionedTokens {
                    tokens: decrypt_tokens(&self.keys, account, columns)?,
                    version: row.try_get("version")?,
                    revoked_at: row
                        .try_get::<Option<i64>, _>("revoked_at")?
                        .map(UnixTime::from_secs),
                }))
            }

            async fn replace_tokens(
                &self,
                account: &AccountId,
                expected_version: i64,
                tokens: &TokenSet,
                release_lease_of: Option<&str>,
            ) -> Result<ReplaceOutcome, StoreError> {
                let enc = encrypt_tokens(&self.keys, account, tokens)?;
                let new_version: Option<i64> = sqlx::query_scalar(
                    "UPDATE accounts SET
                        access_token = $3, refresh_token = $4, id_token = $5,
                        expires_at = $6, token_type = $7, scope = $8,
                        revoked_at = NULL, version = version + 1,
                        refresh_lease_owner = CASE WHEN refresh_lease_owner = $9
                            THEN NULL ELSE refresh_lease_owner END,
                        refresh_lease_until = CASE WHEN refresh_lease_owner = $9
                            THEN NULL ELSE refresh_lease_until END
                     WHERE id = $1 AND version = $2
                     RETURNING version",
                )
                .bind(account.as_str())
                .bind(expected_version)
                .bind(enc.access_token)
                .bind(enc.refresh_token)
                .bind(enc.id_token)
                .bind(enc.expires_at)
                .bind(enc.token_type)
                .bind(enc.scope)
                .bind(release_lease_of)
                .fetch_optional(&self.pool)
                .await?;
                match new_version {
                    Some(new_version) => Ok(ReplaceOutcome::Replaced { new_version }),
                    None => self.lost_race_or_missing(account).await,
                }
            }

            async fn mark_grant_revoked(
                &self,
                account: &AccountId,
                expected_version: i64,
                now: UnixTime,
                release_lease_of: Option<&str>,
            ) -> Result<ReplaceOutcome, StoreError> {
                let new_version: Option<i64> = sqlx::query_scalar(
                    "UPDATE accounts SET
                        access_token = NULL, refresh_token = NULL, id_token = NULL,
                        expires_at = NULL, revoked_at = $3, version = version + 1,
                        refresh_lease_owner = CASE WHEN refresh_lease_owner = $4
                            THEN NULL ELSE refresh_lease_owner END,
                        refresh_lease_until = CASE WHEN refresh_lease_owner = $4
                            THEN NULL ELSE refresh_lease_until END
                     WHERE id = $1 AND version = $2
                     RETURNING version",
                )
                .bind(account.as_str())
                .bind(expected_version)
                .bind(now.as_secs())
                .bind(release_lease_of)
                .fetch_optional(&self.pool)
                .await?;
                match new_version {
                    Some(new_version) => Ok(ReplaceOutcome::Replaced { new_version }),
                    None => self.lost_race_or_missing(account).await,
                }
            }
        }

        #[async_trait]
        impl RefreshLeaseStore for SqlStore<$db> {
            async fn try_claim_refresh_lease(
                &self,
                account: &AccountId,
                owner: &str,
                now: UnixTime,
                until: UnixTime,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE accounts SET refresh_lease_owner = $2, refresh_lease_until = $4
                     WHERE id = $1 AND (refresh_lease_owner IS NULL
                         OR refresh_lease_until IS NULL
                         OR refresh_lease_until <= $3
                         OR refresh_lease_owner = $2)",
                )
                .bind(account.as_str())
                .bind(owner)
                .bind(now.as_secs())
                .bind(until.as_secs())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn renew_refresh_lease(
                &self,
                account: &AccountId,
                owner: &str,
                until: UnixTime,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE accounts SET refresh_lease_until = $3
                     WHERE id = $1 AND refresh_lease_owner = $2",
                )
                .bind(account.as_str())
                .bind(owner)
                .bind(until.as_secs())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_refresh_lease(
                &self,
                account: &AccountId,
                owner: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE accounts SET refresh_lease_owner = NULL, refresh_lease_until = NULL
                     WHERE id = $1 AND refresh_lease_owner = $2",
                )
                .bind(account.as_str())
                .bind(owner)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn read_refresh_lease(
                &self,
                account: &AccountId,
            ) -> Result<Option<RefreshLease>, StoreError> {
                let row = sqlx::query(
                    "SELECT refresh_lease_owner, refresh_lease_until FROM accounts WHERE id = $1",
                )
                .bind(account.as_str())
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else {
                    return Err(StoreError::AccountNotFound(account.clone()));
                };
                let owner: Option<String> = row.try_get("refresh_lease_owner")?;
                let until: Option<i64> = row.try_get("refresh_lease_until")?;
                Ok(owner.zip(until).map(|(owner, until)| RefreshLease {
                    owner,
                    until: UnixTime::from_secs(until),
                }))
            }
        }

        #[async_trait]
        impl SessionStore for SqlStore<$db> {
            async fn create_session(
                &self,
                user: &UserId,
                account: Option<&AccountId>,
                now: UnixTime,
                expires: UnixTime,
            ) -> Result<CreatedSession, StoreError> {
                let token = generate_session_token();
                sqlx::query(
                    r#"INSERT INTO sessions ("sessionToken", "userId", "accountId", expires, updated_at)
                       VALUES ($1, $2, $5, $3, $4)"#,
                )
                .bind(session_token_hash(&token))
                .bind(user.as_str())
                .bind(expires.as_secs())
                .bind(now.as_secs())
                .bind(account.map(AccountId::as_str))
                .execute(&self.pool)
                .await?;
                Ok(CreatedSession {
                    token,
                    session: Session {
                        user_id: user.clone(),
                        account_id: account.cloned(),
                        expires,
                        updated_at: now,
                    },
                })
            }

            async fn find_session(
                &self,
                token: &Secret,
                now: UnixTime,
            ) -> Result<Option<Session>, StoreError> {
                sqlx::query(
                    r#"SELECT "userId", "accountId", expires, updated_at FROM sessions
                       WHERE "sessionToken" = $1 AND expires > $2"#,
                )
                .bind(session_token_hash(token))
                .bind(now.as_secs())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(session_from_row)
                .transpose()
            }

            async fn touch_session(
                &self,
                token: &Secret,
                now: UnixTime,
                expiry: SessionExpiry,
            ) -> Result<Option<Session>, StoreError> {
                let extended = sqlx::query(
                    r#"UPDATE sessions SET expires = $3, updated_at = $2
                       WHERE "sessionToken" = $1 AND expires > $2 AND updated_at <= $4
                       RETURNING "userId", "accountId", expires, updated_at"#,
                )
                .bind(session_token_hash(token))
                .bind(now.as_secs())
                .bind(now.saturating_add(expiry.max_age).as_secs())
                .bind(now.as_secs().saturating_sub(secs_i64(expiry.update_age)))
                .fetch_optional(&self.pool)
                .await?;
                match extended {
                    Some(row) => session_from_row(&row).map(Some),
                    // Not due for an extension, or gone: a plain lookup tells which.
                    None => self.find_session(token, now).await,
                }
            }

            async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError> {
                let done = sqlx::query(r#"DELETE FROM sessions WHERE "sessionToken" = $1"#)
                    .bind(session_token_hash(token))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires <= $1")
                    .bind(now.as_secs())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl Store for SqlStore<$db> {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn reencrypt_all(&self) -> Result<u64, StoreError> {
                const PAGE: i64 = 200;
                let mut rewritten = 0;
                let mut after = String::new();
                loop {
                    let rows = sqlx::query(
                        "SELECT id, version, access_token, refresh_token, id_token
                         FROM accounts WHERE id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(after.as_str())
                    .bind(PAGE)
                    .fetch_all(&self.pool)
                    .await?;
                    let Some(last) = rows.last() else {
                        return Ok(rewritten);
                    };
                    after = last.try_get("id")?;
                    for row in &rows {
                        let account = AccountId::new(row.try_get::<String, _>("id")?);
                        let version: i64 = row.try_get("version")?;
                        let current: [Option<String>; 3] = [
                            row.try_get(ACCESS_TOKEN)?,
                            row.try_get(REFRESH_TOKEN)?,
                            row.try_get(ID_TOKEN)?,
                        ];
                        if !current
                            .iter()
                            .flatten()
                            .any(|v| self.keys.needs_reencryption(v))
                        {
                            continue;
                        }
                        let [access, refresh, id] = current;
                        let access = reencrypt_column(&self.keys, &account, ACCESS_TOKEN, access)?;
                        let refresh =
                            reencrypt_column(&self.keys, &account, REFRESH_TOKEN, refresh)?;
                        let id = reencrypt_column(&self.keys, &account, ID_TOKEN, id)?;
                        // Guarded by the version: a concurrent token write wins
                        // (and already used the newest key).
                        let done = sqlx::query(
                            "UPDATE accounts SET access_token = $3, refresh_token = $4,
                                 id_token = $5
                             WHERE id = $1 AND version = $2",
                        )
                        .bind(account.as_str())
                        .bind(version)
                        .bind(access)
                        .bind(refresh)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                        rewritten += done.rows_affected();
                    }
                    if rows.len() < PAGE as usize {
                        return Ok(rewritten);
                    }
                }
            }
        }
    };
}
pub(crate) use impl_sql_store;
