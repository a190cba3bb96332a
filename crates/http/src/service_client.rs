//! Service clients: the servers and jobs — never browsers — that may call
//! authgate's service endpoints (`POST {base}/token` now; an endpoint guarded
//! by [`ServicePermission::Sessions`] later uses the same admission).
//!
//! `ServiceClients::admit` is the one gate, in this order:
//!
//! 1. **Credentials.** `Authorization: Basic base64(id:secret)`, or
//!    `Authorization: Bearer <secret>` together with `X-Service-Client: <id>`.
//!    The secret is checked against the configured hash
//!    ([`SecretHash::verify`]: one HMAC, constant-time comparison; see
//!    `authgate_core::client_secret` for why not a password hash). An
//!    unknown id is checked against a decoy hash, so an unknown client and a
//!    wrong secret get the same `401 invalid_client` after the same work.
//!    Cookies count for nothing here: without valid credentials the answer
//!    is 401 whatever the request carries.
//! 2. **No browsers.** A request with a browser's metadata — `Origin`
//!    (browsers send it on every `POST`) or any `Sec-*` header
//!    (`Sec-Fetch-Site`, `-Dest`, `-User`, `Sec-CH-UA…`, `Sec-GPC`; scripts
//!    can neither set nor remove them) — is refused (`403 access_denied`)
//!    even with valid credentials, so a secret that leaked into front-end
//!    code cannot hand provider tokens to a page. The one exception is
//!    `Sec-Fetch-Mode`: Node's `fetch` (undici) sends `Sec-Fetch-Mode: cors`
//!    on every request, and Node is where app servers run.
//! 3. **Rate limit** per client ([`ServiceClient::rate_limit`]; a token
//!    bucket, `authgate_core::rate`): `429` with `Retry-After`. Only
//!    authenticated calls count, so nobody can spend another client's budget.
//!
//! What the admitted `Caller` may do is then the endpoint's question
//! (`Caller::may`).

use crate::error::HttpError;
use crate::release::has_browser_metadata;
use authgate_core::client_secret::SecretHash;
use authgate_core::rate::{Rate, RateLimiter};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The header that names the client when the secret comes as a bearer token.
pub const SERVICE_CLIENT_HEADER: &str = "x-service-client";

/// The most characters of a client id (it is a metric label).
pub const MAX_CLIENT_ID: usize = 64;

/// The longest secret read from a request; longer ones are refused unread.
const MAX_SECRET_BYTES: usize = 512;

/// The one `Sec-*` header servers send too (Node's `fetch`).
const SEC_FETCH_MODE: &str = "sec-fetch-mode";

/// Standard base64, padded or not (RFC 7617 says padded; some clients omit it).
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a service client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServicePermission {
    /// `POST {base}/token` for the user whose session cookie it forwards.
    Token,
    /// `POST {base}/token` for any user, by `user_id` and `provider`.
    TokenOffline,
    /// The session administration API.
    Sessions,
}

impl ServicePermission {
    /// The permission as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ServicePermission::Token => "token",
            ServicePermission::TokenOffline => "token:offline",
            ServicePermission::Sessions => "sessions",
        }
    }
}

/// A configured service client.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    /// Its id (letters, digits, `.`, `-`, `_`; at most [`MAX_CLIENT_ID`]).
    pub id: String,
    /// The hash of its secret (`authgate secret --hash`).
    pub secret_hash: SecretHash,
    /// What it may do.
    pub allow: Vec<ServicePermission>,
    /// Its rate limit.
    pub rate_limit: Rate,
}

/// Why service clients could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceClientError {
    /// Two clients share an id.
    #[error("duplicate service client id {0:?}")]
    Duplicate(String),
    /// An id that is empty, too long, or has other characters than letters,
    /// digits, `.`, `-`, `_`.
    #[error("service client id {0:?} must be 1 to 64 letters, digits, `.`, `-` or `_`")]
    Id(String),
}

/// Why a request's client was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No usable credentials: 401 `invalid_client`, the same answer for
    /// every reason (the reason is only logged).
    InvalidClient(InvalidReason),
    /// A browser: 403 `access_denied`.
    Browser,
    /// Over the client's rate limit: 429 with `Retry-After`.
    RateLimited(Duration),
}

