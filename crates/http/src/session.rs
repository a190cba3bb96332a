//! Sessions as the gateway sees them: reading the cookie, keeping the
//! account's tokens fresh, and writing the cookie back.
//!
//! In the JWT strategy the cookie alone answers the common case: it carries
//! the user's identity, the account whose tokens the gateway keeps fresh, and
//! that account's access-token expiry (`authgate.ate`). A request with a
//! fresh token is decided by decrypting the cookie and comparing two
//! integers — no I/O. Only a stale token leads to the refresh service (see
//! `tokens.rs`), after which the cookie is rewritten with the new expiry.
//!
//! Every sign-in has a session record in the store; the JWT cookie carries
//! its id (`authgate.sid`). The record is checked whenever the store is
//! consulted anyway (`tokens.rs`: before a refresh, and by the token
//! endpoint) and, with [`RevocationCheck::Request`], in the revocation set on
//! every request (here). A revoked or missing record means signed out: a
//! copy of a signed-out cookie never comes back, not even after the user
//! signs in again (that creates a new record).

use crate::adopt::{Adopted, adopt};
use crate::rejection::AuthRejection;
use crate::settings::{RevocationCheck, SessionStrategy};
use crate::state::Inner;
use authgate_core::adopt::{Guide, classify, scrub};
use authgate_core::attributes::Attributes;
use authgate_core::cookie::SessionClaims;
use authgate_core::cookie::chunk::{is_chunk_of, read_chunks, write_chunks};
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_store::{AccountId, SessionExpiry, SessionId};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

pub use crate::rejection::REFRESH_TOKEN_ERROR;

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

impl CurrentSession {
    /// What route rules judge: the verified address and the kept groups,
    /// roles and claims.
    pub fn subject(&self) -> authgate_proxy::Subject<'_> {
        authgate_proxy::Subject {
            email: self.identity.email.as_deref(),
            groups: &self.attributes.groups,
            roles: &self.attributes.roles,
            claims: Some(&self.attributes.claims),
        }
    }
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
    /// The session record's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The provider's groups, roles, preferred user name and the claims
    /// route rules name (kept small: see `core::attributes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atr: Option<Attributes>,
}

/// How the session is stored.
#[derive(Debug, Clone)]
pub enum SessionSource {
    /// A JWT cookie with these claims.
    Jwt(Box<SessionClaims>),
    /// A database session with this cookie token.
    Database(Secret),
    /// No session at all: an API client's verified bearer token
    /// (`bearer.rs`); nothing is stored, refreshed or written back.
    Bearer,
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
    /// What the provider said about the user's groups, roles and the
    /// claims route rules name, as of the sign-in or the latest refresh
    /// (JWT strategy: kept in the cookie; database strategy: in the
    /// session's record).
    pub attributes: Attributes,
    /// The session record's id (JWT: from the cookie; database: the row's).
    pub(crate) sid: Option<SessionId>,
    /// This request found the session record live in the store (always
    /// true for a database session, which is read from its record).
    pub(crate) record_confirmed: bool,
    /// The names of the session cookie pieces the request carried.
    pub(crate) cookie_names: Vec<String>,
    /// The account's tokens, once this request read or refreshed them (never
    /// from the cookie): whoever needs them next in the same request — the
    /// proxy's forwarded token, the `AccessToken` extractor — uses these
    /// instead of reading the store again.
    pub(crate) tokens: Option<TokenSet>,
    /// This request already refreshed the tokens: whatever their expiry
    /// says (a token that lives less than the skew), asking the provider
    /// again in the same request cannot do better.
    pub(crate) refreshed: bool,
    /// The cookie the request carried must be replaced whatever else
    /// happens (an adopted guide cookie: it carries token material).
    pub(crate) replace_cookie: bool,
    /// This request learnt different groups, roles or claims (a refresh):
    /// the cookie must be rewritten.
    pub(crate) attributes_changed: bool,
}

