//! Short-lived sealed cookies of the sign-in flow: `state`, the PKCE code
//! verifier and the OIDC `nonce`.
//!
//! Each is a JWE like the session token (Auth.js v5 key derivation, salted
//! with the cookie's own name, so a value sealed for one cookie never opens
//! as another), lives 15 minutes, and is bound to the provider it was issued
//! for: a value from provider A is rejected on provider B's callback.

use super::error::{CookieError, KeyError};
use super::jwe::JweKeys;
use super::keys::Kdf;
use super::session::{check_times, parse_claims};
use crate::time::UnixTime;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a sign-in check cookie lives (Auth.js uses the same 15 minutes).
pub const CHECK_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// The kinds of sign-in check cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// The OAuth `state` parameter.
    State,
    /// The PKCE `code_verifier`.
    PkceVerifier,
    /// The OIDC `nonce`.
    Nonce,
}

impl CheckKind {
    /// The cookie name, `__Secure-` prefixed over https (Auth.js's names).
    pub fn cookie_name(self, secure: bool) -> &'static str {
        match (self, secure) {
            (CheckKind::State, false) => "authjs.state",
            (CheckKind::State, true) => "__Secure-authjs.state",
            (CheckKind::PkceVerifier, false) => "authjs.pkce.code_verifier",
            (CheckKind::PkceVerifier, true) => "__Secure-authjs.pkce.code_verifier",
            (CheckKind::Nonce, false) => "authjs.nonce",
            (CheckKind::Nonce, true) => "__Secure-authjs.nonce",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CheckClaims {
    value: String,
    provider: String,
    iat: i64,
    exp: i64,
}

/// Seals and opens sign-in check cookies.
#[derive(Clone)]
pub struct CheckCodec {
    secure: bool,
    state: JweKeys,
    pkce: JweKeys,
    nonce: JweKeys,
}

impl std::fmt::Debug for CheckCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckCodec")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl CheckCodec {
    /// Derives the keys for all three cookies. The first secret seals; all open.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S], secure: bool) -> Result<Self, KeyError> {
        let keys = |kind: CheckKind| JweKeys::new(Kdf::AuthJs, secrets, kind.cookie_name(secure));
        Ok(Self {
            secure,
            state: keys(CheckKind::State)?,
            pkce: keys(CheckKind::PkceVerifier)?,
            nonce: keys(CheckKind::Nonce)?,
        })
    }

    /// The cookie name for `kind`.
    pub fn cookie_name(&self, kind: CheckKind) -> &'static str {
        kind.cookie_name(self.secure)
    }

    fn keys(&self, kind: CheckKind) -> &JweKeys {
        match kind {
            CheckKind::State => &self.state,
            CheckKind::PkceVerifier => &self.pkce,
            CheckKind::Nonce => &self.nonce,
        }
    }

    /// Seals `value` for `provider`, valid for [`CHECK_MAX_AGE`] from `now`.
    pub fn seal(
        &self,
        kind: CheckKind,
        provider: &str,
        value: &str,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> String {
        let claims = CheckClaims {
            value: value.to_owned(),
            provider: provider.to_owned(),
            iat: now.as_secs(),
            exp: now.saturating_add(CHECK_MAX_AGE).as_secs(),
        };
        // A struct of strings and integers always serializes.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        self.keys(kind).encrypt(&payload, rng)
    }

    /// Opens a sealed value, checking its expiry and that it was issued for
    /// `provider`.
    pub fn open(
        &self,
        kind: CheckKind,
        provider: &str,
        token: &str,
        now: UnixTime,
    ) -> Result<String, CookieError> {
        let plaintext = self.keys(kind).decrypt(token)?;
        let claims: CheckClaims = parse_claims(&plaintext)?;
        check_times(Some(claims.exp), None, now)?;
        if claims.provider != provider {
            return Err(CookieError::ProviderMismatch);
        }
        Ok(claims.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    const SECRETS: [&str; 1] = ["test-secret-at-least-32-chars-long!!"];

    #[test]
    fn a_sealed_value_opens_for_its_provider_within_fifteen_minutes() {
        let codec = CheckCodec::new(&SECRETS, false).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let sealed = codec.seal(CheckKind::State, "op", "abc", now, &mut OsRng);
        let later = UnixTime::from_secs(now.as_secs() + 14 * 60);
        assert_eq!(
            codec.open(CheckKind::State, "op", &sealed, later),
            Ok("abc".into())
        );
    }

    #[test]
    fn a_value_sealed_for_another_provider_is_rejected() {
        let codec = CheckCodec::new(&SECRETS, false).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let sealed = codec.seal(CheckKind::Nonce, "github", "n", now, &mut OsRng);
        assert_eq!(
            codec.open(CheckKind::Nonce, "google", &sealed, now),
            Err(CookieError::ProviderMismatch)
        );
    }

    #[test]
    fn an_expired_value_is_rejected() {
        let codec = CheckCodec::new(&SECRETS, false).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let sealed = codec.seal(CheckKind::PkceVerifier, "op", "v", now, &mut OsRng);
        let late = UnixTime::from_secs(now.as_secs() + 16 * 60);
        assert!(matches!(
            codec.open(CheckKind::PkceVerifier, "op", &sealed, late),
            Err(CookieError::Expired { .. })
        ));
    }

    #[test]
    fn a_value_sealed_as_one_kind_does_not_open_as_another() {
        let codec = CheckCodec::new(&SECRETS, false).unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let sealed = codec.seal(CheckKind::State, "op", "s", now, &mut OsRng);
        assert_eq!(
            codec.open(CheckKind::Nonce, "op", &sealed, now),
            Err(CookieError::UnknownKid)
        );
    }
}
