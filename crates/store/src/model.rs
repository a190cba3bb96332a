//! The records the store keeps, in domain terms.

use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::time::Duration;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps an existing id (as read from a cookie or another table).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// A fresh random id (UUID v4).
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Identifies a user (`users.id`).
    UserId
);
string_id!(
    /// Identifies a linked provider account (`accounts.id`).
    AccountId
);

/// A person who signed in (Auth.js `User`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address; unique when present.
    pub email: Option<String>,
    /// When the e-mail address was verified.
    pub email_verified: Option<UnixTime>,
    /// Avatar URL.
    pub image: Option<String>,
}

/// The fields of a user to create; the store assigns the id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUser {
    /// Display name.
    pub name: Option<String>,
    /// E-mail address; must be unique when present.
    pub email: Option<String>,
    /// When the e-mail address was verified.
    pub email_verified: Option<UnixTime>,
    /// Avatar URL.
    pub image: Option<String>,
}

/// A user's account at one provider (Auth.js `Account`), without its tokens.
/// Read the tokens with [`crate::TokenStore::read_tokens`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Primary key.
    pub id: AccountId,
    /// The user this account belongs to.
    pub user_id: UserId,
    /// Auth.js account type: `oidc` or `oauth`.
    pub kind: String,
    /// Provider id from the configuration (`[[providers]] id`).
    pub provider: String,
    /// The user's id at the provider (the `sub` claim for OIDC).
    pub provider_account_id: String,
    /// OIDC `session_state`, when the provider sent one.
    pub session_state: Option<String>,
    /// When the grant was found revoked (the tokens are then cleared).
    pub revoked_at: Option<UnixTime>,
}

/// An account to link to an existing user, with the tokens of the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The user to link to; must exist.
    pub user_id: UserId,
    /// Auth.js account type: `oidc` or `oauth`.
    pub kind: String,
    /// Provider id from the configuration.
    pub provider: String,
    /// The user's id at the provider.
    pub provider_account_id: String,
    /// The tokens the sign-in produced.
    pub tokens: TokenSet,
    /// OIDC `session_state`, when the provider sent one.
    pub session_state: Option<String>,
}

/// An account brought over from another system (`authgate import authjs`),
/// written with the id it had there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAccount {
    /// The account's id (kept from the source, or chosen by the importer).
    pub id: AccountId,
    /// The user it belongs to; must exist.
    pub user_id: UserId,
    /// Auth.js account type: `oidc` or `oauth`.
    pub kind: String,
    /// Provider id from the configuration.
    pub provider: String,
    /// The user's id at the provider.
    pub provider_account_id: String,
    /// The tokens the source held (encrypted on arrival), if any.
    pub tokens: Option<TokenSet>,
    /// OIDC `session_state`, when the source kept one.
    pub session_state: Option<String>,
}

/// A database session brought over from another system: the record keeps
/// the hash of the cookie token the browser already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedSession {
    /// [`session_token_hash`] of the browser's cookie token.
    pub token_hash: String,
    /// The signed-in user; must exist.
    pub user_id: UserId,
    /// The account the session's tokens come from, when known.
    pub account_id: Option<AccountId>,
    /// When the session ends unless extended (kept from the source).
    pub expires: UnixTime,
    /// The time of the import (`created_at`, `last_seen_at`, `updated_at`).
    pub now: UnixTime,
}

/// What an insert-if-absent import of one row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The row was written.
    Created,
    /// The same row (same id, or the same provider account of the same user,
    /// or the same session token) was already there; nothing was written.
    AlreadyPresent,
    /// Another row holds a unique value of this one (an e-mail address, a
    /// provider account of another user); nothing was written.
    Conflict(&'static str),
}

/// An account's tokens together with the version a compare-and-swap needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedTokens {
    /// The current token set; `None` after the grant was revoked.
    pub tokens: Option<TokenSet>,
    /// Incremented by every token write; pass it to
    /// [`crate::TokenStore::replace_tokens`] as `expected_version`.
    pub version: i64,
    /// When the grant was found revoked, if it was.
    pub revoked_at: Option<UnixTime>,
}

