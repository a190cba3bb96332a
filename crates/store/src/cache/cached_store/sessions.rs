//! Database-strategy sessions served from the cache, and revocations.

use super::CachedStore;
use crate::cache::CacheEntry;
use crate::error::StoreError;
use crate::model::{
    AccountId, Attributes, CreatedSession, NewSession, RevokedSession, Session, SessionExpiry,
    SessionId, SessionRecord, UserId, session_token_hash,
};
use crate::traits::SessionStore;
use async_trait::async_trait;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Version of a "this session is gone" entry: higher than any real version,
/// so a lookup racing with sign-out cannot re-insert the deleted session.
const TOMBSTONE_VERSION: i64 = i64::MAX;

#[derive(Serialize, Deserialize)]
struct CachedSession {
    /// Absent in entries written before session records had ids: a miss.
    #[serde(default)]
    id: Option<String>,
    user_id: String,
    #[serde(default)]
    account_id: Option<String>,
    expires: i64,
    updated_at: i64,
    #[serde(default)]
    attributes: Attributes,
}

fn session_key(token: &Secret) -> String {
    session_key_for_hash(&session_token_hash(token))
}

fn session_key_for_hash(token_hash: &str) -> String {
    format!("session:{token_hash}")
}

/// Binds a sealed session entry to its cache key and version.
fn session_aad(key: &str, version: i64) -> Vec<u8> {
    format!("authgate/cache/{key}/{version}").into_bytes()
}

impl CachedStore {
    async fn cached_session(&self, op: &'static str, key: &str) -> CachedLookup<Session> {
        let Some(entry) = self.cache_get(op, key).await else {
            return CachedLookup::Miss;
        };
        if entry.version == TOMBSTONE_VERSION {
            return CachedLookup::Gone;
        }
        // Session entries are sealed like token entries: whoever can write
        // to a shared Redis must not be able to mint a session.
        let plain = std::str::from_utf8(&entry.value).ok().and_then(|text| {
            self.keys
                .decrypt(text, &session_aad(key, entry.version))
                .ok()
        });
        let Some(plain) = plain else {
            return CachedLookup::Miss;
        };
        match serde_json::from_slice::<CachedSession>(&plain) {
            Ok(CachedSession { id: None, .. }) | Err(_) => CachedLookup::Miss,
            Ok(s) => CachedLookup::Hit(Session {
                id: SessionId::new(s.id.unwrap_or_default()),
                user_id: UserId::new(s.user_id),
                account_id: s.account_id.map(AccountId::new),
                expires: UnixTime::from_secs(s.expires),
                updated_at: UnixTime::from_secs(s.updated_at),
                attributes: s.attributes,
            }),
        }
    }

    async fn put_session(&self, op: &'static str, key: &str, session: &Session) {
        let cached = CachedSession {
            id: Some(session.id.as_str().to_owned()),
            user_id: session.user_id.as_str().to_owned(),
            account_id: session.account_id.as_ref().map(|a| a.as_str().to_owned()),
            expires: session.expires.as_secs(),
            updated_at: session.updated_at.as_secs(),
            attributes: session.attributes.clone(),
        };
        let version = session.expires.as_secs();
        let sealed = serde_json::to_vec(&cached)
            .ok()
            .and_then(|plain| self.keys.encrypt(&plain, &session_aad(key, version)).ok());
        if let Some(value) = sealed {
            let entry = CacheEntry {
                version,
                value: value.into_bytes().into(),
            };
            self.cache_put(op, key, entry).await;
        }
    }
}

impl CachedStore {
    /// Leaves a tombstone for every revoked database-strategy session and
    /// adds every revoked id to the revocation set.
    async fn after_revocation(&self, op: &'static str, revoked: &[RevokedSession]) {
        for token_hash in revoked.iter().filter_map(|r| r.token_hash.as_deref()) {
            self.cache_put(op, &session_key_for_hash(token_hash), tombstone())
                .await;
        }
        if let Some(revocations) = &self.revocations {
            let ids: Vec<SessionId> = revoked.iter().map(|r| r.id.clone()).collect();
            if let Err(error) = revocations.insert(&ids).await {
                let set = revocations.kind();
                tracing::warn!(set, op, %error, "revocation set unavailable; the store check at the next refresh still ends these sessions");
                metrics::counter!("authgate_cache_fallback_total", "cache" => set, "op" => op)
                    .increment(1);
            }
        }
    }
}

/// The entry that says "this session is gone".
fn tombstone() -> CacheEntry {
    CacheEntry {
        version: TOMBSTONE_VERSION,
        value: Arc::from(&[][..]),
    }
}

enum CachedLookup<T> {
    Hit(T),
    Gone,
    Miss,
}

