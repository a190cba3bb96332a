//! Adopting guide-style Auth.js session cookies, lazily: the first request
//! that carries one moves its refresh token into the store and gets an
//! authgate session cookie without token material; from then on the
//! session refreshes like any other (`tokens.rs`).
//!
//! On with `[session] adopt_guide_cookies = "<provider id>"` (the cookie
//! does not say which provider its tokens belong to). What is a guide
//! cookie, and the idempotent record id an adoption uses, is decided in
//! [`authgate_core::adopt`]; this module does the I/O:
//!
//! ```text
//! guide cookie ──► record id = HMAC(key, provider ‖ refresh token)
//!   record live? ──yes──► join it (the cookie was adopted already)
//!     │no                    (ten concurrent first requests: one adopts,
//!     ▼                       nine join; a replay months later joins too)
//!   (one flight per provider account in this process)
//!   account (provider, sub) exists? ──yes──► tokens untouched (never overwritten)
//!     │no
//!     ▼
//!   core::signin::plan (unverified e-mail) ─► create user ─► link_account with the
//!   cookie's tokens: the account's tokens are created once (unique provider account)
//!     ▼
//!   create the record under its id (create-once) ─► taken? live: join; revoked: signed out
//! ```
//!
//! Guarantees: a refresh token is adopted at most once (its account is
//! created with it; an existing account's tokens are never replaced by a
//! cookie's), a replayed old cookie never overwrites newer tokens, and a
//! guide cookie whose adopted session was signed out stays signed out (its
//! record id is taken for good). Token material is never logged: the log
//! lines name the provider and user ids only.

