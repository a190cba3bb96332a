//! What a request for an account's tokens came to: the one vocabulary the
//! edges use to turn a refresh [`Outcome`] into what the user sees.
//!
//! | resolution | examples | session | retry |
//! |---|---|---|---|
//! | [`Fresh`](Resolution::Fresh) | refreshed, or already fresh | kept | — |
//! | [`GrantEnded`](Resolution::GrantEnded) | revoked, no refresh token, account gone | ended (sign in again) | never |
//! | [`RetryAfter`](Resolution::RetryAfter) | provider or store unreachable, deadline passed | kept | after the hint |
//! | [`Rejected`](Resolution::Rejected) | `invalid_client`, nonsense from the provider | kept | no (operator must act) |
//!
//! The refresh machine's [`Outcome`] says *how* a refresh ended (useful for
//! metrics and tests); a [`Resolution`] says only what that means for the
//! session, so the HTTP edge maps it to a response in exactly one place.

use super::Outcome;
use crate::provider_error::ProviderErrorKind;
use crate::token::TokenSet;
use std::time::Duration;

/// What a request for an account's tokens came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Usable tokens (persisted before anyone sees them).
    Fresh(TokenSet),
    /// The grant is gone; the user must sign in again.
    GrantEnded,
    /// Tokens could not be made fresh now; the session is intact. Retry
    /// after the hint.
    RetryAfter(Duration),
    /// The provider refused the gateway's request (configuration or
    /// protocol); the session is intact, an operator must act.
    Rejected(ProviderErrorKind),
}

impl Resolution {
    /// A stable label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Resolution::Fresh(_) => "fresh",
            Resolution::GrantEnded => "grant_ended",
            Resolution::RetryAfter(_) => "retry_after",
            Resolution::Rejected(_) => "rejected",
        }
    }

    /// Whether asking again later may give fresh tokens.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Resolution::RetryAfter(_))
    }

    /// Whether the session ends (the user must sign in again).
    pub fn ends_grant(&self) -> bool {
        matches!(self, Resolution::GrantEnded)
    }
}

impl From<Outcome> for Resolution {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Refreshed { tokens, .. } | Outcome::AlreadyFresh { tokens, .. } => {
                Resolution::Fresh(tokens)
            }
            Outcome::Revoked | Outcome::NoRefreshToken | Outcome::AccountMissing => {
                Resolution::GrantEnded
            }
            Outcome::Unavailable { retry_after } => Resolution::RetryAfter(retry_after),
            Outcome::ProviderRejected(kind) => Resolution::Rejected(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_at: None,
            token_type: None,
            scope: None,
            id_token: None,
        }
    }

    #[test]
    fn every_outcome_resolves_to_what_it_means_for_the_session() {
        let cases = [
            (
                Outcome::Refreshed {
                    tokens: tokens(),
                    version: 2,
                },
                "fresh",
            ),
            (
                Outcome::AlreadyFresh {
                    tokens: tokens(),
                    version: 2,
                },
                "fresh",
            ),
            (Outcome::Revoked, "grant_ended"),
            (Outcome::NoRefreshToken, "grant_ended"),
            (Outcome::AccountMissing, "grant_ended"),
            (
                Outcome::Unavailable {
                    retry_after: Duration::from_secs(3),
                },
                "retry_after",
            ),
            (
                Outcome::ProviderRejected(ProviderErrorKind::Misconfigured),
                "rejected",
            ),
        ];
        for (outcome, label) in cases {
            let resolution = Resolution::from(outcome.clone());
            assert_eq!(resolution.as_str(), label, "{outcome:?}");
            assert_eq!(resolution.ends_grant(), label == "grant_ended");
            assert_eq!(resolution.is_retryable(), label == "retry_after");
        }
    }

    #[test]
    fn fresh_carries_the_tokens_and_retry_keeps_the_hint() {
        assert_eq!(
            Resolution::from(Outcome::AlreadyFresh {
                tokens: tokens(),
                version: 1
            }),
            Resolution::Fresh(tokens())
        );
        assert_eq!(
            Resolution::from(Outcome::Unavailable {
                retry_after: Duration::from_secs(7)
            }),
            Resolution::RetryAfter(Duration::from_secs(7))
        );
    }
}
