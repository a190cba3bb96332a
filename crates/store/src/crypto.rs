//! Encryption at rest for provider tokens: AES-256-GCM under a key ring.
//!
//! Every encrypted value is a self-describing string
//! `v1.<kid>.<base64url(nonce || ciphertext+tag)>`: the key id says which key
//! decrypts it, so keys can be rotated without a flag day. New values always use
//! the first (newest) key; every key in the ring still decrypts. The caller
//! supplies associated data (AAD) naming where the value lives (account row and
//! column), so a ciphertext copied to another row or column fails to decrypt.
//!
//! Keys come from configuration secrets, never from the database.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::sync::Arc;

/// Minimum length of a configuration secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// HKDF `info` that separates this key derivation from every other use of the
/// same secret (for example the Auth.js cookie keys).
const HKDF_INFO: &[u8] = b"authgate token encryption key";

/// Format tag of encrypted values.
const FORMAT_V1: &str = "v1";

/// Length of an AES-GCM nonce (96 bits).
const NONCE_LEN: usize = 12;

/// Why a key ring could not be built or a value could not be (de)crypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The key ring was built from an empty list of secrets.
    #[error("the token encryption key ring needs at least one secret")]
    NoSecrets,
    /// A secret is too short to derive a key from.
    #[error(
        "token encryption secret #{index} is {len} bytes; at least {MIN_SECRET_LEN} are required"
    )]
    SecretTooShort {
        /// Position of the secret in the list given to the key ring.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The stored value is not in the `v1.<kid>.<data>` format.
    #[error("encrypted value is malformed")]
    Malformed,
    /// The value was encrypted with a key that is not in the ring.
    #[error("encrypted value uses key id {kid}, which is not in the key ring")]
    UnknownKey {
        /// The key id found in the value.
        kid: String,
    },
    /// Authentication failed: wrong key, tampered value, or a value moved from
    /// another row or column.
    #[error("encrypted value failed authentication")]
    Authentication,
    /// The plaintext is not valid UTF-8.
    #[error("decrypted value is not UTF-8")]
    NotUtf8,
}

struct RingKey {
    kid: String,
    cipher: Aes256Gcm,
}

/// An ordered set of AES-256-GCM keys: the first encrypts, all decrypt.
///
/// Cheap to clone (the keys are shared). `Debug` prints only the key ids.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<[RingKey]>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.key_ids())
            .finish()
    }
}