/// Why credentials were not accepted (for the audit log, never the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidReason {
    /// No `Authorization` header.
    Missing,
    /// Not one well-formed Basic or Bearer + `X-Service-Client` credential.
    Malformed,
    /// No client has this id.
    UnknownClient,
    /// The secret does not match the client's hash.
    WrongSecret,
}

impl InvalidReason {
    /// The reason as a log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvalidReason::Missing => "missing_credentials",
            InvalidReason::Malformed => "malformed_credentials",
            InvalidReason::UnknownClient => "unknown_client",
            InvalidReason::WrongSecret => "wrong_secret",
        }
    }
}

impl Refusal {
    /// The client-facing error (with `WWW-Authenticate` on 401).
    pub(crate) fn response(self) -> Response {
        let error = match self {
            Refusal::InvalidClient(_) => HttpError::unauthorized(
                "invalid_client",
                "Authenticate as a service client: HTTP Basic with the client id and secret, or Bearer with X-Service-Client.",
            ),
            Refusal::Browser => HttpError::forbidden(
                "access_denied",
                "Service endpoints do not answer browsers; call them from your server.",
            ),
            Refusal::RateLimited(wait) => HttpError {
                retry_after: Some(whole_seconds_up(wait)),
                ..HttpError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "This client is over its rate limit; retry after the time in Retry-After.",
                )
            },
        };
        let mut response = error.render(true, "");
        if let Refusal::InvalidClient(_) = self {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authgate\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// `wait` rounded up to whole seconds (a `Retry-After` that is early only
/// earns another 429).
fn whole_seconds_up(wait: Duration) -> Duration {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// One registered client and its rate-limit state.
#[derive(Debug)]
struct Registered {
    client: ServiceClient,
    limiter: Mutex<RateLimiter>,
}

/// An admitted service client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    client: &'a ServiceClient,
}

impl Caller<'_> {
    /// Its id.
    pub(crate) fn id(&self) -> &str {
        &self.client.id
    }

    /// Whether it may do `permission`.
    pub(crate) fn may(&self, permission: ServicePermission) -> bool {
        self.client.allow.contains(&permission)
    }
}

/// The configured service clients, by id.
#[derive(Debug)]
pub(crate) struct ServiceClients {
    by_id: HashMap<String, Registered>,
    decoy: SecretHash,
    /// The rate limiters' time origin.
    origin: Instant,
}

impl ServiceClients {
    /// Registers `clients`; ids must be plain and unique.
    pub(crate) fn new(clients: Vec<ServiceClient>) -> Result<Self, ServiceClientError> {
        let mut by_id = HashMap::with_capacity(clients.len());
        for client in clients {
            if !is_plain_id(&client.id) {
                return Err(ServiceClientError::Id(client.id));
            }
            if by_id.contains_key(&client.id) {
                return Err(ServiceClientError::Duplicate(client.id));
            }
            let limiter = Mutex::new(RateLimiter::new(client.rate_limit));
            by_id.insert(client.id.clone(), Registered { client, limiter });
        }
        Ok(Self {
            by_id,
            decoy: SecretHash::decoy(),
            origin: Instant::now(),
        })
    }

    /// Admits the request's client (see the module docs for the order of
    /// the checks).
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Result<Caller<'_>, Refusal> {
        let registered = self.authenticate(headers).map_err(Refusal::InvalidClient)?;
        if has_browser_metadata(headers, &[SEC_FETCH_MODE]) {
            return Err(Refusal::Browser);
        }
        let now = Instant::now().saturating_duration_since(self.origin);
        registered
            .limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check(now)
            .map_err(Refusal::RateLimited)?;
        Ok(Caller {
            client: &registered.client,
        })
    }

