//! Service-client secrets and the hashes the configuration stores instead
//! of them (`[[service_clients]] secret_hash`).
//!
//! A secret is 32 random bytes (base64url, as `authgate secret` prints
//! them); its hash is `$hmac-sha256$<salt>$<mac>`: HMAC-SHA-256 of the
//! secret keyed with a 16-byte random salt, both in unpadded standard
//! base64 (the PHC string layout, so the hash names its own algorithm and a
//! stronger one can be added beside it).
//!
//! Why not a password hash (Argon2, scrypt, bcrypt)? A slow hash protects
//! *guessable* secrets: it makes each guess of an offline attacker who
//! stole the hashes expensive. These secrets are not guessable — 2^256
//! candidates stay out of reach at any hash cost — so a slow hash would buy
//! nothing, while it would cost tens of milliseconds of CPU on every request
//! (servers call the token endpoint per page render), and hand anyone who
//! can reach the endpoint a cheap way to burn that CPU with wrong secrets.
//! One HMAC costs about a microsecond, so verification needs no cache of
//! earlier successes either (a cache would be keyed by a digest of the
//! secret: the same work as verifying). The salt keeps two clients with the
//! same secret from having the same hash, and the comparison is constant
//! time ([`Mac::verify_slice`]).
//!
//! The price of this choice: a hash must come from a generated secret. Only
//! [`generate`] (`authgate secret --hash`) makes hashes, and
//! [`SecretHash::verify`] refuses any secret shorter than
//! [`MIN_SECRET_BYTES`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use serde::de::{self, Deserialize, Deserializer};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

use crate::secret::Secret;

/// The random bytes of a generated secret.
pub const SECRET_BYTES: usize = 32;

/// The shortest secret [`SecretHash::verify`] accepts, in bytes of its text
/// (a generated secret is 43 characters of base64url).
pub const MIN_SECRET_BYTES: usize = 32;

const SALT_BYTES: usize = 16;
const MAC_BYTES: usize = 32;
const ALGORITHM: &str = "hmac-sha256";

/// A stored secret hash: salt and HMAC. `Display` writes the
/// `$hmac-sha256$…$…` form that [`FromStr`] reads.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash {
    salt: [u8; SALT_BYTES],
    mac: [u8; MAC_BYTES],
}

/// Why a `secret_hash` value was refused. The value itself is never echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretHashError {
    /// Not `$hmac-sha256$<salt>$<mac>`.
    #[error(
        "not a secret hash: expected \"$hmac-sha256$<salt>$<hash>\" as printed by `authgate secret --hash`"
    )]
    Format,
    /// Another algorithm (e.g. an Argon2 or bcrypt hash).
    #[error(
        "unsupported hash algorithm {0:?}: expected \"hmac-sha256\" (generate one with `authgate secret --hash`)"
    )]
    Algorithm(String),
    /// Salt or MAC is not base64 of the right length.
    #[error(
        "the {0} part is not unpadded base64 of the right length (copy the whole line printed by `authgate secret --hash`)"
    )]
    Encoding(&'static str),
}

impl SecretHash {
    /// The hash of `secret` under a fresh random salt.
    pub fn new(secret: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; SALT_BYTES];
        rng.fill_bytes(&mut salt);
        let mac = keyed(&salt, secret).finalize().into_bytes().into();
        Self { salt, mac }
    }

    /// A hash no secret verifies against in practice, for an unknown client:
    /// checking a presented secret against it costs what checking a known
    /// client's costs, so the answer's timing does not tell whether the
    /// client exists.
    pub fn decoy() -> Self {
        Self {
            salt: [0x5a; SALT_BYTES],
            mac: [0; MAC_BYTES],
        }
    }

    /// Whether `presented` is the secret this hash was made from: one HMAC
    /// and a constant-time comparison, whatever the input. Secrets shorter
    /// than [`MIN_SECRET_BYTES`] never verify.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let matches = keyed(&self.salt, presented).verify_slice(&self.mac).is_ok();
        matches && presented.len() >= MIN_SECRET_BYTES
    }
}

/// HMAC-SHA-256 keyed with `salt`: the salt zero-padded to the hash's
/// block size is the same HMAC key (RFC 2104 §2), and infallible to build.
fn keyed(salt: &[u8; SALT_BYTES], secret: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..SALT_BYTES].copy_from_slice(salt);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(secret);
    mac
}