/// The names of the request's cookies that are pieces of the session cookie.
pub(crate) fn session_cookie_names(inner: &Inner, cookies: &[(String, String)]) -> Vec<String> {
    let name = inner.session_codec.cookie_name();
    cookies
        .iter()
        .filter(|(n, _)| is_chunk_of(name, n))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Reads the session from the request's cookies. A missing, expired or
/// undecodable cookie is no session (logged, never an error).
/// `Err(AuthRejection::SignedOut)` means the cookie names a signed-out
/// session (an adopted guide cookie whose session ended): no session, and
/// the cookie is expired. Any other `Err` means the store could not answer
/// (database strategy, adoption): the session may well be valid, so callers
/// answer 503 rather than treating the user as signed out.
///
/// With `adopt_guide_cookies`, a guide-style Auth.js cookie (tokens inside)
/// is adopted here (`adopt.rs`); one whose application already failed to
/// refresh carries the sticky `RefreshTokenError`; one without a refresh
/// token is a plain Auth.js cookie. Either way its token claims are dropped
/// and the cookie is rewritten without them.
pub(crate) async fn read_session(
    inner: &Inner,
    cookies: &[(String, String)],
    now: UnixTime,
) -> Result<Option<CurrentSession>, AuthRejection> {
    let name = inner.session_codec.cookie_name();
    let cookie_names = session_cookie_names(inner, cookies);
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
            // A guide cookie not adopted loses its token claims: rewritten
            // (`replace_cookie`) without them, with the sticky error of an
            // ended grant when its application reported one.
            let (claims, guide_error, replace_cookie) = match &inner.adoption {
                Some(adoption) => match classify(&claims) {
                    Guide::NotGuide => (claims, None, false),
                    Guide::Adopt(grant) => {
                        return match adopt(inner, adoption, &claims, *grant, cookie_names, now)
                            .await?
                        {
                            Adopted::Session(session) => Ok(Some(*session)),
                            Adopted::SignedOut => Err(AuthRejection::SignedOut),
                        };
                    }
                    Guide::GrantEnded => {
                        (scrubbed(claims), Some(REFRESH_TOKEN_ERROR.to_owned()), true)
                    }
                    Guide::NothingToAdopt => (scrubbed(claims), None, true),
                },
                None => (claims, None, false),
            };
            let sid = ours.sid.map(SessionId::new);
            if inner.settings.revocation_check == RevocationCheck::Request
                && let Some(sid) = &sid
                && is_revoked(inner, sid, now).await?
            {
                tracing::info!(user = sub, "revoked session cookie refused");
                return Ok(None);
            }
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
                error: ours.err.or(guide_error),
                attributes: ours.atr.unwrap_or_default(),
                source: SessionSource::Jwt(Box::new(claims)),
                sid,
                record_confirmed: false,
                cookie_names,
                tokens: None,
                refreshed: false,
                replace_cookie,
                attributes_changed: false,
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
) -> Result<Option<CurrentSession>, AuthRejection> {
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
    let mut tokens = None;
    let mut account = None;
    if let Some(account_id) = session.account_id {
        let Some(provider) = inner.provider_of(&account_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        // The session row says nothing about the tokens: read them (through
        // the cache) once here, and carry them for the rest of the request.
        tokens = inner
            .refresh
            .current_tokens(&account_id)
            .await
            .map_err(unavailable)?;
        if tokens.is_none() {
            error = Some(REFRESH_TOKEN_ERROR.to_owned());
        }
        account = Some(AccountRef {
            id: account_id,
            provider,
        });
    }
    Ok(Some(CurrentSession {
        identity,
        account,
        access_expires_at: tokens.as_ref().and_then(|t: &TokenSet| t.expires_at),
        expires: session.expires,
        error,
        attributes: session.attributes,
        source: SessionSource::Database(token),
        sid: Some(session.id),
        record_confirmed: true,
        cookie_names,
        tokens,
        refreshed: false,
        replace_cookie: false,
        attributes_changed: false,
    }))
}

/// `claims` without a guide cookie's token claims.
fn scrubbed(mut claims: SessionClaims) -> SessionClaims {
    scrub(&mut claims);
    claims
}

/// Whether the session `sid` was revoked, by the revocation set; when the
/// set cannot answer (Redis down), by the store (one primary-key lookup), so
/// an outage of the cache costs latency, never a revoked session's return.
async fn is_revoked(inner: &Inner, sid: &SessionId, now: UnixTime) -> Result<bool, AuthRejection> {
    if let Some(set) = &inner.revocations {
        match set.contains(sid).await {
            Ok(revoked) => return Ok(revoked),
            Err(error) => {
                let set = set.kind();
                tracing::warn!(set, %error, "revocation set unavailable; asking the store");
                metrics::counter!("authgate_cache_fallback_total", "cache" => set, "op" => "revocation_check")
                    .increment(1);
            }
        }
    }
    let live = inner
        .store
        .find_live_session(sid, now)
        .await
        .map_err(unavailable)?;
    Ok(live.is_none())
}

fn unavailable(error: authgate_store::StoreError) -> AuthRejection {
    AuthRejection::store_unavailable(&error)
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
            sid: session.sid.as_ref().map(|s| s.as_str().to_owned()),
            atr: Some(session.attributes.clone()).filter(|a| !a.is_empty()),
        };
        if let Ok(v) = serde_json::to_value(ours) {
            claims.extra.insert("authgate".to_owned(), v);
        }
        write_jwt(inner, &claims, &session.cookie_names, now, &mut headers);
    }
    headers
}

/// The Set-Cookie headers that expire every piece of the session cookie
/// named in `names` (a signed-out session).
pub(crate) fn expire_cookies(inner: &Inner, names: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in names {
        inner.cookies.expire_session(&mut headers, name);
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

/// New session claims for a user signed in with an account, whose session
/// record is `sid`.
pub(crate) fn new_claims(
    identity: &Identity,
    account: &AccountRef,
    sid: &SessionId,
    access_expires_at: Option<UnixTime>,
    attributes: &Attributes,
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
        sid: Some(sid.as_str().to_owned()),
        atr: Some(attributes.clone()).filter(|a| !a.is_empty()),
    };
    if let Ok(v) = serde_json::to_value(ours) {
        claims.extra.insert("authgate".to_owned(), v);
    }
    claims
}