impl KeyRing {
    /// Builds a key ring from configuration secrets, newest first.
    ///
    /// Each secret must be at least [`MIN_SECRET_LEN`] bytes. The 32-byte AES key
    /// is HKDF-SHA256(ikm = secret, no salt, info = `authgate token encryption
    /// key`); its key id is the first 8 bytes of SHA-256(key) in hex.
    pub fn from_secrets<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Self, CryptoError> {
        if secrets.is_empty() {
            return Err(CryptoError::NoSecrets);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, secret) in secrets.iter().enumerate() {
            let secret = secret.as_ref();
            if secret.len() < MIN_SECRET_LEN {
                return Err(CryptoError::SecretTooShort {
                    index,
                    len: secret.len(),
                });
            }
            let mut key = [0u8; 32];
            Hkdf::<Sha256>::new(None, secret)
                .expand(HKDF_INFO, &mut key)
                .map_err(|_| CryptoError::Malformed)?;
            let kid = hex::encode(&Sha256::digest(key)[..8]);
            let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| CryptoError::Malformed)?;
            key.fill(0);
            keys.push(RingKey { kid, cipher });
        }
        Ok(Self { keys: keys.into() })
    }

    /// The key id new values are encrypted with.
    pub fn current_key_id(&self) -> &str {
        // `from_secrets` guarantees at least one key.
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// All key ids, newest first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// The key id an encrypted value names, if the value is well-formed.
    pub fn key_id_of(value: &str) -> Option<&str> {
        let mut parts = value.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(FORMAT_V1), Some(kid), Some(_)) => Some(kid),
            _ => None,
        }
    }

    /// Encrypts `plaintext` under the newest key, bound to `aad`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        let key = self.keys.first().ok_or(CryptoError::NoSecrets)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)?;
        let mut data = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&ciphertext);
        Ok(format!(
            "{FORMAT_V1}.{}.{}",
            key.kid,
            URL_SAFE_NO_PAD.encode(data)
        ))
    }

    /// Decrypts a value produced by [`KeyRing::encrypt`] with the same `aad`.
    pub fn decrypt(&self, value: &str, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut parts = value.splitn(3, '.');
        let (Some(FORMAT_V1), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Malformed);
        };
        let key =
            self.keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or_else(|| CryptoError::UnknownKey {
                    kid: kid.to_owned(),
                })?;
        let data = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| CryptoError::Malformed)?;
        if data.len() < NONCE_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Authentication)
    }

    /// [`KeyRing::encrypt`] for text.
    pub fn encrypt_str(&self, plaintext: &str, aad: &[u8]) -> Result<String, CryptoError> {
        self.encrypt(plaintext.as_bytes(), aad)
    }

    /// [`KeyRing::decrypt`] for text.
    pub fn decrypt_str(&self, value: &str, aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(value, aad)?).map_err(|_| CryptoError::NotUtf8)
    }

    /// Whether `value` is encrypted under a key other than the newest one.
    pub fn needs_reencryption(&self, value: &str) -> bool {
        Self::key_id_of(value) != Some(self.current_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &str = "first-secret-that-is-at-least-32-bytes!";
    const S2: &str = "second-secret-that-is-at-least-32-bytes";

    fn ring(secrets: &[&str]) -> KeyRing {
        KeyRing::from_secrets(secrets).unwrap()
    }

    #[test]
    fn round_trips_and_never_contains_the_plaintext() {
        let r = ring(&[S1]);
        let v = r.encrypt_str("hello-token", b"aad").unwrap();
        assert!(!v.contains("hello-token"));
        assert!(v.starts_with(&format!("v1.{}.", r.current_key_id())));
        assert_eq!(r.decrypt_str(&v, b"aad").unwrap(), "hello-token");
    }

    #[test]
    fn same_plaintext_encrypts_differently_each_time() {
        let r = ring(&[S1]);
        assert_ne!(
            r.encrypt(b"x", b"a").unwrap(),
            r.encrypt(b"x", b"a").unwrap()
        );
    }

    #[test]
    fn other_aad_fails_authentication() {
        let r = ring(&[S1]);
        let v = r.encrypt(b"x", b"row-1:access_token").unwrap();
        assert_eq!(
            r.decrypt(&v, b"row-2:access_token"),
            Err(CryptoError::Authentication)
        );
    }

    #[test]
    fn old_keys_decrypt_and_new_writes_use_the_newest_key() {
        let old = ring(&[S1]);
        let v = old.encrypt(b"x", b"a").unwrap();
        let rotated = ring(&[S2, S1]);
        assert_eq!(rotated.decrypt(&v, b"a").unwrap(), b"x");
        assert!(rotated.needs_reencryption(&v));
        let v2 = rotated.encrypt(b"x", b"a").unwrap();
        assert_eq!(KeyRing::key_id_of(&v2), Some(rotated.current_key_id()));
        assert!(!rotated.needs_reencryption(&v2));
        let only_new = ring(&[S2]);
        assert!(matches!(
            only_new.decrypt(&v, b"a"),
            Err(CryptoError::UnknownKey { .. })
        ));
    }

    #[test]
    fn short_or_missing_secrets_are_refused() {
        assert_eq!(
            KeyRing::from_secrets(&["short"]).unwrap_err(),
            CryptoError::SecretTooShort { index: 0, len: 5 }
        );
        assert_eq!(
            KeyRing::from_secrets::<&str>(&[]).unwrap_err(),
            CryptoError::NoSecrets
        );
    }

    #[test]
    fn tampered_or_malformed_values_are_rejected() {
        let r = ring(&[S1]);
        let v = r.encrypt(b"x", b"a").unwrap();
        let mut tampered = v.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(r.decrypt(&tampered, b"a").is_err());
        assert_eq!(r.decrypt("plain", b"a"), Err(CryptoError::Malformed));
    }

    #[test]
    fn debug_shows_only_key_ids() {
        let r = ring(&[S1]);
        let d = format!("{r:?}");
        assert!(d.contains(r.current_key_id()));
    }
}