/// The result of a compare-and-swap token write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceOutcome {
    /// The write happened; the account now has `new_version`.
    Replaced {
        /// The account's version after the write.
        new_version: i64,
    },
    /// Someone else wrote first; nothing was changed. Re-read and decide again.
    LostRace {
        /// The account's version now.
        current_version: i64,
    },
}

impl ReplaceOutcome {
    /// Whether the write happened.
    pub fn is_replaced(&self) -> bool {
        matches!(self, Self::Replaced { .. })
    }
}

/// Who holds an account's cross-instance refresh lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLease {
    /// The holder's owner id (an instance + attempt id chosen by the caller).
    pub owner: String,
    /// When the lease lapses unless renewed, by the store's clock.
    pub until: UnixTime,
    /// How long it still holds, by the store's clock when it was read
    /// (zero once it has lapsed).
    pub remaining: Duration,
}

/// A lease the store just confirmed for the caller (claimed or renewed).
///
/// The store judges leases by its own clock, never by the callers' wall
/// clocks, so instances with skewed clocks agree on who holds a lease.
/// `remaining` is measured by that clock from the moment the statement ran,
/// which is after the caller sent it: the lease is certainly held until the
/// caller's own send time plus `remaining` (see `authgate-refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLease {
    /// How long the lease holds from the moment the store confirmed it.
    pub remaining: Duration,
}

/// Identifies one sign-in's session record: a random, unguessable value
/// (256 bits, base64url). The JWT strategy's cookie carries it (`sid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// Wraps an existing id (as read from a cookie or a row).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh random id: 256 bits from the OS generator, base64url.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a session is carried by the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// `[session] strategy = "jwt"`: the encrypted cookie carries the
    /// session id; the record has no token.
    Jwt,
    /// `[session] strategy = "database"`: the cookie carries a random token
    /// whose SHA-256 the record keeps.
    Database,
}

/// The longest user agent a session record keeps (longer ones are cut).
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// A sign-in to record, for either session strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The signed-in user.
    pub user_id: UserId,
    /// The provider account the user signed in with.
    pub account_id: Option<AccountId>,
    /// The sign-in time (`created_at`, `last_seen_at`).
    pub now: UnixTime,
    /// When the session ends unless extended.
    pub expires: UnixTime,
    /// The browser's `User-Agent`, as sent: the store keeps at most
    /// [`MAX_USER_AGENT_CHARS`] characters, without control characters.
    pub user_agent: Option<String>,
    /// The identity provider's session id: the `sid` claim of the sign-in's
    /// ID token, if it had one (OpenID Connect Back-Channel Logout by `sid`).
    pub provider_sid: Option<String>,
}

impl NewSession {
    /// The user agent as stored: control characters dropped, cut to
    /// [`MAX_USER_AGENT_CHARS`] characters; `None` when nothing is left.
    pub fn stored_user_agent(&self) -> Option<String> {
        let cleaned: String = self
            .user_agent
            .as_deref()?
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        let trimmed = cleaned.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

/// The record of one sign-in (both strategies). A revoked record never
/// comes back: signing in again creates a new record with a new id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session id (`sid`).
    pub id: SessionId,
    /// How the browser carries it.
    pub kind: SessionKind,
    /// The signed-in user.
    pub user_id: UserId,
    /// The provider account the user signed in with.
    pub account_id: Option<AccountId>,
    /// When the user signed in.
    pub created_at: UnixTime,
    /// When the session was last seen (written at most once per interval).
    pub last_seen_at: UnixTime,
    /// When the session ends unless extended.
    pub expires: UnixTime,
    /// The browser's user agent at sign-in (truncated).
    pub user_agent: Option<String>,
    /// When the session was revoked (sign-out, "sign out everywhere", an
    /// administrator), if it was.
    pub revoked_at: Option<UnixTime>,
}

impl SessionRecord {
    /// Whether the session is neither revoked nor expired at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && self.expires > now
    }
}

