//! Sessions as the gateway sees them: reading the cookie, keeping the
//! account's tokens fresh, and writing the cookie back.
//!
//! In the JWT strategy the cookie alone answers the common case: it carries
//! the user's identity, the account whose tokens the gateway keeps fresh, and
//! that account's access-token expiry (`authgate.ate`). A request with a
//! fresh token is decided by decrypting the cookie and comparing two
//! integers — no I/O. Only a stale token leads to the refresh service, after
//! which the cookie is rewritten with the new expiry.

use crate::error::HttpError;
use crate::state::Inner;
use authgate_core::cookie::SessionClaims;
use authgate_core::cookie::chunk::{read_chunks, write_chunks};
use authgate_core::refresh::Outcome;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_store::{AccountId, SessionExpiry};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::settings::SessionStrategy;

/// The session error Auth.js clients look for when the provider revoked the grant.
pub const REFRESH_TOKEN_ERROR: &str = "RefreshTokenError";

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// authgate's user id (the session token's `sub`).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
}

impl Identity {
    /// The identity of a stored user. Its e-mail is the user's address only
    /// when a provider verified it (`email_verified` is set): an address
    /// stored before verification was enforced, or by another application
    /// without it, never reaches an allow-list or the upstream.
    pub fn of(user: &authgate_store::User) -> Identity {
        Identity {
            id: user.id.as_str().to_owned(),
            name: user.name.clone(),
            email: user.email.clone().filter(|_| user.email_verified.is_some()),
            image: user.image.clone(),
        }
    }
}

/// The provider account whose tokens this session keeps fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// The account row.
    pub id: AccountId,
    /// Its provider id.
    pub provider: String,
}

/// authgate's own claims inside an Auth.js-shaped session token, under the
/// `authgate` key (so the standard claims stay what Auth.js expects).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GatewayClaims {
    /// Account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<String>,
    /// Provider id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prv: Option<String>,
    /// Access-token expiry (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ate: Option<i64>,
    /// A sticky session error (`RefreshTokenError`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

/// How the session is stored.
#[derive(Debug, Clone)]
pub enum SessionSource {
    /// A JWT cookie with these claims.
    Jwt(Box<SessionClaims>),
    /// A database session with this cookie token.
    Database(Secret),
}

/// The current request's session.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    /// Who is signed in.
    pub identity: Identity,
    /// The account whose tokens are kept fresh, if any (a cookie written by
    /// an Auth.js app has none).
    pub account: Option<AccountRef>,
    /// The account's access-token expiry, when known.
    pub access_expires_at: Option<UnixTime>,
    /// When the session ends.
    pub expires: UnixTime,
    /// A sticky error, e.g. [`REFRESH_TOKEN_ERROR`].
    pub error: Option<String>,
    /// Where it came from.
    pub source: SessionSource,
    /// The names of the session cookie pieces the request carried.
    pub(crate) cookie_names: Vec<String>,
}

/// Whether the session's tokens are usable, after any refresh.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// Usable (or there is nothing to refresh).
    Fresh,
    /// Stale, and the mode says not to refresh here (lazy mode, API).
    Stale,
    /// The grant is gone; the user must sign in again.
    Revoked,
    /// A refresh could not complete now; the session is intact.
    Unavailable(Duration),
    /// The provider rejected our configuration; the session is intact.
    Rejected,
}

/// Reads the session from the request's cookies. A missing, expired or
/// undecodable cookie is no session (logged, never an error). `Err` means
/// the store could not answer (database strategy): the session may well be
/// valid, so callers answer 503 rather than treating the user as signed out.
pub(crate) async fn read_session(
    inner: &Inner,
    cookies: &[(String, String)],
    now: UnixTime,
) -> Result<Option<CurrentSession>, HttpError> {
    let name = inner.session_codec.cookie_name();
    let cookie_names: Vec<String> = cookies
        .iter()
        .filter(|(n, _)| n == name || n.strip_prefix(name).is_some_and(|r| r.starts_with('.')))
        .map(|(n, _)| n.clone())
        .collect();
    if cookie_names.is_empty() {
        return Ok(None);
    }
    let value = match read_chunks(name, cookies.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(None),
        Err(error) => {
            tracing::info!(%error, "session cookie rejected");
            return Ok(None);
        }
    };
    match inner.settings.strategy {
        SessionStrategy::Jwt => {
            let claims = match inner.session_codec.decode(&value, now) {
                Ok(c) => c,
                Err(error) => {
                    tracing::info!(%error, "session cookie rejected");
                    return Ok(None);
                }
            };
            let ours: GatewayClaims = claims
                .extra
                .get("authgate")
                .and_then(|v| GatewayClaims::deserialize(v).ok())
                .unwrap_or_default();
            let Some(sub) = claims.sub.clone() else {
                return Ok(None);
            };
            Ok(Some(CurrentSession {
                identity: Identity {
                    id: sub,
                    name: claims.name.clone(),
                    email: claims.email.clone(),
                    image: claims.picture.clone(),
                },
                account: ours.acc.zip(ours.prv).map(|(id, provider)| AccountRef {
                    id: AccountId::new(id),
                    provider,
                }),
                access_expires_at: ours.ate.map(UnixTime::from_secs),
                expires: UnixTime::from_secs(claims.exp.unwrap_or_default()),
                error: ours.err,
                source: SessionSource::Jwt(Box::new(claims)),
                cookie_names,
            }))
        }
        SessionStrategy::Database => {
            read_database_session(inner, Secret::new(value), now, cookie_names).await
        }
    }
}

