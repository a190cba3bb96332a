//! The gateway's shared state.

use crate::cookies::CookiePolicy;
use crate::gate::AllowList;
use crate::session::Identity;
use crate::settings::GatewaySettings;
use authgate_core::cookie::{CheckCodec, SessionCodec};
use authgate_core::secret::Secret;
use authgate_core::time::Clock;
use authgate_oauth::Catalog;
use authgate_proxy::{ReverseProxy, RouteRules};
use authgate_refresh::{ActiveAccounts, RefreshService};
use authgate_store::{Store, UserId};
use std::sync::Arc;

/// The gateway: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("public_url", &self.inner.settings.public_url.as_str())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub settings: GatewaySettings,
    pub secrets: Vec<Secret>,
    pub session_codec: SessionCodec,
    pub checks: CheckCodec,
    pub cookies: CookiePolicy,
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub refresh: RefreshService,
    pub clock: Arc<dyn Clock>,
    /// User profiles by id, so database sessions need no user query per request.
    pub users: moka::sync::Cache<String, Identity>,
    /// Provider id by account id (it never changes), so database sessions
    /// need no account query per request.
    pub account_providers: moka::sync::Cache<String, String>,
    /// Accounts of active sessions (background refresh mode).
    pub active: Arc<ActiveAccounts>,
    /// Route rules and their allow-lists.
    pub routes: Routes,
    /// The upstream, in reverse-proxy mode.
    pub upstream: Option<ReverseProxy>,
}

/// Route rules with each rule's allow-list (same order).
#[derive(Debug, Clone)]
pub struct Routes {
    /// The compiled rules.
    pub rules: RouteRules,
    /// Allow-lists by rule index.
    pub allow: Vec<AllowList>,
}

impl Routes {
    /// The access and allow-list for a request.
    ///
    /// A path that resolves to `public` is judged again as the upstream might
    /// read it — case-folded (Express, ASP.NET route case-insensitively) and
    /// without `;` segment parameters (Tomcat, Spring drop them) — and the
    /// stricter answer wins, so `/PROTECTED/x` and `/protected;x=1/y` are as
    /// protected as `/protected/x`.
    pub fn resolve(
        &self,
        method: &axum::http::Method,
        path: &authgate_proxy::NormalizedPath,
    ) -> (authgate_proxy::Access, AllowList) {
        let exact = self.lookup(method, path);
        if exact.0 != authgate_proxy::Access::Public {
            return exact;
        }
        let folded = path.path().to_ascii_lowercase();
        let unparameterised: String = path
            .path()
            .split('/')
            .map(|segment| segment.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/");
        let both = unparameterised.to_ascii_lowercase();
        for reading in [folded, unparameterised, both] {
            if reading == path.path() {
                continue;
            }
            if let Ok(other) = authgate_proxy::normalize(&reading) {
                let judged = self.lookup(method, &other);
                if judged.0 != authgate_proxy::Access::Public {
                    return judged;
                }
            }
        }
        exact
    }

    fn lookup(
        &self,
        method: &axum::http::Method,
        path: &authgate_proxy::NormalizedPath,
    ) -> (authgate_proxy::Access, AllowList) {
        match self.rules.find(method, path) {
            Some(m) => (
                m.rule.access,
                self.allow.get(m.index).cloned().unwrap_or_default(),
            ),
            None => (self.rules.default_access(), AllowList::default()),
        }
    }
}

impl Gateway {
    /// The settings in force.
    pub fn settings(&self) -> &GatewaySettings {
        &self.inner.settings
    }
}

impl Inner {
    /// The first secret: it signs CSRF tokens.
    pub fn signing_secret(&self) -> &[u8] {
        self.secrets
            .first()
            .map(Secret::as_bytes)
            .unwrap_or_default()
    }

    /// The provider of an account, from the in-process cache or the store.
    pub async fn provider_of(
        &self,
        account: &authgate_store::AccountId,
    ) -> Result<Option<String>, authgate_store::StoreError> {
        if let Some(provider) = self.account_providers.get(account.as_str()) {
            return Ok(Some(provider));
        }
        let found = self.store.find_account(account).await?;
        Ok(found.map(|a| {
            self.account_providers
                .insert(account.as_str().to_owned(), a.provider.clone());
            a.provider
        }))
    }

    /// A user's identity, from the in-process cache or the store.
    pub async fn identity_of(
        &self,
        user: &UserId,
    ) -> Result<Option<Identity>, authgate_store::StoreError> {
        if let Some(identity) = self.users.get(user.as_str()) {
            return Ok(Some(identity));
        }
        Ok(self.store.find_user(user).await?.map(|u| {
            let identity = Identity {
                id: u.id.as_str().to_owned(),
                name: u.name,
                email: u.email,
                image: u.image,
            };
            self.users
                .insert(user.as_str().to_owned(), identity.clone());
            identity
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authgate_proxy::{Access, RouteRule, normalize};
    use axum::http::Method;

    fn routes() -> Routes {
        Routes {
            rules: RouteRules::new(vec![
                RouteRule::new("/admin/**", Access::Protected).with_methods([Method::POST]),
                RouteRule::new("/api/**", Access::Api),
                RouteRule::new("/protected/**", Access::Protected),
                RouteRule::new("/**", Access::Public),
            ])
            .unwrap(),
            allow: vec![AllowList::default(); 4],
        }
    }

    fn access(method: &str, path: &str) -> Access {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        routes().resolve(&method, &normalize(path).unwrap()).0
    }

    #[test]
    fn readings_an_upstream_could_route_to_a_protected_path_are_protected() {
        assert_eq!(access("GET", "/protected/x"), Access::Protected);
        assert_eq!(access("GET", "/PROTECTED/x"), Access::Protected);
        assert_eq!(
            access("GET", "/Protected;jsessionid=1/x"),
            Access::Protected
        );
        assert_eq!(access("GET", "/protected;a=b/x;c=d"), Access::Protected);
        assert_eq!(access("GET", "/API/v1"), Access::Api);
        assert_eq!(access("GET", "/public/page"), Access::Public);
    }

    #[test]
    fn method_filters_match_any_letter_case() {
        assert_eq!(access("POST", "/admin/x"), Access::Protected);
        assert_eq!(access("post", "/admin/x"), Access::Protected);
        assert_eq!(access("Post", "/admin/x"), Access::Protected);
        assert_eq!(access("GET", "/admin/x"), Access::Public);
    }
}
