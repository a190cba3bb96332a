//! Session records (table `sessions`), for both session strategies.
//!
//! One row per sign-in, keyed by the random session id. A database-strategy
//! row also holds the SHA-256 of its cookie token (`"sessionToken"`); a
//! JWT-strategy row has none. A revoked row stays revoked until the sweep
//! deletes it after its expiry.

use super::{Dialect, SqlStore, secs_i64};
use crate::error::StoreError;
use crate::model::{
    AccountId, Attributes, CreatedSession, NewSession, RevokedSession, Session, SessionExpiry,
    SessionId, SessionKind, SessionRecord, UserId, generate_session_token, session_token_hash,
};
use crate::traits::SessionStore;
use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;

/// Columns that make up a [`SessionRecord`].
const RECORD_COLUMNS: &str = r#"id, "sessionToken", "userId", "accountId", created_at,
    last_seen_at, expires, user_agent, revoked_at"#;

/// Columns that make up a database-strategy [`Session`].
const SESSION_COLUMNS: &str = r#"id, "userId", "accountId", expires, updated_at, attributes"#;

/// Columns a revocation returns.
const REVOKED_COLUMNS: &str = r#"id, "sessionToken""#;

fn record_from_row<R: sqlx::Row>(row: &R) -> Result<SessionRecord, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let token_hash: Option<String> = row.try_get("sessionToken")?;
    Ok(SessionRecord {
        id: SessionId::new(row.try_get::<String, _>("id")?),
        kind: match token_hash {
            Some(_) => SessionKind::Database,
            None => SessionKind::Jwt,
        },
        user_id: UserId::new(row.try_get::<String, _>("userId")?),
        account_id: row
            .try_get::<Option<String>, _>("accountId")?
            .map(AccountId::new),
        created_at: UnixTime::from_secs(row.try_get("created_at")?),
        last_seen_at: UnixTime::from_secs(row.try_get("last_seen_at")?),
        expires: UnixTime::from_secs(row.try_get("expires")?),
        user_agent: row.try_get("user_agent")?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(UnixTime::from_secs),
    })
}

fn session_from_row<R: sqlx::Row>(row: &R) -> Result<Session, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Session {
        id: SessionId::new(row.try_get::<String, _>("id")?),
        user_id: UserId::new(row.try_get::<String, _>("userId")?),
        account_id: row
            .try_get::<Option<String>, _>("accountId")?
            .map(AccountId::new),
        expires: UnixTime::from_secs(row.try_get("expires")?),
        updated_at: UnixTime::from_secs(row.try_get("updated_at")?),
        // Unreadable JSON counts as nothing said: rules on groups fail closed.
        attributes: row
            .try_get::<Option<String>, _>("attributes")?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
    })
}

/// The stored form of `attributes`: JSON, or NULL when there are none.
fn attributes_json(attributes: &Attributes) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    serde_json::to_string(attributes).ok()
}

fn revoked_from_row<R: sqlx::Row>(row: &R) -> Result<RevokedSession, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RevokedSession {
        id: SessionId::new(row.try_get::<String, _>("id")?),
        token_hash: row.try_get("sessionToken")?,
    })
}

