//! The typed failures of cookie decoding.

use thiserror::Error;

/// Which part of a compact JWE a failure refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwePart {
    /// The base64url protected header.
    Header,
    /// The encrypted key (must be empty for `alg: dir`).
    EncryptedKey,
    /// The initialization vector.
    Iv,
    /// The ciphertext.
    Ciphertext,
    /// The authentication tag.
    Tag,
}

/// Why a cookie value was rejected.
///
/// Every way a hostile or stale cookie can fail has its own variant, and no
/// variant carries the cookie's content, so an error can be logged as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CookieError {
    /// The value is empty.
    #[error("the cookie value is empty")]
    Empty,
    /// The value (or a header) is larger than any legitimate token.
    #[error("the cookie value is {len} bytes, more than the {max} allowed")]
    Oversized {
        /// Bytes received.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// Not five dot-separated segments.
    #[error("not a compact JWE: expected 5 segments, found {found}")]
    WrongSegmentCount {
        /// Segments found (counting stops at 6).
        found: usize,
    },
    /// A segment is not canonical unpadded base64url.
    #[error("the JWE {0:?} segment is not valid base64url")]
    BadBase64(JwePart),
    /// The protected header is not a JSON object of the expected shape.
    #[error("the JWE protected header is not valid JSON")]
    BadHeader,
    /// `alg` is something other than `dir`.
    #[error("unsupported JWE alg {0:?}: only \"dir\" is accepted")]
    UnsupportedAlg(String),
    /// `enc` is neither `A256CBC-HS512` nor `A256GCM` (or not the one this
    /// format accepts).
    #[error("unsupported JWE enc {0:?}")]
    UnsupportedEnc(String),
    /// The header asks for compression or critical extensions.
    #[error("unsupported JWE header parameter {0:?}")]
    UnsupportedHeaderParameter(&'static str),
    /// `alg: dir` carries no encrypted key, yet one was present.
    #[error("a dir-mode JWE must have an empty encrypted key")]
    UnexpectedEncryptedKey,
    /// A segment has the wrong length for the content encryption.
    #[error("the JWE {part:?} segment is {len} bytes, expected {expected}")]
    BadLength {
        /// The segment.
        part: JwePart,
        /// Its decoded length.
        len: usize,
        /// The length the algorithm requires (for the ciphertext: a multiple).
        expected: usize,
    },
    /// The `kid` names no configured secret.
    #[error("the token's kid matches no configured secret")]
    UnknownKid,
    /// The key was found by `kid` but the authentication tag does not match:
    /// the token was modified.
    #[error("the token failed authentication: it was tampered with")]
    Tampered,
    /// No `kid`, and no configured secret authenticates the token.
    #[error("the token failed authentication: encrypted with another secret or tampered with")]
    WrongKey,
    /// The plaintext is not a JSON object of claims.
    #[error("the token's payload is not a valid claims object ({0})")]
    BadPayload(&'static str),
    /// The token has no `exp` claim.
    #[error("the token has no exp claim")]
    MissingExpiry,
    /// `exp` is in the past (beyond the clock tolerance).
    #[error("the token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time it was checked at.
        now: i64,
    },
    /// `nbf` is in the future (beyond the clock tolerance).
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The time it was checked at.
        now: i64,
    },
    /// A sealed sign-in cookie was issued for another provider.
    #[error("the cookie was issued for another provider")]
    ProviderMismatch,
    /// A cookie name occurs twice in the request.
    #[error("the cookie {0:?} occurs more than once")]
    DuplicateCookie(String),
    /// Both the bare cookie and numbered chunks are present.
    #[error("both an unchunked and a chunked session cookie are present")]
    MixedChunks,
    /// A cookie looks like a chunk but its index is not a canonical number.
    #[error("the cookie {0:?} is not a valid chunk name")]
    BadChunkName(String),
    /// The chunk series has a gap.
    #[error("session cookie chunk {0} is missing")]
    MissingChunk(usize),
    /// More chunks than any legitimate session needs.
    #[error("the session cookie has more than {max} chunks")]
    TooManyChunks {
        /// The limit.
        max: usize,
    },
}

/// Why a set of secrets cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// No secret at all.
    #[error("at least one secret is required")]
    NoSecret,
    /// A secret shorter than [`crate::cookie::MIN_SECRET_LEN`] bytes.
    #[error("secret #{index} is {len} bytes; at least {min} are required")]
    SecretTooShort {
        /// Position in the list (0 encrypts).
        index: usize,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
}
