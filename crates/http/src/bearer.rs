//! API clients' bearer tokens on `api` routes: `Authorization: Bearer <JWT>`
//! verified by [`Catalog::verify_bearer`](authgate_oauth::Catalog::verify_bearer)
//! (the issuing provider's JWKS cache, `iss`, `aud`, `exp`/`nbf`/`iat`,
//! algorithm allow-list), its claims turned into a [`CurrentSession`] that
//! exists for this request only.
//!
//! * The token decides alone: a session cookie sent with it is ignored, a
//!   bad token is `401` with `WWW-Authenticate: Bearer error="invalid_token"`
//!   even when the cookie is good.
//! * Nothing is stored, refreshed or written: the session has no account,
//!   no record and no cookie ([`SessionSource::Bearer`]).
//! * Identity: `X-Auth-Request-User` is the token's `sub`; name, preferred
//!   user name, groups, roles and rule claims come from the token's claims
//!   through the provider's group sources. No e-mail address is taken from
//!   a bearer token (access tokens carry no `email_verified` the provider's
//!   vouching rules could check), so `allow_emails` / `allow_domains` rules
//!   refuse bearer callers.
//! * The client's `Authorization` header goes upstream unchanged (it is the
//!   client's own credential), unless `pass_authorization_header` makes the
//!   gateway own that header.

use crate::audit::AuditEvent;
use crate::error::HttpError;
use crate::gate::Verdict;
use crate::session::{CurrentSession, Identity, SessionSource};
use crate::state::Inner;
use authgate_core::time::UnixTime;
use authgate_oauth::BearerError;
use authgate_proxy::Permits;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::time::Duration;

/// How long a client should wait when the issuer's keys cannot be fetched.
const KEYS_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The request's bearer credential: `None` when it has no `Authorization`
/// header with the `Bearer` scheme (another scheme is the application's
/// business); `Some(None)` when it has one that cannot be read (several
/// `Authorization` headers, an empty or non-ASCII token).
pub(crate) fn credential(headers: &HeaderMap) -> Option<Option<&str>> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next()?;
    let bearer = |v: &HeaderValue| {
        v.as_bytes()
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer "))
    };
    let several = values.next().is_some();
    if !bearer(first) && !several {
        return None;
    }
    if several {
        return Some(None);
    }
    let token = first.to_str().ok().map(|v| v[7..].trim());
    Some(token.filter(|t| !t.is_empty() && !t.contains(' ')))
}

fn invalid_token(description: &'static str) -> HttpError {
    let mut error = HttpError::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
    error.www_authenticate = HeaderValue::from_str(&format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
    .ok();
    error
}

fn description(error: &BearerError) -> &'static str {
    match error {
        BearerError::Malformed(_) => "The bearer token is not a well-formed JWT.",
        BearerError::WrongType => "The bearer token is not an access token.",
        BearerError::Algorithm => "The bearer token's signature algorithm is not accepted.",
        BearerError::UnknownIssuer => "The bearer token's issuer is not accepted.",
        BearerError::UnknownKey => "No signing key of the issuer matches the bearer token.",
        BearerError::Signature => "The bearer token's signature does not verify.",
        BearerError::Audience => "The bearer token was not issued for this API.",
        BearerError::Expired => "The bearer token has expired.",
        BearerError::NotYetValid => "The bearer token is not valid yet.",
        BearerError::KeysUnavailable => "The issuer's signing keys cannot be fetched right now.",
        BearerError::Inactive => "The bearer token is not active.",
        BearerError::IntrospectionUnavailable => {
            "The issuer cannot be asked about the bearer token right now."
        }
    }
}

/// The verdict for an `api` request carrying `credential` (see
/// [`credential`]): allowed with a request-only session, `401
/// invalid_token`, `403` by the allow-lists, or `503` when the issuer's keys
/// cannot be fetched. Every refusal is audited; the token never is.
pub(crate) async fn verdict(
    inner: &Inner,
    credential: Option<&str>,
    method: &Method,
    allow: &(dyn Permits + Sync),
    return_to: &str,
    now: UnixTime,
) -> Verdict {
    let path = return_to.split('?').next().unwrap_or(return_to);
    let refuse = |provider: Option<&str>, reason: &str| {
        AuditEvent::BearerRefused {
            provider,
            reason,
            method: method.as_str(),
            path,
        }
        .emit();
    };
    let Some(token) = credential else {
        refuse(None, "credentials");
        return Verdict::Deny(invalid_token(
            "Send one Authorization header with one bearer token.",
        ));
    };
    let verified = match inner.catalog.verify_bearer(token, now).await {
        Ok(verified) => verified,
        Err(refusal) => {
            refuse(refusal.provider.as_deref(), refusal.error.reason());
            if let BearerError::KeysUnavailable | BearerError::IntrospectionUnavailable =
                refusal.error
            {
                return Verdict::Deny(HttpError::unavailable(
                    "ProviderUnavailable",
                    description(&refusal.error),
                    KEYS_RETRY_AFTER,
                ));
            }
            return Verdict::Deny(invalid_token(description(&refusal.error)));
        }
    };
    let provider = verified.provider.id().to_owned();
    let attributes = match verified.attributes(&inner.rule_claims) {
        Ok(attributes) => attributes,
        Err(_) => {
            refuse(Some(&provider), "groups_overage");
            return Verdict::Deny(invalid_token(
                "The bearer token's groups are not in the token.",
            ));
        }
    };
    let session = CurrentSession {
        identity: Identity {
            id: verified.subject.clone(),
            name: verified.name.clone(),
            email: None,
            image: None,
        },
        account: None,
        access_expires_at: None,
        expires: verified.expires_at,
        error: None,
        source: SessionSource::Bearer,
        attributes,
        sid: None,
        record_confirmed: false,
        cookie_names: Vec::new(),
        tokens: None,
        refreshed: false,
        replace_cookie: false,
        attributes_changed: false,
    };
    let who = session.subject();
    if !allow.permits(&who) {
        AuditEvent::AccessDenied {
            user: &session.identity.id,
            rule: allow
                .refusing_rule(&who)
                .unwrap_or(crate::gate::LONE_ALLOW_LIST),
            method: method.as_str(),
            path,
        }
        .emit();
        return Verdict::Deny(HttpError::forbidden(
            "Forbidden",
            "This token's subject may not use this API.",
        ));
    }
    Verdict::Allow(Some(Box::new(session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                AUTHORIZATION,
                HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("x")),
            );
        }
        h
    }

    #[test]
    fn only_the_bearer_scheme_is_a_credential() {
        assert_eq!(credential(&headers(&[])), None);
        assert_eq!(credential(&headers(&["Basic YTpi"])), None);
        assert_eq!(credential(&headers(&["Bearer a.b.c"])), Some(Some("a.b.c")));
        assert_eq!(credential(&headers(&["bearer a.b.c"])), Some(Some("a.b.c")));
        assert_eq!(credential(&headers(&["Bearer "])), Some(None));
        assert_eq!(credential(&headers(&["Bearer a b"])), Some(None));
        assert_eq!(credential(&headers(&["Bearer a", "Bearer b"])), Some(None));
        assert_eq!(credential(&headers(&["Basic x", "Bearer b"])), Some(None));
    }
}
