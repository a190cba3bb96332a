//! The whole-store operations: migrations and re-encryption under the
//! newest key.

use super::columns::{ACCESS_TOKEN, ID_TOKEN, REFRESH_TOKEN, reencrypt_column};
use super::{Dialect, SqlStore};
use crate::error::StoreError;
use crate::model::AccountId;
use crate::traits::{Backend, Store};
use async_trait::async_trait;
use sqlx::Row as _;

/// Accounts re-encrypted per round trip.
const REENCRYPT_PAGE: i64 = 200;

#[async_trait]
impl<DB> Store for SqlStore<DB>
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
    fn backend(&self) -> Backend {
        DB::BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        DB::migrator().run(&self.pool).await?;
        Ok(())
    }

    async fn reencrypt_all(&self) -> Result<u64, StoreError> {
        let mut rewritten = 0;
        let mut after = String::new();
        loop {
            let rows = sqlx::query(
                "SELECT id, version, access_token, refresh_token, id_token
                 FROM accounts WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after.as_str())
            .bind(REENCRYPT_PAGE)
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
                let refresh = reencrypt_column(&self.keys, &account, REFRESH_TOKEN, refresh)?;
                let id = reencrypt_column(&self.keys, &account, ID_TOKEN, id)?;
                // Guarded by the version: a concurrent token write wins (and
                // already used the newest key).
                let done = sqlx::query(
                    "UPDATE accounts SET access_token = $3, refresh_token = $4, id_token = $5
                     WHERE id = $1 AND version = $2",
                )
                .bind(account.as_str())
                .bind(version)
                .bind(access)
                .bind(refresh)
                .bind(id)
                .execute(&self.pool)
                .await?;
                rewritten += DB::rows_affected(&done);
            }
            if rows.len() < REENCRYPT_PAGE as usize {
                return Ok(rewritten);
            }
        }
    }
}
