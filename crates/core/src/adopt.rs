//! Adopting "guide-style" Auth.js session cookies (pure decisions).
//!
//! Applications that followed Auth.js's refresh-token-rotation guide keep the
//! provider's `access_token`, `expires_at` (epoch seconds) and
//! `refresh_token` inside the JWT session cookie, and mark a failed refresh
//! with `error: "RefreshTokenError"`. authgate can take such a session over
//! (`[session] adopt_guide_cookies = "<provider id>"`): the refresh token
//! moves into the store, the cookie is rewritten without token material.
//!
//! This module decides, without I/O:
//! - [`classify`]: is a cookie's claim set a guide cookie, and can it be
//!   adopted ([`Guide`]);
//! - [`scrub`]: the claim set without the guide's token fields, so a cookie
//!   that is rewritten never carries them again;
//! - [`AdoptionKey::record_id`]: the session record id an adoption uses. It
//!   is derived from the refresh token (keyed HMAC, so it reveals nothing of
//!   it), which makes an adoption idempotent: every request that carries the
//!   same guide cookie — ten at once, or a replay a month later — names the
//!   same record, and the store's unique key on it lets exactly one create
//!   it. A replay after that record was revoked (sign-out) is signed out.
//!
//! The guide's `sub` is the Auth.js user id, which in the JWT strategy
//! without an adapter is the provider's account id (`profile.sub`). The
//! cookie's e-mail address was written by the application, not vouched for
//! by the provider: [`Guide::Adopt`]'s profile holds it as
//! [`Address::Unverified`], so it never links accounts or reaches an
//! allow-list.

use crate::cookie::SessionClaims;
use crate::secret::Secret;
use crate::signin::{Address, Profile};
use crate::time::UnixTime;
use crate::token::TokenSet;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The claim names the guide's `jwt` callback writes token material under;
/// [`scrub`] removes them (`id_token` too, which some variants add).
pub const TOKEN_CLAIMS: [&str; 4] = ["access_token", "refresh_token", "expires_at", "id_token"];

/// The claim under which authgate keeps its own session claims; a cookie
/// that has it is authgate's, never a guide cookie.
const GATEWAY_CLAIM: &str = "authgate";

/// What a decoded session cookie is, as far as adoption goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guide {
    /// Not a guide cookie: authgate's own, or a plain Auth.js cookie
    /// without token claims.
    NotGuide,
    /// A guide cookie that can be adopted.
    Adopt(Box<GuideGrant>),
    /// A guide cookie whose application already failed to refresh (any
    /// non-empty `error` claim, e.g. `RefreshTokenError`): the grant is
    /// over, the user must sign in again. Never adopted.
    GrantEnded,
    /// A guide cookie without a usable refresh token (or without a `sub`):
    /// there is nothing to adopt. Treated as a plain Auth.js cookie.
    NothingToAdopt,
}

/// The grant a guide cookie carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideGrant {
    /// Who the cookie names, as far as the application says: `sub` is the
    /// provider's account id; the e-mail is never verified.
    pub profile: Profile,
    /// The tokens (access token, refresh token, expiry).
    pub tokens: TokenSet,
}

/// Classifies a decoded session cookie's claims.
pub fn classify(claims: &SessionClaims) -> Guide {
    let extra = &claims.extra;
    if extra.contains_key(GATEWAY_CLAIM) || !TOKEN_CLAIMS.iter().any(|k| extra.contains_key(*k)) {
        return Guide::NotGuide;
    }
    let text = |key: &str| {
        extra
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if text("error").is_some() {
        return Guide::GrantEnded;
    }
    let (Some(sub), Some(refresh_token)) = (claims.sub.as_deref(), text("refresh_token")) else {
        return Guide::NothingToAdopt;
    };
    if sub.is_empty() {
        return Guide::NothingToAdopt;
    }
    // The guide writes `account.expires_at` (seconds); tolerate a float.
    let expires_at = extra.get("expires_at").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    });
    let tokens = TokenSet {
        access_token: Secret::new(text("access_token").unwrap_or_default()),
        refresh_token: Some(Secret::new(refresh_token)),
        expires_at: Some(UnixTime::from_secs(expires_at.unwrap_or(0).max(0))),
        token_type: Some("Bearer".to_owned()),
        scope: None,
        id_token: text("id_token").map(Secret::new),
    };
    let profile = Profile {
        sub: sub.to_owned(),
        name: claims.name.clone(),
        picture: claims.picture.clone(),
        email: match claims.email.as_deref() {
            Some(e) if !e.is_empty() => Address::Unverified,
            _ => Address::Absent,
        },
    };
    Guide::Adopt(Box::new(GuideGrant { profile, tokens }))
}

/// Removes the guide's token claims from `claims` (the cookie is rewritten
/// without them). Returns whether any was present.
pub fn scrub(claims: &mut SessionClaims) -> bool {
    let mut removed = false;
    for key in TOKEN_CLAIMS {
        removed |= claims.extra.remove(key).is_some();
    }
    removed
}

type HmacSha256 = Hmac<Sha256>;

/// The key that names adoption records; derived from the first session
/// secret, so every instance of a deployment derives the same ids.
#[derive(Clone)]
pub struct AdoptionKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for AdoptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdoptionKey(..)")
    }
}

impl AdoptionKey {
    /// Derives the key from `secret` (HKDF-SHA256, its own info string, so
    /// it shares nothing with the cookie keys).
    pub fn new(secret: &[u8]) -> Self {
        // A key of HMAC-SHA256's block size (64 bytes): `KeyInit::new` takes
        // it as is. 64 bytes is far below HKDF-SHA256's limit, so expand
        // cannot fail.
        let mut okm = [0u8; 64];
        let _ = Hkdf::<Sha256>::new(Some(b"authgate"), secret)
            .expand(b"authgate adopted guide session id", &mut okm);
        Self {
            mac: <HmacSha256 as KeyInit>::new(&okm.into()),
        }
    }

    /// The session record id that adopting `refresh_token` of `provider`
    /// uses: 256 bits, base64url — the format of every session id.
    pub fn record_id(&self, provider: &str, refresh_token: &Secret) -> String {
        let mut mac = self.mac.clone();
        mac.update(provider.as_bytes());
        mac.update(&[0]);
        mac.update(refresh_token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests;