    /// Checks the request's credentials.
    fn authenticate(&self, headers: &HeaderMap) -> Result<&Registered, InvalidReason> {
        let (id, secret) = credentials(headers)?;
        // Unknown ids are checked against the decoy: the same work, the
        // same answer.
        let registered = self.by_id.get(&id);
        let hash = registered.map_or(&self.decoy, |r| &r.client.secret_hash);
        let verified = hash.verify(secret.as_bytes());
        match registered {
            Some(r) if verified => Ok(r),
            Some(_) => Err(InvalidReason::WrongSecret),
            None => Err(InvalidReason::UnknownClient),
        }
    }

    /// The id of the client a refused request claimed to be, when it is a
    /// configured one (for the audit log; an id nobody configured is never
    /// logged or counted).
    pub(crate) fn claimed_id(&self, headers: &HeaderMap) -> Option<&str> {
        let (id, _) = credentials(headers).ok()?;
        self.by_id.get_key_value(&id).map(|(id, _)| id.as_str())
    }
}

/// Whether `id` is a plain client id.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The request's `(id, secret)`: exactly one `Authorization` header, Basic
/// (an `X-Service-Client` beside it must name the same id) or Bearer with
/// exactly one `X-Service-Client`.
fn credentials(headers: &HeaderMap) -> Result<(String, String), InvalidReason> {
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    let value = match (authorization.next(), authorization.next()) {
        (None, _) => return Err(InvalidReason::Missing),
        (Some(value), None) => value.to_str().map_err(|_| InvalidReason::Malformed)?,
        (Some(_), Some(_)) => return Err(InvalidReason::Malformed),
    };
    let mut named = headers.get_all(SERVICE_CLIENT_HEADER).iter();
    let named = match (named.next(), named.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().map_err(|_| InvalidReason::Malformed)?),
        (Some(_), Some(_)) => return Err(InvalidReason::Malformed),
    };
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or(InvalidReason::Malformed)?;
    let rest = rest.trim();
    let (id, secret) = if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASIC.decode(rest).map_err(|_| InvalidReason::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| InvalidReason::Malformed)?;
        let (id, secret) = text.split_once(':').ok_or(InvalidReason::Malformed)?;
        if named.is_some_and(|n| n != id) {
            return Err(InvalidReason::Malformed);
        }
        (id.to_owned(), secret.to_owned())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let id = named.ok_or(InvalidReason::Malformed)?;
        (id.to_owned(), rest.to_owned())
    } else {
        return Err(InvalidReason::Malformed);
    };
    if !is_plain_id(&id) || secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(InvalidReason::Malformed);
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderName;
    use base64::engine::general_purpose;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SECRET: &str = "q8mS1oVxYt0b3Rj6gk2Zc7wPp9dLe4NfHaUiXyTzQ0A";

    fn clients(rate: &str) -> ServiceClients {
        ServiceClients::new(vec![ServiceClient {
            id: "next-server".to_owned(),
            secret_hash: SecretHash::new(SECRET.as_bytes(), &mut StdRng::seed_from_u64(1)),
            allow: vec![ServicePermission::Token],
            rate_limit: rate.parse().unwrap(),
        }])
        .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    fn refusal(c: &ServiceClients, pairs: &[(&str, &str)]) -> Refusal {
        c.admit(&headers(pairs)).unwrap_err()
    }

    #[test]
    fn basic_and_bearer_credentials_admit_the_client() {
        let c = clients("600/min");
        let caller = c
            .admit(&headers(&[(
                "authorization",
                &basic("next-server", SECRET),
            )]))
            .unwrap();
        assert_eq!(caller.id(), "next-server");
        assert!(caller.may(ServicePermission::Token));
        assert!(!caller.may(ServicePermission::TokenOffline));
        let unpadded = format!(
            "basic {}",
            general_purpose::STANDARD_NO_PAD.encode(format!("next-server:{SECRET}"))
        );
        assert!(c.admit(&headers(&[("authorization", &unpadded)])).is_ok());
        let bearer = format!("Bearer {SECRET}");
        let ok = headers(&[
            ("authorization", &bearer),
            ("x-service-client", "next-server"),
        ]);
        assert_eq!(c.admit(&ok).unwrap().id(), "next-server");
    }

    #[test]
    fn every_bad_credential_is_the_same_invalid_client() {
        use InvalidReason::*;
        let c = clients("600/min");
        let bearer = format!("Bearer {SECRET}");
        let cases: Vec<(Vec<(&str, String)>, InvalidReason)> = vec![
            (vec![], Missing),
            (
                vec![("cookie", "authjs.session-token=x".to_owned())],
                Missing,
            ),
            (
                vec![(
                    "authorization",
                    basic("next-server", "wrong-secret-wrong-secret-wrong-secret"),
                )],
                WrongSecret,
            ),
            (
                vec![("authorization", basic("other", SECRET))],
                UnknownClient,
            ),
            (vec![("authorization", bearer.clone())], Malformed),
            (
                vec![
                    ("authorization", bearer.clone()),
                    ("x-service-client", "other".to_owned()),
                ],
                UnknownClient,
            ),
            (
                vec![
                    ("authorization", basic("next-server", SECRET)),
                    ("x-service-client", "other".to_owned()),
                ],
                Malformed,
            ),
            (
                vec![
                    ("authorization", basic("next-server", SECRET)),
                    ("authorization", basic("next-server", SECRET)),
                ],
                Malformed,
            ),
            (vec![("authorization", "Basic !!!".to_owned())], Malformed),
            (vec![("authorization", basic("next-server", ""))], Malformed),
            (
                vec![("authorization", format!("Digest {SECRET}"))],
                Malformed,
            ),
            (vec![("authorization", basic("bad id", SECRET))], Malformed),
            (
                vec![("authorization", basic("next-server", &"x".repeat(600)))],
                Malformed,
            ),
        ];
        for (pairs, reason) in cases {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let r = refusal(&c, &pairs);
            assert_eq!(r, Refusal::InvalidClient(reason), "{pairs:?}");
            let response = r.response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().contains_key(WWW_AUTHENTICATE));
        }
    }

    #[test]
    fn browsers_are_refused_even_with_valid_credentials_but_node_fetch_is_not_a_browser() {
        let c = clients("600/min");
        let auth = basic("next-server", SECRET);
        for mark in [
            ("origin", "https://app.example"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-dest", "empty"),
            ("sec-fetch-user", "?1"),
            ("sec-ch-ua", "\"Chromium\";v=\"130\""),
            ("sec-gpc", "1"),
        ] {
            assert_eq!(
                refusal(&c, &[("authorization", &auth), mark]),
                Refusal::Browser,
                "{mark:?}"
            );
        }
        assert!(
            c.admit(&headers(&[
                ("authorization", &auth),
                ("sec-fetch-mode", "cors")
            ]))
            .is_ok(),
            "undici sends Sec-Fetch-Mode: cors on every request"
        );
    }

    #[test]
    fn a_client_over_its_rate_is_refused_with_a_whole_second_retry_after() {
        let c = clients("2/min");
        let auth = headers(&[("authorization", &basic("next-server", SECRET))]);
        assert!(c.admit(&auth).is_ok());
        assert!(c.admit(&auth).is_ok());
        let Refusal::RateLimited(wait) = c.admit(&auth).unwrap_err() else {
            panic!("expected a rate limit");
        };
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        let response = Refusal::RateLimited(wait).response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((26..=30).contains(&retry), "{retry}");
        // Failed authentications spend nothing.
        let other = clients("1/min");
        let wrong = headers(&[("authorization", &basic("next-server", "nope"))]);
        for _ in 0..5 {
            assert!(other.admit(&wrong).is_err());
        }
        assert!(other.admit(&auth).is_ok());
    }

    #[test]
    fn ids_must_be_plain_and_unique() {
        let client = |id: &str| ServiceClient {
            id: id.to_owned(),
            secret_hash: SecretHash::decoy(),
            allow: vec![],
            rate_limit: "1/s".parse().unwrap(),
        };
        assert_eq!(
            ServiceClients::new(vec![client("a"), client("a")]).unwrap_err(),
            ServiceClientError::Duplicate("a".to_owned())
        );
        assert!(matches!(
            ServiceClients::new(vec![client("a:b")]),
            Err(ServiceClientError::Id(_))
        ));
    }
}
