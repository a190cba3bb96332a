//! The `iss` parameter of an authorization response (RFC 9207): which
//! authorization server answered. A client with several providers checks it
//! before it redeems the code, so that a response from one provider cannot
//! be passed off as another's (the mix-up attack).
//!
//! - `iss` present: it must be the provider's issuer, compared as a string
//!   (RFC 9207 §2.4), or one of the preset's alternate issuers, or — for a
//!   multi-directory provider whose issuer holds `{tenantid}` — that issuer
//!   with one directory id in its place.
//! - `iss` absent: accepted, unless the provider's discovery document says
//!   `authorization_response_iss_parameter_supported: true`.
//! - A plain OAuth 2.0 provider without an issuer identifier has nothing to
//!   compare with: accepted.

use crate::provider::Provider;

/// Why an authorization response's `iss` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseIssuerError {
    /// `iss` names another issuer.
    #[error("the authorization response names another issuer")]
    Mismatch,
    /// The provider sends `iss` with every response, and this one has none.
    #[error("the authorization response has no `iss`, which this provider always sends")]
    Missing,
}

impl Provider {
    /// Checks an authorization response's `iss` (see the module docs).
    pub fn check_response_issuer(&self, iss: Option<&str>) -> Result<(), ResponseIssuerError> {
        match (iss, self.issuer()) {
            (Some(iss), Some(issuer)) if self.names_issuer(iss, issuer) => Ok(()),
            (Some(_), Some(_)) => Err(ResponseIssuerError::Mismatch),
            (Some(_), None) => Ok(()),
            (None, _) if self.quirks.response_iss_required => Err(ResponseIssuerError::Missing),
            (None, _) => Ok(()),
        }
    }

    fn names_issuer(&self, iss: &str, issuer: &str) -> bool {
        if iss == issuer || self.quirks.alternate_issuers.iter().any(|a| a == iss) {
            return true;
        }
        if !self.quirks.tenant_issuer_template {
            return false;
        }
        let Some((before, after)) = issuer.split_once("{tenantid}") else {
            return false;
        };
        iss.strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .is_some_and(|tenant| {
                !tenant.is_empty()
                    && tenant
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    }
}
