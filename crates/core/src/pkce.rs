//! PKCE (RFC 7636, S256 only), `state` and `nonce` values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// A PKCE pair: the verifier stays with us (sealed in a cookie), the
/// challenge goes to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// 43 base64url characters (32 random bytes).
    pub verifier: String,
    /// `base64url(sha256(verifier))`.
    pub challenge: String,
}

/// The only `code_challenge_method` authgate sends.
pub const PKCE_METHOD: &str = "S256";

impl Pkce {
    /// A fresh random pair.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let verifier = random_value(rng);
        let challenge = s256_challenge(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

/// The S256 challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes as unpadded base64url: for `state`, `nonce` and verifiers.
pub fn random_value(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut raw = [0u8; 32];
    rng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_43_chars_and_unique() {
        let a = Pkce::generate(&mut OsRng);
        let b = Pkce::generate(&mut OsRng);
        assert_eq!(a.verifier.len(), 43);
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, s256_challenge(&a.verifier));
    }
}
