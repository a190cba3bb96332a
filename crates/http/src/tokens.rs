//! The one token-access path: how a request gets its session's provider
//! tokens fresh, whoever asks — the access decision, the reverse proxy's
//! forwarded token, forward-auth, the tower layer's `AccessToken` extractor.
//!
//! ```text
//! session expiry fresh? ──yes──► tokens already carried by the request? ──yes──► use them (no I/O)
//!     │no                                   │no
//!     ▼                                     ▼
//! refresh service (single flight)      refresh service: current tokens (through the cache)
//!     │                                     │ stale there too (another instance refreshed)?
//!     ▼                                     ▼
//! Resolution ──► tokens, or an AuthRejection (the one conversion, rejection.rs)
//! ```
//!
//! The token endpoint (`token_endpoint.rs`) asks for an account's tokens
//! with [`account_tokens`]: the same cache read and the same refresh
//! service, judged by the tokens' own expiry (its caller's cookie is never
//! rewritten, so the cookie's copy of the expiry would stay stale).
//!
//! Whatever this reads or refreshes stays on the `CurrentSession`, so a
//! request never reads the store or refreshes a second time (not even when
//! the provider's tokens live less than the skew, and so look stale as soon
//! as they are issued). The HTTP edge
//! never reads the store's tokens itself: it asks the refresh service.

use crate::audit::AuditEvent;
use crate::rejection::AuthRejection;
use crate::session::{AccountRef, CurrentSession, REFRESH_TOKEN_ERROR, SessionSource};
use crate::state::Inner;
use authgate_core::refresh::Resolution;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::SessionExpiry;

/// Makes the session's access-token expiry fresh at `now`: nothing to do
/// when it is (the fast path: no I/O), a refresh when it is stale and
/// `may_refresh`, [`AuthRejection::TokenExpired`] when it is stale and not.
/// A sticky error is [`AuthRejection::Revoked`]; a session without an
/// account has nothing to refresh.
pub(crate) async fn ensure_fresh(
    inner: &Inner,
    session: &mut CurrentSession,
    now: UnixTime,
    may_refresh: bool,
) -> Result<(), AuthRejection> {
    if session.error.is_some() {
        return Err(AuthRejection::Revoked);
    }
    let Some(account) = session.account.clone() else {
        return Ok(());
    };
    if session.refreshed
        || !inner
            .settings
            .policy
            .is_stale(session.access_expires_at, now)
    {
        return Ok(());
    }
    if !may_refresh {
        return Err(AuthRejection::TokenExpired);
    }
    refresh(inner, session, &account).await.map(drop)
}

/// The session's account's tokens, fresh at `now`: those the request
/// already holds, else the cache's, else a refresh's (see the module
/// diagram). Updates `session` with whatever it read or refreshed.
pub(crate) async fn fresh_tokens(
    inner: &Inner,
    session: &mut CurrentSession,
    now: UnixTime,
    may_refresh: bool,
) -> Result<TokenSet, AuthRejection> {
    ensure_fresh(inner, session, now, may_refresh).await?;
    let policy = inner.settings.policy;
    if let Some(tokens) = &session.tokens
        && (session.refreshed || !policy.is_stale(tokens.expires_at, now))
    {
        return Ok(tokens.clone());
    }
    let Some(account) = session.account.clone() else {
        return Err(AuthRejection::NoAccount);
    };
    let cached = inner
        .refresh
        .current_tokens(&account.id)
        .await
        .map_err(|e| AuthRejection::store_unavailable(&e))?
        .ok_or(AuthRejection::Revoked)?;
    if !policy.is_stale(cached.expires_at, now) {
        session.tokens = Some(cached.clone());
        return Ok(cached);
    }
    // The cache holds an older set than the session knows of (another
    // instance refreshed): the refresh service reads the store, and calls
    // the provider only if the store's copy is stale too.
    refresh(inner, session, &account).await
}

/// `account`'s tokens, fresh at `now`, for a caller with no session to
/// update (the token endpoint): `known` (tokens the request already read,
/// e.g. with a database session) when fresh, else the cache's, else a
/// refresh's through the refresh service (single flight, lease, retries,
/// circuit breaker). Whatever the refresh mode: this caller asked for a
/// fresh token. A grant that ended (no tokens) is
/// [`AuthRejection::Revoked`].
pub(crate) async fn account_tokens(
    inner: &Inner,
    account: &AccountRef,
    known: Option<TokenSet>,
    now: UnixTime,
) -> Result<TokenSet, AuthRejection> {
    let current = match known {
        Some(tokens) => tokens,
        None => inner
            .refresh
            .current_tokens(&account.id)
            .await
            .map_err(|e| AuthRejection::store_unavailable(&e))?
            .ok_or(AuthRejection::Revoked)?,
    };
    if !inner.settings.policy.is_stale(current.expires_at, now) {
        return Ok(current);
    }
    let outcome = inner.refresh.refresh(&account.id, &account.provider).await;
    AuthRejection::from_resolution(Resolution::from(outcome))
}

/// Confirms, once per request, that the session's record is live in the
/// store — the check every path makes before it consults the store for the
/// session (a refresh, the token endpoint). The visit is noted on the record
/// (its `last_seen_at`, and its expiry slides, at most once per
/// `update_age`). A JWT cookie with an account but no record id (written
/// before sessions had records) has nothing to check against: signed out.
/// A cookie without an account (written by an Auth.js app) has no tokens to
/// guard and no record: nothing to check.
pub(crate) async fn confirm_record(
    inner: &Inner,
    session: &mut CurrentSession,
    now: UnixTime,
) -> Result<(), AuthRejection> {
    if session.record_confirmed || !matches!(session.source, SessionSource::Jwt(_)) {
        return Ok(());
    }
    let Some(sid) = &session.sid else {
        return match session.account {
            Some(_) => Err(AuthRejection::SignedOut),
            None => Ok(()),
        };
    };
    let expiry = SessionExpiry {
        max_age: inner.settings.max_age,
        update_age: inner.settings.update_age,
    };
    match inner.store.touch_session_record(sid, now, expiry).await {
        Ok(Some(_)) => {
            session.record_confirmed = true;
            Ok(())
        }
        Ok(None) => {
            tracing::info!(
                user = session.identity.id,
                "signed-out session cookie refused"
            );
            Err(AuthRejection::SignedOut)
        }
        Err(error) => Err(AuthRejection::store_unavailable(&error)),
    }
}

/// Refreshes `account` through the refresh service and records the result
/// on `session`: new tokens and expiry, or the sticky error of an ended grant.
/// The session's record is confirmed first.
async fn refresh(
    inner: &Inner,
    session: &mut CurrentSession,
    account: &AccountRef,
) -> Result<TokenSet, AuthRejection> {
    confirm_record(inner, session, inner.clock.now()).await?;
    let resolution = Resolution::from(inner.refresh.refresh(&account.id, &account.provider).await);
    if resolution.ends_grant() {
        AuditEvent::SessionEnded {
            user: &session.identity.id,
            provider: &account.provider,
        }
        .emit();
        session.error = Some(REFRESH_TOKEN_ERROR.to_owned());
        session.access_expires_at = None;
        session.tokens = None;
    }
    let tokens = AuthRejection::from_resolution(resolution)?;
    session.access_expires_at = tokens.expires_at;
    session.tokens = Some(tokens.clone());
    session.refreshed = true;
    Ok(tokens)
}