/// A new secret (32 random bytes, base64url) and its hash, for
/// `authgate secret --hash`.
pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> (Secret, SecretHash) {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut bytes);
    let secret = Secret::new(URL_SAFE_NO_PAD.encode(bytes));
    let hash = SecretHash::new(secret.as_bytes(), rng);
    (secret, hash)
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "${ALGORITHM}${}${}",
            STANDARD_NO_PAD.encode(self.salt),
            STANDARD_NO_PAD.encode(self.mac)
        )
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash($hmac-sha256$…)")
    }
}

impl FromStr for SecretHash {
    type Err = SecretHashError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.trim().split('$');
        let (Some(""), Some(algorithm), Some(salt), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(match text.trim().split('$').nth(1) {
                Some(algorithm) if text.starts_with('$') && algorithm != ALGORITHM => {
                    SecretHashError::Algorithm(algorithm.chars().take(32).collect())
                }
                _ => SecretHashError::Format,
            });
        };
        if algorithm != ALGORITHM {
            return Err(SecretHashError::Algorithm(
                algorithm.chars().take(32).collect(),
            ));
        }
        Ok(Self {
            salt: decode_exact(salt, "salt")?,
            mac: decode_exact(mac, "hash")?,
        })
    }
}

fn decode_exact<const N: usize>(
    text: &str,
    part: &'static str,
) -> Result<[u8; N], SecretHashError> {
    STANDARD_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or(SecretHashError::Encoding(part))
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn a_generated_secret_verifies_against_its_hash_and_nothing_else_does() {
        let mut rng = StdRng::seed_from_u64(7);
        let (secret, hash) = generate(&mut rng);
        assert_eq!(secret.len(), 43);
        assert!(hash.verify(secret.as_bytes()));
        let (other, other_hash) = generate(&mut rng);
        assert!(!hash.verify(other.as_bytes()));
        assert!(!other_hash.verify(secret.as_bytes()));
        assert!(!hash.verify(b""));
        assert!(!SecretHash::decoy().verify(secret.as_bytes()));
    }

    #[test]
    fn the_hash_is_standard_hmac_sha256_keyed_with_the_salt() {
        let salt = [7u8; SALT_BYTES];
        let standard = <Hmac<Sha256> as Mac>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"a service secret")
            .finalize()
            .into_bytes();
        let ours = keyed(&salt, b"a service secret").finalize().into_bytes();
        assert_eq!(ours, standard);
    }

    #[test]
    fn the_same_secret_hashes_differently_under_each_salt() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = SecretHash::new(b"0123456789abcdef0123456789abcdef", &mut rng);
        let b = SecretHash::new(b"0123456789abcdef0123456789abcdef", &mut rng);
        assert_ne!(a, b);
        assert!(a.verify(b"0123456789abcdef0123456789abcdef"));
        assert!(b.verify(b"0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn a_short_secret_never_verifies_even_against_its_own_hash() {
        let hash = SecretHash::new(b"password", &mut StdRng::seed_from_u64(3));
        assert!(!hash.verify(b"password"));
    }

    #[test]
    fn malformed_hashes_are_refused_with_a_reason_and_without_echoing_them() {
        let cases = [
            ("", SecretHashError::Format),
            ("hunter2-not-a-hash", SecretHashError::Format),
            (
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                SecretHashError::Algorithm("argon2id".to_owned()),
            ),
            ("$hmac-sha256$AAAA$AAAA", SecretHashError::Encoding("salt")),
            (
                "$hmac-sha256$AAAAAAAAAAAAAAAAAAAAAA$short",
                SecretHashError::Encoding("hash"),
            ),
            ("$hmac-sha256$$", SecretHashError::Encoding("salt")),
        ];
        for (text, expected) in cases {
            let error = text.parse::<SecretHash>().unwrap_err();
            assert_eq!(error, expected, "{text:?}");
            assert!(!error.to_string().contains("hunter2"));
        }
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(seed: u64, secret in proptest::collection::vec(any::<u8>(), 32..80)) {
            let hash = SecretHash::new(&secret, &mut StdRng::seed_from_u64(seed));
            let parsed: SecretHash = hash.to_string().parse().unwrap();
            prop_assert_eq!(&parsed, &hash);
            prop_assert!(parsed.verify(&secret));
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in ".{0,120}") {
            let _ = text.parse::<SecretHash>();
        }

        #[test]
        fn a_changed_secret_never_verifies(seed: u64, secret in proptest::collection::vec(any::<u8>(), 32..64), flip in 0usize..64) {
            let hash = SecretHash::new(&secret, &mut StdRng::seed_from_u64(seed));
            let mut other = secret.clone();
            let i = flip % other.len();
            other[i] ^= 1;
            prop_assert!(!hash.verify(&other));
        }
    }
}
