//! Provider tokens (compare-and-swap on `accounts.version`) and the refresh
//! lease on the account row, judged by the database's clock.

use super::columns::{
    ACCESS_TOKEN, ID_TOKEN, REFRESH_TOKEN, StoredTokenColumns, decrypt_tokens, encrypt_tokens,
};
use super::{Dialect, SqlStore, millis, millis_i64, with_clock};
use crate::error::StoreError;
use crate::model::{AccountId, HeldLease, RefreshLease, ReplaceOutcome, VersionedTokens};
use crate::traits::{RefreshLeaseStore, TokenStore};
use async_trait::async_trait;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use sqlx::Row as _;
use std::time::Duration;

/// Sets `refresh_lease_until` to `$3` milliseconds from the database's now,
/// rounded up to whole seconds (the column's unit).
const LEASE_UNTIL: &str = "refresh_lease_until = ({now_ms} + $3 + 999) / 1000";

/// How long the lease still holds, in milliseconds of the database's clock.
const LEASE_REMAINING: &str = "refresh_lease_until * 1000 - {now_ms} AS remaining_ms";

/// The lease a claim or renewal statement returned, if it returned a row.
fn held<R: sqlx::Row>(row: Option<R>) -> Result<Option<HeldLease>, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.map(|row| {
        let remaining: i64 = row.try_get("remaining_ms")?;
        Ok(HeldLease {
            remaining: millis(remaining),
        })
    })
    .transpose()
}

/// The new version a compare-and-swap statement returned, if it wrote.
fn new_version<R: sqlx::Row>(row: Option<R>) -> Result<Option<i64>, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(row.map(|row| row.try_get("version")).transpose()?)
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> &'r str: sqlx::ColumnIndex<DB::Row> + sqlx::Encode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
{
    /// What a compare-and-swap that did not write ran into.
    async fn lost_race_or_missing(
        &self,
        account: &AccountId,
    ) -> Result<ReplaceOutcome, StoreError> {
        let row = sqlx::query("SELECT version FROM accounts WHERE id = $1")
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match new_version(row)? {
            Some(current_version) => Ok(ReplaceOutcome::LostRace { current_version }),
            None => Err(StoreError::AccountNotFound(account.clone())),
        }
    }
}

#[async_trait]
impl<DB> TokenStore for SqlStore<DB>
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
        let row = sqlx::query(
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
        match new_version(row)? {
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
        let row = sqlx::query(
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
        match new_version(row)? {
            Some(new_version) => Ok(ReplaceOutcome::Replaced { new_version }),
            None => self.lost_race_or_missing(account).await,
        }
    }
}

#[async_trait]
impl<DB> RefreshLeaseStore for SqlStore<DB>
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
    async fn try_claim_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        // Free, lapsed by the database's clock, or already ours (so that a
        // claim whose answer was lost can be repeated).
        let sql = format!(
            "UPDATE accounts SET refresh_lease_owner = $2, {LEASE_UNTIL}
             WHERE id = $1 AND (refresh_lease_owner IS NULL
                 OR refresh_lease_until IS NULL
                 OR refresh_lease_until * 1000 <= {{now_ms}}
                 OR refresh_lease_owner = $2)
             RETURNING {LEASE_REMAINING}"
        );
        let row = sqlx::query(with_clock::<DB>(&sql))
            .bind(account.as_str())
            .bind(owner)
            .bind(millis_i64(ttl))
            .fetch_optional(&self.pool)
            .await?;
        held(row)
    }

    async fn renew_refresh_lease(
        &self,
        account: &AccountId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<HeldLease>, StoreError> {
        let sql = format!(
            "UPDATE accounts SET {LEASE_UNTIL}
             WHERE id = $1 AND refresh_lease_owner = $2
             RETURNING {LEASE_REMAINING}"
        );
        let row = sqlx::query(with_clock::<DB>(&sql))
            .bind(account.as_str())
            .bind(owner)
            .bind(millis_i64(ttl))
            .fetch_optional(&self.pool)
            .await?;
        held(row)
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
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn read_refresh_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<RefreshLease>, StoreError> {
        let sql = format!(
            "SELECT refresh_lease_owner, refresh_lease_until, {LEASE_REMAINING}
             FROM accounts WHERE id = $1"
        );
        let row = sqlx::query(with_clock::<DB>(&sql))
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::AccountNotFound(account.clone()));
        };
        let owner: Option<String> = row.try_get("refresh_lease_owner")?;
        let until: Option<i64> = row.try_get("refresh_lease_until")?;
        let remaining: Option<i64> = row.try_get("remaining_ms")?;
        Ok(owner.zip(until).map(|(owner, until)| RefreshLease {
            owner,
            until: UnixTime::from_secs(until),
            remaining: millis(remaining.unwrap_or(0)),
        }))
    }
}
