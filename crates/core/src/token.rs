//! Provider token sets and the expiry policy that decides when one is stale.

use crate::secret::Secret;
use crate::time::UnixTime;
use std::time::Duration;

/// The tokens a provider issued for one account, as the store keeps them.
///
/// Field meanings follow Auth.js's `Account` model (`access_token`,
/// `refresh_token`, `expires_at` in epoch seconds, `token_type`, `scope`,
/// `id_token`). Credentials are [`Secret`]s, so `Debug` never prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The bearer credential for the provider's APIs.
    pub access_token: Secret,
    /// The credential that obtains new access tokens; lives only in the store.
    pub refresh_token: Option<Secret>,
    /// When the access token expires; `None` when the provider did not say.
    pub expires_at: Option<UnixTime>,
    /// Usually `Bearer`.
    pub token_type: Option<String>,
    /// Space-separated scopes the provider granted.
    pub scope: Option<String>,
    /// The OpenID Connect ID token of the latest grant, if any.
    pub id_token: Option<Secret>,
}

impl TokenSet {
    /// Merges a refresh response into this set: the new access token and
    /// expiry replace the old ones, and the refresh token is kept when the
    /// provider sent none (Google does not rotate; RFC 6749 §6 allows both).
    pub fn merge_refreshed(&self, refreshed: TokenSet) -> TokenSet {
        TokenSet {
            refresh_token: refreshed
                .refresh_token
                .or_else(|| self.refresh_token.clone()),
            id_token: refreshed.id_token.or_else(|| self.id_token.clone()),
            scope: refreshed.scope.or_else(|| self.scope.clone()),
            ..refreshed
        }
    }
}

/// When a token counts as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// How long before `expires_at` a token is already treated as expired,
    /// so that it does not expire in flight to the upstream.
    pub skew: Duration,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            skew: Duration::from_secs(60),
        }
    }
}

impl ExpiryPolicy {
    /// Stale when `now >= expires_at - skew`. A token without an expiry is
    /// never stale: it is not refreshed proactively.
    pub fn is_stale(&self, expires_at: Option<UnixTime>, now: UnixTime) -> bool {
        match expires_at {
            Some(exp) => now >= exp.saturating_sub(self.skew),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(access: &str, refresh: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            expires_at: Some(UnixTime::from_secs(100)),
            token_type: Some("Bearer".into()),
            scope: Some("openid".into()),
            id_token: None,
        }
    }

    #[test]
    fn stale_exactly_at_expiry_minus_skew() {
        let p = ExpiryPolicy {
            skew: Duration::from_secs(10),
        };
        let exp = Some(UnixTime::from_secs(100));
        assert!(!p.is_stale(exp, UnixTime::from_secs(89)));
        assert!(p.is_stale(exp, UnixTime::from_secs(90)));
        assert!(p.is_stale(exp, UnixTime::from_secs(1000)));
    }

    #[test]
    fn token_without_expiry_is_never_stale() {
        assert!(!ExpiryPolicy::default().is_stale(None, UnixTime::from_secs(i64::MAX)));
    }

    #[test]
    fn refresh_without_new_refresh_token_keeps_the_old_one() {
        let old = set("a1", Some("r1"));
        let merged = old.merge_refreshed(set("a2", None));
        assert_eq!(merged.access_token.expose(), "a2");
        assert_eq!(
            merged.refresh_token.as_ref().map(Secret::expose),
            Some("r1")
        );
    }

    #[test]
    fn rotated_refresh_token_replaces_the_old_one() {
        let merged = set("a1", Some("r1")).merge_refreshed(set("a2", Some("r2")));
        assert_eq!(
            merged.refresh_token.as_ref().map(Secret::expose),
            Some("r2")
        );
    }
}
