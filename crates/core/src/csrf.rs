//! Auth.js's double-submit CSRF token.
//!
//! The cookie holds `token|sha256hex(token + secret)`; a form or JSON body
//! must submit the same `token`. The hash proves the cookie was minted by a
//! holder of the secret, so an attacker who can plant cookies on a sibling
//! domain cannot pick a token of their own. All comparisons are constant-time.

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The CSRF cookie's name: `__Host-` prefixed over https, as Auth.js does.
pub fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-authjs.csrf-token"
    } else {
        "authjs.csrf-token"
    }
}

/// A freshly minted CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken {
    /// The value forms submit (64 hex characters).
    pub token: String,
    /// The cookie value, `token|hash`.
    pub cookie_value: String,
}

/// Mints a token bound to `secret` (the first configured secret).
pub fn issue_csrf(secret: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> CsrfToken {
    let mut raw = [0u8; 32];
    rng.fill_bytes(&mut raw);
    let token = hex(&raw);
    let cookie_value = format!("{token}|{}", hex(&token_hash(&token, secret)));
    CsrfToken {
        token,
        cookie_value,
    }
}

/// The token inside a CSRF cookie, if the cookie was minted with one of
/// `secrets`; `None` for a forged or malformed cookie.
pub fn verified_cookie_token<'c, S: AsRef<[u8]>>(
    cookie_value: &'c str,
    secrets: &[S],
) -> Option<&'c str> {
    let (token, hash) = cookie_value.split_once('|')?;
    if token.is_empty() || token.len() > 128 || hash.len() != 64 {
        return None;
    }
    let valid = secrets.iter().fold(subtle::Choice::from(0), |acc, s| {
        acc | hex(&token_hash(token, s.as_ref()))
            .as_bytes()
            .ct_eq(hash.as_bytes())
    });
    bool::from(valid).then_some(token)
}

/// Whether a submitted token matches a genuine CSRF cookie.
pub fn verify_csrf<S: AsRef<[u8]>>(cookie_value: &str, submitted: &str, secrets: &[S]) -> bool {
    verified_cookie_token(cookie_value, secrets)
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(submitted.as_bytes())))
}

fn token_hash(token: &str, secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(secret);
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    const SECRET: &[u8] = b"test-secret-at-least-32-chars-long!!";

    #[test]
    fn cookie_value_is_token_pipe_sha256_of_token_and_secret() {
        let t = issue_csrf(SECRET, &mut OsRng);
        assert_eq!(t.token.len(), 64);
        let mut h = Sha256::new();
        h.update(format!(
            "{}{}",
            t.token,
            std::str::from_utf8(SECRET).unwrap()
        ));
        assert_eq!(
            t.cookie_value,
            format!("{}|{}", t.token, hex(&h.finalize()))
        );
    }

    #[test]
    fn matching_submission_verifies_under_any_configured_secret() {
        let t = issue_csrf(SECRET, &mut OsRng);
        let rotated: [&[u8]; 2] = [b"a-brand-new-secret-of-32-bytes-or-more", SECRET];
        assert!(verify_csrf(&t.cookie_value, &t.token, &rotated));
        assert!(verify_csrf(&t.cookie_value, &t.token, &[SECRET]));
    }

    #[test]
    fn wrong_submission_forged_cookie_and_garbage_are_rejected() {
        let t = issue_csrf(SECRET, &mut OsRng);
        assert!(!verify_csrf(&t.cookie_value, "nope", &[SECRET]));
        let forged = format!("{}|{}", "a".repeat(64), "0".repeat(64));
        assert!(!verify_csrf(&forged, &"a".repeat(64), &[SECRET]));
        assert!(!verify_csrf("no-pipe", "no-pipe", &[SECRET]));
        assert!(!verify_csrf("|", "", &[SECRET]));
        let other: [&[u8]; 1] = [b"some-other-secret-that-is-long-enough"];
        assert!(!verify_csrf(&t.cookie_value, &t.token, &other));
    }
}
