//! Rows brought over from another system (`authgate import authjs`), each
//! written with one insert-if-absent statement (`ON CONFLICT DO NOTHING`,
//! which SQLite and PostgreSQL both accept), a batch per transaction, so an
//! import can be repeated or resumed after an interruption.

use super::columns::encrypt_tokens;
use super::{Dialect, SqlStore};
use crate::error::StoreError;
use crate::model::{AccountId, Imported, ImportedAccount, ImportedSession, SessionId, User};
use crate::traits::ImportStore;
use async_trait::async_trait;
use authgate_core::time::UnixTime;
use sqlx::Row as _;

#[async_trait]
impl<DB> ImportStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<&'r str>: sqlx::Encode<'r, DB>,
    for<'r> Option<String>: sqlx::Encode<'r, DB>,
    for<'r> Option<i64>: sqlx::Encode<'r, DB>,
    DB::Connection: sqlx::migrate::Migrate,
{
    async fn import_users(&self, users: &[User]) -> Result<Vec<Imported>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            let done = sqlx::query(
                r#"INSERT INTO users (id, name, email, "emailVerified", image)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT DO NOTHING"#,
            )
            .bind(user.id.as_str())
            .bind(user.name.as_deref())
            .bind(user.email.as_deref())
            .bind(user.email_verified.map(UnixTime::as_secs))
            .bind(user.image.as_deref())
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) > 0 {
                out.push(Imported::Created);
                continue;
            }
            let exists = sqlx::query("SELECT id FROM users WHERE id = $1")
                .bind(user.id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            out.push(if exists {
                Imported::AlreadyPresent
            } else {
                Imported::Conflict("another user has this e-mail address")
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn import_accounts(
        &self,
        accounts: &[ImportedAccount],
    ) -> Result<Vec<(Imported, AccountId)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            let enc = account
                .tokens
                .as_ref()
                .map(|tokens| encrypt_tokens(&self.keys, &account.id, tokens))
                .transpose()?;
            let done = sqlx::query(
                r#"INSERT INTO accounts (id, "userId", type, provider, "providerAccountId",
                       access_token, refresh_token, id_token, expires_at, token_type, scope,
                       session_state, version)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
                   ON CONFLICT DO NOTHING"#,
            )
            .bind(account.id.as_str())
            .bind(account.user_id.as_str())
            .bind(account.kind.as_str())
            .bind(account.provider.as_str())
            .bind(account.provider_account_id.as_str())
            .bind(enc.as_ref().map(|e| e.access_token.clone()))
            .bind(enc.as_ref().and_then(|e| e.refresh_token.clone()))
            .bind(enc.as_ref().and_then(|e| e.id_token.clone()))
            .bind(enc.as_ref().and_then(|e| e.expires_at))
            .bind(enc.as_ref().and_then(|e| e.token_type.clone()))
            .bind(enc.as_ref().and_then(|e| e.scope.clone()))
            .bind(account.session_state.as_deref())
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) > 0 {
                out.push((Imported::Created, account.id.clone()));
                continue;
            }
            let rows = sqlx::query(
                r#"SELECT id, "userId", provider, "providerAccountId" FROM accounts
                   WHERE id = $1 OR (provider = $2 AND "providerAccountId" = $3)"#,
            )
            .bind(account.id.as_str())
            .bind(account.provider.as_str())
            .bind(account.provider_account_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let mut outcome = Imported::Conflict("the account changed during the import");
            let mut id = account.id.clone();
            for row in &rows {
                let user: String = row.try_get("userId")?;
                let provider: String = row.try_get("provider")?;
                let subject: String = row.try_get("providerAccountId")?;
                if provider != account.provider || subject != account.provider_account_id {
                    outcome = Imported::Conflict("another account has this id");
                    break;
                }
                if user != account.user_id.as_str() {
                    outcome = Imported::Conflict("this provider account is linked to another user");
                    break;
                }
                outcome = Imported::AlreadyPresent;
                id = AccountId::new(row.try_get::<String, _>("id")?);
            }
            out.push((outcome, id));
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn import_sessions(
        &self,
        sessions: &[ImportedSession],
    ) -> Result<Vec<Imported>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(sessions.len());
        for session in sessions {
            let id = SessionId::generate();
            let done = sqlx::query(
                r#"INSERT INTO sessions (id, "sessionToken", "userId", "accountId", expires,
                       updated_at, created_at, last_seen_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $6, $6)
                   ON CONFLICT DO NOTHING"#,
            )
            .bind(id.as_str())
            .bind(session.token_hash.as_str())
            .bind(session.user_id.as_str())
            .bind(session.account_id.as_ref().map(AccountId::as_str))
            .bind(session.expires.as_secs())
            .bind(session.now.as_secs())
            .execute(&mut *tx)
            .await?;
            // The id is fresh and random: only the token hash can have collided.
            out.push(if DB::rows_affected(&done) > 0 {
                Imported::Created
            } else {
                Imported::AlreadyPresent
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn session_token_exists(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query(r#"SELECT id FROM sessions WHERE "sessionToken" = $1"#)
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}