#[async_trait]
impl SessionStore for CachedStore {
    async fn create_jwt_session(&self, new: NewSession) -> Result<SessionRecord, StoreError> {
        self.inner.create_jwt_session(new).await
    }

    async fn create_jwt_session_with_id(
        &self,
        id: SessionId,
        new: NewSession,
    ) -> Result<SessionRecord, StoreError> {
        self.inner.create_jwt_session_with_id(id, new).await
    }

    async fn create_database_session(&self, new: NewSession) -> Result<CreatedSession, StoreError> {
        let created = self.inner.create_database_session(new).await?;
        self.put_session(
            "create_session",
            &session_key(&created.token),
            &created.session,
        )
        .await;
        Ok(created)
    }

    async fn find_session(
        &self,
        token: &Secret,
        now: UnixTime,
    ) -> Result<Option<Session>, StoreError> {
        let key = session_key(token);
        match self.cached_session("find_session", &key).await {
            CachedLookup::Gone => {
                self.count("session", "hit");
                return Ok(None);
            }
            // A cached expiry in the past may be stale (another instance may
            // have extended it): ask the store.
            CachedLookup::Hit(session) if session.expires > now => {
                self.count("session", "hit");
                return Ok(Some(session));
            }
            CachedLookup::Hit(_) | CachedLookup::Miss => {}
        }
        self.count("session", "miss");
        let session = self.inner.find_session(token, now).await?;
        if let Some(session) = &session {
            self.put_session("find_session", &key, session).await;
        }
        Ok(session)
    }

    async fn touch_session(
        &self,
        token: &Secret,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<Session>, StoreError> {
        let key = session_key(token);
        match self.cached_session("touch_session", &key).await {
            CachedLookup::Gone => {
                self.count("session", "hit");
                return Ok(None);
            }
            CachedLookup::Hit(session)
                if session.expires > now && !expiry.is_due(session.updated_at, now) =>
            {
                self.count("session", "hit");
                return Ok(Some(session));
            }
            CachedLookup::Hit(_) | CachedLookup::Miss => {}
        }
        self.count("session", "miss");
        let session = self.inner.touch_session(token, now, expiry).await?;
        match &session {
            Some(session) => self.put_session("touch_session", &key, session).await,
            None => self.cache_remove("touch_session", &key).await,
        }
        Ok(session)
    }

    /// Written to the store, and the cached entry dropped: this instance
    /// (and every instance sharing a Redis cache) reads the new ones next;
    /// an instance with its own memory cache, within `cache.ttl`.
    async fn set_session_attributes(
        &self,
        token: &Secret,
        attributes: &Attributes,
    ) -> Result<bool, StoreError> {
        let result = self.inner.set_session_attributes(token, attributes).await;
        self.cache_remove("set_session_attributes", &session_key(token))
            .await;
        result
    }

    async fn delete_session(&self, token: &Secret) -> Result<bool, StoreError> {
        let key = session_key(token);
        let result = self.inner.delete_session(token).await;
        match &result {
            Ok(_) => self.cache_put("delete_session", &key, tombstone()).await,
            Err(_) => self.cache_remove("delete_session", &key).await,
        }
        result
    }

    async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        self.inner.delete_expired_sessions(now).await
    }

    async fn find_live_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.find_live_session(id, now).await
    }

    async fn touch_session_record(
        &self,
        id: &SessionId,
        now: UnixTime,
        expiry: SessionExpiry,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.inner.touch_session_record(id, now, expiry).await
    }

    async fn list_user_sessions(&self, user: &UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.inner.list_user_sessions(user).await
    }

    async fn revoke_session(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<RevokedSession>, StoreError> {
        let revoked = self.inner.revoke_session(id, now).await?;
        self.after_revocation("revoke_session", revoked.as_slice())
            .await;
        Ok(revoked)
    }

    async fn revoke_account_sessions(
        &self,
        account: &AccountId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        let revoked = self.inner.revoke_account_sessions(account, now).await?;
        self.after_revocation("revoke_account_sessions", &revoked)
            .await;
        Ok(revoked)
    }

    async fn revoke_user_sessions(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        let revoked = self.inner.revoke_user_sessions(user, now).await?;
        self.after_revocation("revoke_user_sessions", &revoked)
            .await;
        Ok(revoked)
    }

    async fn revoke_provider_sessions(
        &self,
        provider: &str,
        provider_sid: &str,
        now: UnixTime,
    ) -> Result<Vec<RevokedSession>, StoreError> {
        let revoked = self
            .inner
            .revoke_provider_sessions(provider, provider_sid, now)
            .await?;
        self.after_revocation("revoke_provider_sessions", &revoked)
            .await;
        Ok(revoked)
    }
}