async fn read_database_session(
    inner: &Inner,
    token: Secret,
    now: UnixTime,
    cookie_names: Vec<String>,
) -> Result<Option<CurrentSession>, HttpError> {
    let expiry = SessionExpiry {
        max_age: inner.settings.max_age,
        update_age: inner.settings.update_age,
    };
    let Some(session) = inner
        .store
        .touch_session(&token, now, expiry)
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let Some(identity) = inner
        .identity_of(&session.user_id)
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let mut error = None;
    let mut access_expires_at = None;
    let mut account = None;
    if let Some(account_id) = session.account_id {
        let Some(provider) = inner.provider_of(&account_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        match inner
            .store
            .read_tokens(&account_id)
            .await
            .map_err(unavailable)?
        {
            Some(v) => {
                if v.revoked_at.is_some() || v.tokens.is_none() {
                    error = Some(REFRESH_TOKEN_ERROR.to_owned());
                }
                access_expires_at = v.tokens.and_then(|t| t.expires_at);
            }
            None => error = Some(REFRESH_TOKEN_ERROR.to_owned()),
        }
        account = Some(AccountRef {
            id: account_id,
            provider,
        });
    }
    Ok(Some(CurrentSession {
        identity,
        account,
        access_expires_at,
        expires: session.expires,
        error,
        source: SessionSource::Database(token),
        cookie_names,
    }))
}

/// The answer when the store cannot be read: 503, the session untouched.
fn unavailable(error: authgate_store::StoreError) -> HttpError {
    tracing::warn!(%error, "session store unreachable");
    HttpError::unavailable(
        "StoreUnavailable",
        "The session store is not reachable right now; try again shortly.",
        std::time::Duration::from_secs(2),
    )
}

/// Refreshes the session's tokens if they are stale (when `refresh` allows)
/// and updates the session in place. Returns whether the cookie must be
/// rewritten (JWT: new expiry or a new sticky error).
pub(crate) async fn ensure_fresh(
    inner: &Inner,
    session: &mut CurrentSession,
    now: UnixTime,
    refresh: bool,
) -> (Freshness, bool) {
    if session.error.is_some() {
        return (Freshness::Revoked, false);
    }
    let Some(account) = session.account.clone() else {
        return (Freshness::Fresh, false);
    };
    if !inner
        .settings
        .policy
        .is_stale(session.access_expires_at, now)
    {
        return (Freshness::Fresh, false);
    }
    if !refresh {
        return (Freshness::Stale, false);
    }
    match inner.refresh.refresh(&account.id, &account.provider).await {
        Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => {
            let changed = session.access_expires_at != tokens.expires_at;
            session.access_expires_at = tokens.expires_at;
            (Freshness::Fresh, changed)
        }
        Outcome::Revoked | Outcome::NoRefreshToken | Outcome::AccountMissing => {
            session.error = Some(REFRESH_TOKEN_ERROR.to_owned());
            session.access_expires_at = None;
            (Freshness::Revoked, true)
        }
        Outcome::Unavailable { retry_after } => (Freshness::Unavailable(retry_after), false),
        Outcome::ProviderRejected(_) => (Freshness::Rejected, false),
    }
}

/// The Set-Cookie headers that store `session` again (JWT strategy: a new
/// token with the current expiry and error; database strategy: nothing, the
/// store holds the state).
pub(crate) fn rewrite_cookie(inner: &Inner, session: &CurrentSession, now: UnixTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let SessionSource::Jwt(claims) = &session.source {
        let mut claims = (**claims).clone();
        let ours = GatewayClaims {
            acc: session.account.as_ref().map(|a| a.id.as_str().to_owned()),
            prv: session.account.as_ref().map(|a| a.provider.clone()),
            ate: session.access_expires_at.map(UnixTime::as_secs),
            err: session.error.clone(),
        };
        if let Ok(v) = serde_json::to_value(ours) {
            claims.extra.insert("authgate".to_owned(), v);
        }
        write_jwt(inner, &claims, &session.cookie_names, now, &mut headers);
    }
    headers
}

/// Encodes `claims` as the session cookie (chunked, stale pieces expired).
pub(crate) fn write_jwt(
    inner: &Inner,
    claims: &SessionClaims,
    present: &[String],
    now: UnixTime,
    headers: &mut HeaderMap,
) {
    let token =
        inner
            .session_codec
            .encode(claims, now, inner.settings.max_age, &mut rand::rngs::OsRng);
    let writes = write_chunks(
        inner.session_codec.cookie_name(),
        &token,
        present.iter().map(String::as_str),
        inner.session_codec.format().chunk_size(),
    );
    inner
        .cookies
        .apply(headers, &writes, Some(inner.settings.max_age));
}

/// New session claims for a user signed in with an account.
pub(crate) fn new_claims(
    identity: &Identity,
    account: &AccountRef,
    access_expires_at: Option<UnixTime>,
) -> SessionClaims {
    let mut claims = SessionClaims {
        sub: Some(identity.id.clone()),
        name: identity.name.clone(),
        email: identity.email.clone(),
        picture: identity.image.clone(),
        ..Default::default()
    };
    let ours = GatewayClaims {
        acc: Some(account.id.as_str().to_owned()),
        prv: Some(account.provider.clone()),
        ate: access_expires_at.map(UnixTime::as_secs),
        err: None,
    };
    if let Ok(v) = serde_json::to_value(ours) {
        claims.extra.insert("authgate".to_owned(), v);
    }
    claims
}
