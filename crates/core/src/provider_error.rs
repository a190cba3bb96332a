//! The error taxonomy for answers from identity providers.
//!
//! Every provider failure — a network error, an HTTP status, an OAuth error
//! code, a provider's own dialect of one — is normalised into a
//! [`ProviderError`] whose [`ProviderErrorKind`] alone decides what happens
//! next. That decision is the heart of "honest failures":
//!
//! | kind | examples | tokens and session | retry |
//! |---|---|---|---|
//! | [`GrantRevoked`](ProviderErrorKind::GrantRevoked) | `invalid_grant`, GitHub's `bad_refresh_token` | cleared / ended | never |
//! | [`Transient`](ProviderErrorKind::Transient) | timeouts, resets, 5xx, 429, `temporarily_unavailable` | kept | with backoff |
//! | [`Misconfigured`](ProviderErrorKind::Misconfigured) | `invalid_client`, `unauthorized_client` | kept | no (operator must act) |
//! | [`Protocol`](ProviderErrorKind::Protocol) | unparseable body, missing `access_token` | kept | no |
//!
//! Only a definitive provider answer ends a session (DESIGN.md §2).

use std::fmt;
use std::time::Duration;

/// What a provider failure means for the user's grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The provider says the grant is gone for good (revoked, expired,
    /// reused). The stored tokens are useless; the user must sign in again.
    GrantRevoked,
    /// A failure that may pass: retry later. `retry_after` is the provider's
    /// hint (HTTP `Retry-After`), if it gave one.
    Transient {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The provider rejects our client configuration (credentials, grant
    /// type, scope). Tokens stay; an operator has to fix the config.
    Misconfigured,
    /// The provider answered something that is not valid OAuth.
    Protocol,
}

impl ProviderErrorKind {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, ProviderErrorKind::Transient { .. })
    }

    /// A stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::GrantRevoked => "grant_revoked",
            ProviderErrorKind::Transient { .. } => "transient",
            ProviderErrorKind::Misconfigured => "misconfigured",
            ProviderErrorKind::Protocol => "protocol",
        }
    }
}

/// A failed exchange with a provider.
///
/// Carries the kind (which decides what happens), the provider id, the HTTP
/// status and OAuth error code when there were any, a short description, and
/// the underlying cause. None of these ever holds a token: descriptions come
/// from the provider's `error_description`, truncated, and causes are
/// transport errors.
#[derive(Debug)]
pub struct ProviderError {
    /// What the failure means.
    pub kind: ProviderErrorKind,
    /// The provider's configured id.
    pub provider: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The OAuth `error` code (or the provider's variant of it).
    pub code: Option<String>,
    /// A human-readable description, at most [`MAX_DESCRIPTION`] characters.
    pub description: Option<String>,
    /// The transport or parse error behind it, if any.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The longest description kept from a provider's answer.
pub const MAX_DESCRIPTION: usize = 200;

impl ProviderError {
    /// A new error of `kind` for `provider`, with no details yet.
    pub fn new(kind: ProviderErrorKind, provider: impl Into<String>) -> Self {
        Self {
            kind,
            provider: provider.into(),
            status: None,
            code: None,
            description: None,
            source: None,
        }
    }

    /// Adds the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds the OAuth error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into().chars().take(64).collect());
        self
    }

    /// Adds a description, truncated to [`MAX_DESCRIPTION`] characters.
    pub fn with_description(mut self, description: impl AsRef<str>) -> Self {
        self.description = Some(description.as_ref().chars().take(MAX_DESCRIPTION).collect());
        self
    }

    /// Adds the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider {:?}: {}", self.provider, self.kind.as_str())?;
        if let Some(status) = self.status {
            write!(f, ", HTTP {status}")?;
        }
        if let Some(code) = &self.code {
            write!(f, ", error {code:?}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Classifies an OAuth error answer from a token endpoint (RFC 6749 §5.2).
///
/// `revoking_codes` are a provider's extra codes that mean "grant gone"
/// (GitHub's `bad_refresh_token`, for example); `invalid_grant` always does.
/// Used for answers that carry an error code, whatever their HTTP status:
/// GitHub sends them with 200, Auth0 with 403.
pub fn classify_oauth_error(
    status: u16,
    code: &str,
    revoking_codes: &[&str],
    retry_after: Option<Duration>,
) -> ProviderErrorKind {
    match code {
        "invalid_grant" => ProviderErrorKind::GrantRevoked,
        c if revoking_codes.contains(&c) => ProviderErrorKind::GrantRevoked,
        "temporarily_unavailable" | "server_error" | "slow_down" => {
            ProviderErrorKind::Transient { retry_after }
        }
        "invalid_client"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "incorrect_client_credentials"
        | "access_denied" => ProviderErrorKind::Misconfigured,
        _ => classify_status(status, retry_after),
    }
}

/// Classifies an HTTP failure without a usable OAuth error code: 429 and
/// 5xx are transient (as are 408 and 425), anything else is a protocol error.
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> ProviderErrorKind {
    match status {
        408 | 425 | 429 | 500..=599 => ProviderErrorKind::Transient { retry_after },
        _ => ProviderErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_grant_ends_the_grant_whatever_the_status() {
        for status in [200, 400, 401, 403] {
            assert_eq!(
                classify_oauth_error(status, "invalid_grant", &[], None),
                ProviderErrorKind::GrantRevoked
            );
        }
    }

    #[test]
    fn provider_specific_codes_can_revoke() {
        assert_eq!(
            classify_oauth_error(200, "bad_refresh_token", &["bad_refresh_token"], None),
            ProviderErrorKind::GrantRevoked
        );
        assert_eq!(
            classify_oauth_error(400, "bad_refresh_token", &[], None),
            ProviderErrorKind::Protocol
        );
    }

    #[test]
    fn overload_and_server_errors_are_transient_and_keep_the_hint() {
        let hint = Some(Duration::from_secs(7));
        assert_eq!(
            classify_oauth_error(503, "temporarily_unavailable", &[], hint),
            ProviderErrorKind::Transient { retry_after: hint }
        );
        assert!(classify_status(429, None).is_retryable());
        assert!(classify_status(502, None).is_retryable());
        assert!(!classify_status(404, None).is_retryable());
        assert_eq!(
            classify_oauth_error(500, "unknown_thing", &[], None),
            ProviderErrorKind::Transient { retry_after: None }
        );
    }

    #[test]
    fn client_configuration_errors_never_end_the_grant() {
        for code in [
            "invalid_client",
            "unauthorized_client",
            "incorrect_client_credentials",
        ] {
            let kind = classify_oauth_error(401, code, &[], None);
            assert_eq!(kind, ProviderErrorKind::Misconfigured);
            assert!(kind != ProviderErrorKind::GrantRevoked && !kind.is_retryable());
        }
    }

    #[test]
    fn display_truncates_descriptions() {
        let e = ProviderError::new(ProviderErrorKind::Protocol, "op")
            .with_status(400)
            .with_description("x".repeat(1000));
        assert!(e.to_string().len() < MAX_DESCRIPTION + 64);
    }
}
