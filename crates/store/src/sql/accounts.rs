//! Users and provider accounts (Auth.js `users`, `accounts`).

use super::columns::encrypt_tokens;
use super::{Dialect, SqlStore};
use crate::error::StoreError;
use crate::model::{Account, AccountId, NewAccount, NewUser, User, UserId};
use crate::traits::{AccountStore, UserStore};
use async_trait::async_trait;
use authgate_core::time::UnixTime;

/// Columns of `users` that make up a [`User`].
const USER_COLUMNS: &str = r#"id, name, email, "emailVerified", image"#;

/// Columns of `accounts` that make up an [`Account`].
const ACCOUNT_COLUMNS: &str =
    r#"id, "userId", type, provider, "providerAccountId", session_state, revoked_at"#;

fn user_from_row<R: sqlx::Row>(row: &R) -> Result<User, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
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

fn account_from_row<R: sqlx::Row>(row: &R) -> Result<Account, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
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

#[async_trait]
impl<DB> UserStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<&'r str>: sqlx::Encode<'r, DB>,
    for<'r> Option<String>: sqlx::Encode<'r, DB>,
    for<'r> Option<i64>: sqlx::Encode<'r, DB>,
{
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
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn update_user_profile(&self, id: &UserId, profile: NewUser) -> Result<User, StoreError> {
        let sql = format!(
            r#"UPDATE users SET name = $2, email = $3, "emailVerified" = $4, image = $5
               WHERE id = $1
               RETURNING {USER_COLUMNS}"#
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
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
impl<DB> AccountStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<&'r str>: sqlx::Encode<'r, DB>,
    for<'r> Option<String>: sqlx::Encode<'r, DB>,
    for<'r> Option<i64>: sqlx::Encode<'r, DB>,
{
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
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
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
        let sql = format!(
            r#"SELECT {ACCOUNT_COLUMNS} FROM accounts
               WHERE provider = $1 AND "providerAccountId" = $2"#
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(provider)
            .bind(provider_account_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn list_accounts_for_user(&self, user: &UserId) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            r#"SELECT {ACCOUNT_COLUMNS} FROM accounts
               WHERE "userId" = $1 ORDER BY provider, "providerAccountId""#
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }
}