impl<DB> SqlStore<DB>
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
    /// Inserts the record of a sign-in; `token_hash` only for the database
    /// strategy.
    async fn insert_session(
        &self,
        id: &SessionId,
        token_hash: Option<&str>,
        new: &NewSession,
    ) -> Result<(), StoreError> {
        sqlx::query(
            r#"INSERT INTO sessions (id, "sessionToken", "userId", "accountId", expires,
                   updated_at, created_at, last_seen_at, user_agent, provider_sid, attributes)
               VALUES ($1, $2, $3, $4, $5, $6, $6, $6, $7, $8, $9)"#,
        )
        .bind(id.as_str())
        .bind(token_hash)
        .bind(new.user_id.as_str())
        .bind(new.account_id.as_ref().map(AccountId::as_str))
        .bind(new.expires.as_secs())
        .bind(new.now.as_secs())
        .bind(new.stored_user_agent())
        .bind(new.provider_sid.as_deref())
        .bind(attributes_json(&new.attributes))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes the live sessions matching `condition` (on `$1` and, when
    /// `second` is given, `$3`, with `$2` the time of the revocation).
    async fn revoke_where(
        &self,
        condition: &str,
        key: &str,
        second: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        let sql = format!(
            "UPDATE sessions SET revoked_at = $2
             WHERE {condition} AND revoked_at IS NULL AND expires > $2
             RETURNING {REVOKED_COLUMNS}"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now.as_secs());
        let query = match second {
            Some(value) => query.bind(value),
            None => query,
        };
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(revoked_from_row)
            .collect()
    }
}

#[async_trait]
impl<DB> SessionStore for SqlStore<DB>
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
    async fn create_jwt_session(&self, new: NewSession) -> Result<SessionRecord, StoreError> {
        self.create_jwt_session_with_id(SessionId::generate(), new)
            .await
    }

    async fn create_jwt_session_with_id(
        &self,
        id: SessionId,
        new: NewSession,
    ) -> Result<SessionRecord, StoreError> {
        self.insert_session(&id, None, &new).await?;
        Ok(SessionRecord {
            id,
            kind: SessionKind::Jwt,
            user_agent: new.stored_user_agent(),
            user_id: new.user_id,
            account_id: new.account_id,
            created_at: new.now,
            last_seen_at: new.now,
            expires: new.expires,
            revoked_at: None,
        })
    }

    async fn create_database_session(&self, new: NewSession) -> Result<CreatedSession, StoreError> {
        let id = SessionId::generate();
        let token = generate_session_token();
        self.insert_session(&id, Some(&session_token_hash(&token)), &new)
            .await?;
        Ok(CreatedSession {
            token,
            session: Session {
                id,
                user_id: new.user_id,
                account_id: new.account_id,
                expires: new.expires,
                updated_at: new.now,
                attributes: new.attributes,
            },
        })
    }

    async fn find_session(
        &self,
        token: &Secret,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            r#"SELECT {SESSION_COLUMNS} FROM sessions
               WHERE "sessionToken" = $1 AND expires > $2 AND revoked_at IS NULL"#
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
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
        let sql = format!(
            r#"UPDATE sessions SET expires = $3, updated_at = $2, last_seen_at = $2
               WHERE "sessionToken" = $1 AND expires > $2 AND revoked_at IS NULL
                 AND updated_at <= $4
               RETURNING {SESSION_COLUMNS}"#
        );
        let extended = sqlx::query(sqlx::AssertSqlSafe(sql))
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

    async fn set_session_attributes(
        &self,
        token: &Secret,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            r#"UPDATE sessions SET attributes = $1
               WHERE "sessionToken" = $2 AND revoked_at IS NULL"#,
        )
        .bind(attributes_json(attributes))
        .bind(session_token_hash(token))
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError> {
        let done = sqlx::query(r#"DELETE FROM sessions WHERE "sessionToken" = $1"#)
            .bind(session_token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires <= $1")
            .bind(now.as_secs())
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn find_live_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM sessions
             WHERE id = $1 AND expires > $2 AND revoked_at IS NULL"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(now.as_secs())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_from_row)
            .transpose()
    }

    async fn touch_session_record(
        &self,
        id: &SessionId,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "UPDATE sessions SET expires = $3, updated_at = $2, last_seen_at = $2
             WHERE id = $1 AND expires > $2 AND revoked_at IS NULL AND updated_at <= $4
             RETURNING {RECORD_COLUMNS}"
        );
        let touched = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(now.as_secs())
            .bind(now.saturating_add(expiry.max_age).as_secs())
            .bind(now.as_secs().saturating_sub(secs_i64(expiry.update_age)))
            .fetch_optional(&self.pool)
            .await?;
        match touched {
            Some(row) => record_from_row(&row).map(Some),
            None => self.find_live_session(id, now).await,
        }
    }

    async fn list_user_sessions(&self, user: &UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            r#"SELECT {RECORD_COLUMNS} FROM sessions
               WHERE "userId" = $1 ORDER BY created_at DESC, id"#
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn revoke_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<RevokedSession>, StoreError> {
        let sql = format!(
            "UPDATE sessions SET revoked_at = $2
             WHERE id = $1 AND revoked_at IS NULL
             RETURNING {REVOKED_COLUMNS}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .bind(now.as_secs())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(revoked_from_row)
            .transpose()
    }

    async fn revoke_account_sessions(
        &self,
        account: &AccountId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.revoke_where(r#""accountId" = $1"#, account.as_str(), None, now)
            .await
    }

    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.revoke_where(r#""userId" = $1"#, user.as_str(), None, now)
            .await
    }

    async fn revoke_provider_sessions(
        &self,
        provider: &str,
        provider_sid: &str,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        self.revoke_where(
            r#"provider_sid = $1
               AND "accountId" IN (SELECT id FROM accounts WHERE provider = $3)"#,
            provider_sid,
            Some(provider),
            now,
        )
        .await
    }
}
