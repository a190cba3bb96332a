//! authgate's domain core.
//!
//! Everything here is pure: no network, no files, no clock reads. Time arrives as a
//! [`time::UnixTime`] argument and randomness as an `RngCore + CryptoRng`
//! argument, so every function is deterministic under test.
//!
//! - [`adopt`]: recognising Auth.js "refresh token rotation" guide cookies
//!   (tokens inside the JWT) and the idempotent id their adoption uses.
//! - [`attributes`]: groups, roles and selected claims read from a provider's
//!   claims (dotted paths, distributed-groups refusal) and kept with the session.
//! - [`callback`]: the query of an OAuth authorization response (`code`,
//!   `state`, `error`, `iss`; a repeated one refused).
//! - [`client_secret`]: service-client secrets and the salted HMAC hashes
//!   the configuration keeps instead of them.
//! - [`cookie`]: the Auth.js-compatible session cookie codec (JWE `dir` with
//!   A256CBC-HS512 or A256GCM, HKDF keys, secret rotation by `kid`, chunking)
//!   and the sealed short-lived cookies of the sign-in flow (state, nonce,
//!   PKCE verifier).
//! - [`csrf`]: Auth.js's double-submit CSRF token.
//! - [`pkce`]: PKCE (S256) verifiers and challenges, state and nonce values.
//! - [`rate`]: rates (`"600/min"`) and the token-bucket limiter that enforces them.
//! - [`provider_error`]: the taxonomy of provider failures (what ends a grant, what is retried).
//! - [`redis_url`]: the Redis URLs `[cache] url` accepts (TLS, Sentinel), checked.
//! - [`refresh`]: the refresh state machine, retry policy and circuit breaker.
//! - [`signin`]: the sign-in decision: which address the provider vouches for,
//!   and whether to create, link, update or refuse.
//! - [`token`]: provider token sets and the expiry policy.
//! - [`secret`]: credential strings that never print.
//! - [`time`]: time as a value, and the [`time::Clock`] trait the edges read it from.

pub mod adopt;
pub mod attributes;
pub mod callback;
pub mod client_secret;
pub mod cookie;
pub mod csrf;
pub mod pkce;
pub mod provider_error;
pub mod rate;
pub mod redis_url;
pub mod refresh;
pub mod secret;
pub mod signin;
pub mod time;
pub mod token;
