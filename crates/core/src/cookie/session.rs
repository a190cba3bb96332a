//! The session cookie codec.

use super::claims::SessionClaims;
use super::error::{CookieError, KeyError};
use super::jwe::JweKeys;
use super::keys::Kdf;
use crate::time::UnixTime;
use rand::{CryptoRng, RngCore};
use std::time::Duration;

/// Clock tolerance when checking `exp` and `nbf`, as Auth.js's `decode` allows.
pub const CLOCK_TOLERANCE_SECS: i64 = 15;

/// Which Auth.js generation's cookie to read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieFormat {
    /// Auth.js v5 (`@auth/core`): `authjs.session-token`, A256CBC-HS512 with a
    /// `kid`; A256GCM is also read.
    #[default]
    AuthJs,
    /// next-auth v4: `next-auth.session-token`, A256GCM, no `kid`, empty HKDF
    /// salt. With several secrets, decoding tries each in order.
    NextAuthV4,
}

impl CookieFormat {
    /// The session cookie's name: `__Secure-` prefixed when served over https.
    pub fn session_cookie_name(self, secure: bool) -> &'static str {
        match (self, secure) {
            (CookieFormat::AuthJs, false) => "authjs.session-token",
            (CookieFormat::AuthJs, true) => "__Secure-authjs.session-token",
            (CookieFormat::NextAuthV4, false) => "next-auth.session-token",
            (CookieFormat::NextAuthV4, true) => "__Secure-next-auth.session-token",
        }
    }

    /// The chunk size this format's library writes.
    pub fn chunk_size(self) -> usize {
        match self {
            CookieFormat::AuthJs => super::chunk::AUTHJS_CHUNK_SIZE,
            CookieFormat::NextAuthV4 => super::chunk::NEXT_AUTH_V4_CHUNK_SIZE,
        }
    }
}

/// Encodes and decodes session tokens, byte-compatible with Auth.js.
///
/// Keys are derived once, in [`SessionCodec::new`]; encoding and decoding do
/// no key derivation. The codec never reads the clock: `now` is a parameter.
#[derive(Clone)]
pub struct SessionCodec {
    format: CookieFormat,
    cookie_name: &'static str,
    keys: JweKeys,
}

impl std::fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCodec")
            .field("format", &self.format)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl SessionCodec {
    /// Builds a codec. The first secret encrypts; all decrypt (by `kid` for
    /// Auth.js v5). `secure` selects the `__Secure-` cookie name, which is
    /// also the HKDF salt in v5 (v4 uses an empty salt).
    pub fn new<S: AsRef<[u8]>>(
        format: CookieFormat,
        secrets: &[S],
        secure: bool,
    ) -> Result<Self, KeyError> {
        let cookie_name = format.session_cookie_name(secure);
        let keys = match format {
            CookieFormat::AuthJs => JweKeys::new(Kdf::AuthJs, secrets, cookie_name)?,
            CookieFormat::NextAuthV4 => JweKeys::new(Kdf::NextAuthV4, secrets, "")?,
        };
        Ok(Self {
            format,
            cookie_name,
            keys,
        })
    }

    /// The underlying JWE keys, for building hostile tokens in tests.
    #[cfg(test)]
    pub(crate) fn jwe_keys(&self) -> &JweKeys {
        &self.keys
    }

    /// The cookie format.
    pub fn format(&self) -> CookieFormat {
        self.format
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        self.cookie_name
    }

    /// Encrypts `claims` into a token, setting `iat = now`,
    /// `exp = now + max_age` and a fresh random `jti`, as Auth.js does.
    pub fn encode(
        &self,
        claims: &SessionClaims,
        now: UnixTime,
        max_age: Duration,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> String {
        let mut jti = [0u8; 16];
        rng.fill_bytes(&mut jti);
        let claims = SessionClaims {
            iat: Some(now.as_secs()),
            exp: Some(now.saturating_add(max_age).as_secs()),
            jti: Some(
                uuid::Builder::from_random_bytes(jti)
                    .into_uuid()
                    .to_string(),
            ),
            ..claims.clone()
        };
        // Serializing a struct of strings, integers and a JSON map cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        self.keys.encrypt(&payload, rng)
    }

    /// Authenticates, decrypts and validates a token: `exp` must be present
    /// and, like `nbf`, hold at `now` within [`CLOCK_TOLERANCE_SECS`].
    pub fn decode(&self, token: &str, now: UnixTime) -> Result<SessionClaims, CookieError> {
        let plaintext = self.keys.decrypt(token)?;
        let claims: SessionClaims = parse_claims(&plaintext)?;
        check_times(claims.exp, claims.nbf, now)?;
        Ok(claims)
    }
}

/// Parses a JSON claims object, mapping failures to a content-free error.
///
/// The plaintext is checked as UTF-8 once, up front, and parsed as a `str`:
/// `serde_json::from_slice` would validate every string it meets on its own,
/// which made claims parsing about 20 % slower (BENCHMARKS.md §1b). Invalid
/// UTF-8 is refused either way, as "not JSON".
pub(crate) fn parse_claims<T: serde::de::DeserializeOwned>(
    plaintext: &[u8],
) -> Result<T, CookieError> {
    let text = std::str::from_utf8(plaintext).map_err(|_| CookieError::BadPayload("not JSON"))?;
    serde_json::from_str(text).map_err(|e| {
        CookieError::BadPayload(match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
            serde_json::error::Category::Data => "a claim has the wrong type",
            serde_json::error::Category::Io => "unreadable",
        })
    })
}

/// Checks `exp` (required) and `nbf` against `now` with the clock tolerance.
pub(crate) fn check_times(
    exp: Option<i64>,
    nbf: Option<i64>,
    now: UnixTime,
) -> Result<(), CookieError> {
    let now = now.as_secs();
    let exp = exp.ok_or(CookieError::MissingExpiry)?;
    if exp <= now.saturating_sub(CLOCK_TOLERANCE_SECS) {
        return Err(CookieError::Expired { exp, now });
    }
    if let Some(nbf) = nbf
        && nbf > now.saturating_add(CLOCK_TOLERANCE_SECS)
    {
        return Err(CookieError::NotYetValid { nbf, now });
    }
    Ok(())
}
