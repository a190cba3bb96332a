//! `authgate sessions list|revoke`: session administration from the command
//! line, straight against the configured store — the same operations as the
//! admin API (`{base}/admin/sessions`), for an operator on the machine.
//!
//! Revocations go through the configured cache, as the gateway's own do: a
//! database session's cached copy is replaced by a tombstone and every
//! revoked id lands in the revocation set, so with Redis the running
//! instances see the revocation at once. With `memory://` they see it at
//! their next store check (database sessions: when their cached copy
//! expires, at most `[cache] ttl`).

use authgate_config::Config;
use authgate_core::time::UnixTime;
use authgate_store::cache::{CachedStore, open_cache, open_revocation_set};
use authgate_store::{Backend, SessionId, SessionKind, SessionRecord, Store, UserId};
use std::fmt::Write as _;
use std::sync::Arc;

/// Why a sessions command failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// The store could not be opened or answered.
    #[error("store.url: {0}")]
    Store(#[from] authgate_store::StoreError),
    /// The cache could not be opened.
    #[error("cache.url: {0}")]
    Cache(#[from] authgate_store::cache::CacheError),
    /// `cache.redis_ca_file` could not be read.
    #[error(transparent)]
    RedisCa(#[from] crate::settings::RedisCaError),
    /// The store's keys could not be derived.
    #[error("store.encryption_keys: {0}")]
    Keys(String),
    /// No live session has this id.
    #[error("no live session has the id {0:?}")]
    NotFound(String),
}

/// The store, with the configured cache and revocation set in front of it.
/// A SQLite store is migrated first, as `serve` does.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, SessionsError> {
    let keys = crate::settings::key_ring(config).map_err(|e| SessionsError::Keys(e.to_string()))?;
    let store = authgate_store::connect(config.store.url.as_str(), keys.clone()).await?;
    if store.backend() == Backend::Sqlite {
        store.migrate().await?;
    }
    let options = crate::settings::cache_options(&config.cache)?;
    let cache = open_cache(config.cache.url.as_str(), &options).await?;
    let revocations =
        open_revocation_set(config.cache.url.as_str(), &options, config.session.max_age)?;
    Ok(Arc::new(
        CachedStore::new(store, cache, keys).with_revocations(revocations),
    ))
}

/// The user's sessions (newest first) as a table: id, kind, provider,
/// created, last seen, expires, state, user agent. Times are UTC (RFC 3339).
pub async fn list(store: &dyn Store, user: &str, now: UnixTime) -> Result<String, SessionsError> {
    let records = store.list_user_sessions(&UserId::new(user)).await?;
    let mut out = String::new();
    if records.is_empty() {
        let _ = writeln!(out, "no sessions for user {user}");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<43}  {:<8}  {:<10}  {:<20}  {:<20}  {:<20}  {:<7}  user agent",
        "id", "kind", "provider", "created", "last seen", "expires", "state"
    );
    for record in &records {
        let provider = match &record.account_id {
            Some(account) => store.find_account(account).await?.map(|a| a.provider),
            None => None,
        };
        let _ = writeln!(
            out,
            "{:<43}  {:<8}  {:<10}  {:<20}  {:<20}  {:<20}  {:<7}  {}",
            record.id.as_str(),
            kind(record),
            provider.as_deref().unwrap_or("-"),
            rfc3339(record.created_at),
            rfc3339(record.last_seen_at),
            rfc3339(record.expires),
            state(record, now),
            record.user_agent.as_deref().unwrap_or("-"),
        );
    }
    Ok(out)
}

/// Revokes one session; a session that does not exist or was already
/// revoked is [`SessionsError::NotFound`].
pub async fn revoke_session(
    store: &dyn Store,
    id: &str,
    now: UnixTime,
) -> Result<(), SessionsError> {
    match store.revoke_session(&SessionId::new(id), now).await? {
        Some(_) => Ok(()),
        None => Err(SessionsError::NotFound(id.to_owned())),
    }
}

/// Revokes every live session of a user; returns how many.
pub async fn revoke_user(
    store: &dyn Store,
    user: &str,
    now: UnixTime,
) -> Result<usize, SessionsError> {
    Ok(store
        .revoke_user_sessions(&UserId::new(user), now)
        .await?
        .len())
}

fn kind(record: &SessionRecord) -> &'static str {
    match record.kind {
        SessionKind::Jwt => "jwt",
        SessionKind::Database => "database",
    }
}

fn state(record: &SessionRecord, now: UnixTime) -> &'static str {
    if record.revoked_at.is_some() {
        "revoked"
    } else if record.is_live(now) {
        "live"
    } else {
        "expired"
    }
}

fn rfc3339(t: UnixTime) -> String {
    use cookie::time::OffsetDateTime;
    use cookie::time::format_description::well_known::Rfc3339;
    OffsetDateTime::from_unix_timestamp(t.as_secs())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.as_secs().to_string())
}
