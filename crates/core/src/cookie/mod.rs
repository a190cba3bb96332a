//! Auth.js-compatible cookies.
//!
//! The session cookie is a compact JWE (`alg: dir`) whose key is derived from
//! the configured secret with HKDF-SHA256, salted with the cookie's name:
//!
//! | format | cookie | enc | key | `kid` |
//! |---|---|---|---|---|
//! | [`CookieFormat::AuthJs`] (`@auth/core`, v5) | `authjs.session-token` | A256CBC-HS512 (A256GCM also read) | 64 bytes, info `Auth.js Generated Encryption Key (<name>)` | RFC 7638 thumbprint |
//! | [`CookieFormat::NextAuthV4`] (`next-auth` 4) | `next-auth.session-token` | A256GCM | 32 bytes, empty salt | none |
//!
//! [`SessionCodec`] encodes and decodes session claims; [`chunk`] splits a
//! long token over several cookies and reassembles it; [`CheckCodec`] seals
//! the short-lived `state`, PKCE and `nonce` cookies of the sign-in flow.
//! Every failure is a [`CookieError`] variant; nothing here panics on input.

pub mod chunk;
mod claims;
mod error;
mod jwe;
mod keys;
mod sealed;
mod session;

#[cfg(test)]
mod hostile_tests;

pub use claims::SessionClaims;
pub use error::{CookieError, JwePart, KeyError};
pub use jwe::MAX_TOKEN_LEN;
pub use keys::MIN_SECRET_LEN;
pub use sealed::{CHECK_MAX_AGE, CheckCodec, CheckKind};
pub use session::{CLOCK_TOLERANCE_SECS, CookieFormat, SessionCodec};