use crate::account;
use crate::rejection::{AuthRejection, REFRESH_TOKEN_ERROR};
use crate::session::{AccountRef, CurrentSession, Identity, SessionSource, new_claims};
use crate::state::Inner;
use authgate_core::adopt::{AdoptionKey, GuideGrant, scrub};
use authgate_core::cookie::SessionClaims;
use authgate_core::time::UnixTime;
use authgate_store::{Account, NewSession, SessionId, SessionRecord, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The adoption settings and this process's adoption flights.
pub(crate) struct Adoption {
    /// The provider whose tokens guide cookies carry.
    provider: String,
    /// Names adoption records.
    key: AdoptionKey,
    /// One adoption at a time per provider account in this process (so ten
    /// concurrent first requests create one user, not ten).
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Adoption {
    /// Adoption of `provider`'s guide cookies, with record ids keyed by
    /// `secret` (the first session secret).
    pub(crate) fn new(provider: String, secret: &[u8]) -> Self {
        Self {
            provider,
            key: AdoptionKey::new(secret),
            flights: Mutex::new(HashMap::new()),
        }
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(flights.entry(key.to_owned()).or_default())
    }

    fn land(&self, key: &str, flight: Arc<tokio::sync::Mutex<()>>) {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ours and the map's: nobody else waits on it any more.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(key);
        }
    }
}

/// What a guide cookie turned into.
pub(crate) enum Adopted {
    /// A session of the adopted (or joined) account; its cookie must be
    /// rewritten (`CurrentSession::replace_cookie`).
    Session(Box<CurrentSession>),
    /// The cookie's adopted session was signed out (its record revoked).
    SignedOut,
}

/// Adopts (or joins the adoption of) a guide cookie's grant.
pub(crate) async fn adopt(
    inner: &Inner,
    adoption: &Adoption,
    claims: &SessionClaims,
    grant: GuideGrant,
    cookie_names: Vec<String>,
    now: UnixTime,
) -> Result<Adopted, AuthRejection> {
    let Some(refresh_token) = grant.tokens.refresh_token.as_ref() else {
        return Ok(Adopted::SignedOut);
    };
    let sid = SessionId::new(adoption.key.record_id(&adoption.provider, refresh_token));
    if let Some(record) = live(inner, &sid, now).await? {
        return joined(inner, adoption, claims, record, cookie_names).await;
    }
    let flight_key = format!("{}\0{}", adoption.provider, grant.profile.sub);
    let flight = adoption.flight(&flight_key);
    let outcome = {
        let _turn = flight.lock().await;
        adopt_once(inner, adoption, &sid, grant, now).await
    };
    adoption.land(&flight_key, flight);
    match outcome? {
        Some(record) => joined(inner, adoption, claims, record, cookie_names).await,
        None => {
            tracing::info!(
                provider = adoption.provider,
                "signed-out guide cookie refused"
            );
            Ok(Adopted::SignedOut)
        }
    }
}

/// Under this process's flight for the account: the record, created if
/// nobody did; `None` when it exists but is no longer live (signed out).
async fn adopt_once(
    inner: &Inner,
    adoption: &Adoption,
    sid: &SessionId,
    grant: GuideGrant,
    now: UnixTime,
) -> Result<Option<SessionRecord>, AuthRejection> {
    // Another request of this process may have adopted while we waited.
    if let Some(record) = live(inner, sid, now).await? {
        return Ok(Some(record));
    }
    let account = account_for(inner, adoption, grant, now).await?;
    let new = NewSession {
        user_id: account.user_id.clone(),
        account_id: Some(account.id.clone()),
        now,
        expires: now.saturating_add(inner.settings.max_age),
        user_agent: None,
        // A guide cookie does not carry the provider's session id.
        provider_sid: None,
        attributes: Default::default(),
    };
    match inner
        .store
        .create_jwt_session_with_id(sid.clone(), new)
        .await
    {
        Ok(record) => {
            tracing::info!(
                provider = adoption.provider,
                user = account.user_id.as_str(),
                "guide cookie adopted into a session"
            );
            metrics::counter!("authgate_guide_cookies_total", "outcome" => "session").increment(1);
            Ok(Some(record))
        }
        // Another instance created it meanwhile (live: join), or it was
        // signed out long ago (not live: stays signed out).
        Err(StoreError::AlreadyExists(_)) => live(inner, sid, now).await,
        Err(error) => Err(AuthRejection::store_unavailable(&error)),
    }
}

/// The provider account the grant belongs to: the existing one (whose
/// tokens are left alone), or a new one created with the grant's tokens.
async fn account_for(
    inner: &Inner,
    adoption: &Adoption,
    grant: GuideGrant,
    now: UnixTime,
) -> Result<Account, AuthRejection> {
    let unavailable = |e: StoreError| AuthRejection::store_unavailable(&e);
    let find = || {
        inner
            .store
            .find_account_by_provider(&adoption.provider, &grant.profile.sub)
    };
    if let Some(account) = find().await.map_err(unavailable)? {
        return Ok(account);
    }
    let Some(provider) = inner.catalog.get(&adoption.provider) else {
        return Err(AuthRejection::SignedOut);
    };
    match account::adopt_account(inner, provider, &grant.profile, grant.tokens.clone(), now).await {
        Ok(Some(account)) => {
            tracing::info!(
                provider = adoption.provider,
                user = account.user_id.as_str(),
                "guide cookie's refresh token adopted into the store"
            );
            metrics::counter!("authgate_guide_cookies_total", "outcome" => "adopted").increment(1);
            Ok(account)
        }
        Ok(None) => Err(AuthRejection::SignedOut),
        // Another instance linked the account first: its tokens stand.
        Err(StoreError::AlreadyExists(_)) => find()
            .await
            .map_err(unavailable)?
            .ok_or(AuthRejection::SignedOut),
        Err(error) => Err(unavailable(error)),
    }
}

async fn live(
    inner: &Inner,
    sid: &SessionId,
    now: UnixTime,
) -> Result<Option<SessionRecord>, AuthRejection> {
    inner
        .store
        .find_live_session(sid, now)
        .await
        .map_err(|e| AuthRejection::store_unavailable(&e))
}

/// The session of a live adoption record: the stored user's identity, the
/// account's current tokens (through the cache), and the guide cookie's
/// own claims without token material (so an application's extra claims
/// survive the rewrite).
async fn joined(
    inner: &Inner,
    adoption: &Adoption,
    claims: &SessionClaims,
    record: SessionRecord,
    cookie_names: Vec<String>,
) -> Result<Adopted, AuthRejection> {
    let unavailable = |e: StoreError| AuthRejection::store_unavailable(&e);
    let Some(account_id) = record.account_id.clone() else {
        return Ok(Adopted::SignedOut);
    };
    let Some(identity) = inner
        .identity_of(&record.user_id)
        .await
        .map_err(unavailable)?
    else {
        return Ok(Adopted::SignedOut);
    };
    let account = AccountRef {
        id: account_id,
        provider: adoption.provider.clone(),
    };
    let tokens = inner
        .refresh
        .current_tokens(&account.id)
        .await
        .map_err(unavailable)?;
    let access_expires_at = tokens.as_ref().and_then(|t| t.expires_at);
    let error = tokens.is_none().then(|| REFRESH_TOKEN_ERROR.to_owned());
    Ok(Adopted::Session(Box::new(CurrentSession {
        source: SessionSource::Jwt(Box::new(rewritten_claims(
            claims,
            &identity,
            &account,
            &record.id,
            access_expires_at,
        ))),
        identity,
        account: Some(account),
        access_expires_at,
        expires: record.expires,
        error,
        // Learnt at the session's first refresh (the guide cookie has none).
        attributes: Default::default(),
        sid: Some(record.id),
        record_confirmed: true,
        cookie_names,
        tokens,
        refreshed: false,
        replace_cookie: true,
        attributes_changed: false,
    })))
}

/// authgate's claims for the adopted session, on top of whatever else the
/// application kept in its cookie — without the guide's token claims.
fn rewritten_claims(
    guide: &SessionClaims,
    identity: &Identity,
    account: &AccountRef,
    sid: &SessionId,
    access_expires_at: Option<UnixTime>,
) -> SessionClaims {
    let mut claims = new_claims(
        identity,
        account,
        sid,
        access_expires_at,
        &Default::default(),
    );
    let mut rest = guide.extra.clone();
    scrub_all(&mut rest);
    for (key, value) in rest {
        claims.extra.entry(key).or_insert(value);
    }
    claims
}

/// Removes the guide's token claims (and its `error`) from a claim map.
fn scrub_all(extra: &mut serde_json::Map<String, serde_json::Value>) {
    let mut holder = SessionClaims {
        extra: std::mem::take(extra),
        ..Default::default()
    };
    scrub(&mut holder);
    holder.extra.remove("error");
    *extra = holder.extra;
}
