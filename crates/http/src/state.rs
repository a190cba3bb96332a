//! The gateway's shared state.

use crate::cookies::{CookiePolicy, OwnCookies};
use crate::service_client::ServiceClients;
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
    /// Where a `callbackUrl` may lead.
    pub redirect: crate::redirect::RedirectOrigins,
    /// The gateway's own cookies, kept from the upstream.
    pub own_cookies: OwnCookies,
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
    /// Route rules, each with its allow-list.
    pub routes: RouteRules,
    /// The claims route rules name (`allow_claims`): only these are kept
    /// with a session.
    pub rule_claims: Vec<authgate_core::attributes::ClaimPath>,
    /// Some route rule names groups, roles or claims: worth a userinfo call
    /// after a refresh that brought no new ID token.
    pub rules_use_attributes: bool,
    /// The upstream, in reverse-proxy mode.
    pub upstream: Option<ReverseProxy>,
    /// The upstreams chosen by host (instead of `upstream`).
    pub hosts: crate::hosts::HostTable,
    /// The servers and jobs that may call the service endpoints.
    pub service_clients: ServiceClients,
    /// Revoked session ids, looked up on every request with
    /// [`RevocationCheck::Request`](crate::RevocationCheck::Request).
    pub revocations: Option<Arc<dyn authgate_store::cache::RevocationSet>>,
    /// The `jti`s of accepted back-channel Logout Tokens (replay check).
    pub seen_logout_tokens: crate::backchannel::SeenLogoutTokens,
    /// Adoption of guide-style Auth.js cookies (`adopt_guide_cookies`).
    pub adoption: Option<crate::adopt::Adoption>,
    /// `public_url`'s scheme and authority, as the upstream is told them.
    pub public_origin: crate::forward::PublicOrigin,
    /// The request counter and latency histogram handles.
    pub request_metrics: crate::request_metrics::RequestMetrics,
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
            let identity = Identity::of(&u);
            self.users
                .insert(user.as_str().to_owned(), identity.clone());
            identity
        }))
    }
}
