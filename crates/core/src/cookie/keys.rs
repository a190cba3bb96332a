//! Key derivation for Auth.js-compatible JWEs.
//!
//! Auth.js never uses the configured secret directly: it derives a content
//! encryption key with HKDF-SHA256, using the cookie name as salt. The keys
//! are derived here once per secret, when a codec is built, and kept with
//! ready-to-use cipher states, so decoding a cookie does no key derivation.

use super::error::KeyError;
use aes::Aes256;
use aes::cipher::KeyInit;
use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::Hmac;
use sha2::{Digest, Sha256, Sha512};

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// HMAC-SHA-512, the MAC half of A256CBC-HS512.
pub(crate) type HmacSha512 = Hmac<Sha512>;

/// Which library's key derivation to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kdf {
    /// `@auth/core` (Auth.js v5): info `Auth.js Generated Encryption Key (<salt>)`.
    AuthJs,
    /// `next-auth` v4: info `NextAuth.js Generated Encryption Key` plus ` (<salt>)`
    /// when the salt is not empty.
    NextAuthV4,
}

/// The keys derived from one secret for one salt.
#[derive(Clone)]
pub(crate) struct DerivedKey {
    /// RFC 7638 thumbprint (SHA-512) of the 64-byte A256CBC-HS512 key.
    pub kid_cbc: String,
    /// RFC 7638 thumbprint (SHA-256) of the 32-byte A256GCM key.
    pub kid_gcm: String,
    /// Keyed HMAC state (first half of the 64-byte key); cloned per use.
    pub cbc_mac: HmacSha512,
    /// AES-256 key schedule (second half of the 64-byte key).
    pub cbc_cipher: Aes256,
    /// AES-256-GCM with the 32-byte key.
    pub gcm: Aes256Gcm,
}

impl DerivedKey {
    /// Derives both key lengths for `secret` and `salt`.
    pub(crate) fn derive(kdf: Kdf, secret: &[u8], salt: &str) -> Self {
        let key64 = derive_key(kdf, secret, salt);
        // HKDF-Expand's first block does not depend on the output length, so
        // the 32-byte key Auth.js derives for A256GCM is the 64-byte key's prefix.
        let (mac_key, enc_key) = key64.split_at(32);
        Self {
            kid_cbc: thumbprint::<Sha512>(&key64),
            kid_gcm: thumbprint::<Sha256>(mac_key),
            cbc_mac: keyed_hmac(mac_key),
            cbc_cipher: Aes256::new(enc_key.into()),
            gcm: Aes256Gcm::new(mac_key.into()),
        }
    }
}

/// HMAC-SHA-512 keyed with a key shorter than its 128-byte block. HMAC
/// zero-pads such keys, so padding here gives the same MAC infallibly.
pub(crate) fn keyed_hmac(key: &[u8]) -> HmacSha512 {
    let mut block = [0u8; 128];
    let n = key.len().min(block.len());
    block[..n].copy_from_slice(&key[..n]);
    <HmacSha512 as KeyInit>::new(&block.into())
}

/// HKDF-SHA256 of `secret` with `salt`, 64 bytes, with the info string of `kdf`.
pub(crate) fn derive_key(kdf: Kdf, secret: &[u8], salt: &str) -> [u8; 64] {
    let info = match kdf {
        Kdf::AuthJs => format!("Auth.js Generated Encryption Key ({salt})"),
        Kdf::NextAuthV4 if salt.is_empty() => "NextAuth.js Generated Encryption Key".to_owned(),
        Kdf::NextAuthV4 => format!("NextAuth.js Generated Encryption Key ({salt})"),
    };
    let mut okm = [0u8; 64];
    // 64 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(salt.as_bytes()), secret).expand(info.as_bytes(), &mut okm);
    okm
}

/// The RFC 7638 JWK thumbprint of a symmetric key, as `jose`'s
/// `calculateJwkThumbprint` computes it: the hash of
/// `{"k":"<base64url key>","kty":"oct"}`, base64url-encoded.
pub(crate) fn thumbprint<D: Digest>(key: &[u8]) -> String {
    let jwk = format!(r#"{{"k":"{}","kty":"oct"}}"#, URL_SAFE_NO_PAD.encode(key));
    URL_SAFE_NO_PAD.encode(D::digest(jwk.as_bytes()))
}

/// Checks a secret list: not empty, every secret long enough.
pub(crate) fn check_secrets<S: AsRef<[u8]>>(secrets: &[S]) -> Result<(), KeyError> {
    if secrets.is_empty() {
        return Err(KeyError::NoSecret);
    }
    for (index, s) in secrets.iter().enumerate() {
        let len = s.as_ref().len();
        if len < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort {
                index,
                len,
                min: MIN_SECRET_LEN,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-at-least-32-chars-long!!";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn authjs_key_matches_the_known_answer() {
        let key = derive_key(Kdf::AuthJs, SECRET, "authjs.session-token");
        assert_eq!(
            hex(&key),
            "d75ae14b6d210e8bc71ca7f714083c67f01af7e5f400ca3c39c14b1dfb30a83c\
             8a366d834d47a7cc61688bf412433b6e09cb8b629335d27d3b133e456e2cf6c1"
        );
    }

    #[test]
    fn authjs_kid_matches_the_known_answer() {
        let key = DerivedKey::derive(Kdf::AuthJs, SECRET, "authjs.session-token");
        assert_eq!(
            key.kid_cbc,
            "855N75YQ5wNYBp80LuzvDcSfbC8yMWap7SFiiuew3w2s_L6nWvH0S7p7YUxhQXk2fr_Xlkc8fxfsX71XAGBCrA"
        );
    }

    #[test]
    fn next_auth_v4_key_with_empty_salt_matches_the_known_answer() {
        let key = derive_key(Kdf::NextAuthV4, SECRET, "");
        assert_eq!(
            hex(&key[..32]),
            "c377c2fbee39266a927cb90aa6ba1178e120fbf5d638cc4b5a55767434d52403"
        );
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        assert_eq!(check_secrets::<&[u8]>(&[]), Err(KeyError::NoSecret));
        assert_eq!(
            check_secrets(&[SECRET, b"short".as_slice()]),
            Err(KeyError::SecretTooShort {
                index: 1,
                len: 5,
                min: 32
            })
        );
        assert_eq!(check_secrets(&[SECRET]), Ok(()));
    }
}