/// A session that a revocation just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// The session id: add it to revocation sets.
    pub id: SessionId,
    /// For a database-strategy session, the stored hash of its cookie token
    /// ([`session_token_hash`]), which is what caches key it under.
    pub token_hash: Option<String>,
}

/// A database session (Auth.js `Session`), found by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session record's id.
    pub id: SessionId,
    /// The signed-in user.
    pub user_id: UserId,
    /// The provider account the user signed in with, whose tokens the
    /// gateway keeps fresh for this session.
    pub account_id: Option<AccountId>,
    /// When the session ends unless extended.
    pub expires: UnixTime,
    /// When the expiry was last written (creation or the latest extension).
    pub updated_at: UnixTime,
}

/// A newly created session and the token to put in the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    /// The opaque session token for the cookie. Only its SHA-256 is stored.
    pub token: Secret,
    /// The stored session.
    pub session: Session,
}

/// Sliding-expiry parameters with Auth.js semantics (`session.maxAge`,
/// `session.updateAge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpiry {
    /// Lifetime granted by each extension.
    pub max_age: Duration,
    /// Extend at most once per this interval; zero extends on every touch.
    pub update_age: Duration,
}

impl Default for SessionExpiry {
    /// Auth.js defaults: 30 days, extended at most once a day.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl SessionExpiry {
    /// Whether a session last written at `updated_at` is due for an extension
    /// at `now`.
    pub fn is_due(&self, updated_at: UnixTime, now: UnixTime) -> bool {
        updated_at <= now.saturating_sub(self.update_age)
    }
}

/// A fresh random session token: 256 bits, base64url without padding.
pub fn generate_session_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// The form a session token is stored and cached under: lowercase hex of
/// SHA-256 of the token text. The token itself is never stored.
pub fn session_token_hash(token: &Secret) -> String {
    hex::encode(Sha256::digest(token.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_random_256_bit_values() {
        let a = generate_session_token();
        let b = generate_session_token();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
    }

    #[test]
    fn session_ids_are_random_256_bit_values() {
        let a = SessionId::generate();
        assert_ne!(a, SessionId::generate());
        assert_eq!(URL_SAFE_NO_PAD.decode(a.as_str()).unwrap().len(), 32);
    }

    #[test]
    fn stored_user_agents_are_cut_and_lose_control_characters() {
        let new = |ua: &str| NewSession {
            user_id: UserId::new("u"),
            account_id: None,
            now: UnixTime::from_secs(0),
            expires: UnixTime::from_secs(1),
            user_agent: Some(ua.to_owned()),
            provider_sid: None,
        };
        assert_eq!(
            new("Mozilla/5.0\u{1b}[31m\r\n")
                .stored_user_agent()
                .as_deref(),
            Some("Mozilla/5.0[31m")
        );
        let long = "é".repeat(MAX_USER_AGENT_CHARS + 10);
        assert_eq!(
            new(&long).stored_user_agent().map(|s| s.chars().count()),
            Some(MAX_USER_AGENT_CHARS)
        );
        assert_eq!(new(" \t ").stored_user_agent(), None);
    }

    #[test]
    fn session_token_hash_is_sha256_hex() {
        let h = session_token_hash(&Secret::new("abc"));
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn extension_is_due_once_update_age_has_passed() {
        let e = SessionExpiry {
            max_age: Duration::from_secs(100),
            update_age: Duration::from_secs(10),
        };
        let t = UnixTime::from_secs(1000);
        assert!(!e.is_due(t, UnixTime::from_secs(1009)));
        assert!(e.is_due(t, UnixTime::from_secs(1010)));
        let always = SessionExpiry {
            update_age: Duration::ZERO,
            ..e
        };
        assert!(always.is_due(t, t));
    }
}
