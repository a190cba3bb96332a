//! The gateway's shared state.

use crate::background::ActiveAccounts;
use crate::cookies::CookiePolicy;
use crate::session::Identity;
use crate::settings::GatewaySettings;
use authgate_core::cookie::{CheckCodec, CookieFormat, KeyError, SessionCodec};
use authgate_oauth::Catalog;
use authgate_proxy::{ReverseProxy, RouteRules};
use authgate_refresh::{Clock, RefreshService};
use authgate_store::{Store, UserId};
use std::sync::Arc;
use std::time::Duration;

/// What a gateway is built from.
pub struct GatewayParts {
    /// Behaviour settings.
    pub settings: GatewaySettings,
    /// Session secrets: the first encrypts and signs, all decrypt and verify.
    pub secrets: Vec<Vec<u8>>,
    /// Cookie format (Auth.js v5 or next-auth v4).
    pub cookie_format: CookieFormat,
    /// The store (usually behind a cache).
    pub store: Arc<dyn Store>,
    /// The providers.
    pub catalog: Catalog,
    /// The refresh service.
    pub refresh: RefreshService,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Route rules, each with its allow-list.
    pub routes: RouteRules,
    /// The upstream to proxy to (reverse-proxy mode), if any.
    pub upstream: Option<ReverseProxy>,
}

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
    pub secrets: Vec<Vec<u8>>,
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
    pub active: ActiveAccounts,
    /// Route rules, each with its allow-list.
    pub routes: RouteRules,
    /// The upstream, in reverse-proxy mode.
    pub upstream: Option<ReverseProxy>,
}

impl Gateway {
    /// Builds a gateway; fails when the secrets are unusable.
    pub fn new(parts: GatewayParts) -> Result<Self, KeyError> {
        let secure = parts.settings.secure_cookies;
        let session_codec = SessionCodec::new(parts.cookie_format, &parts.secrets, secure)?;
        let checks = CheckCodec::new(&parts.secrets, secure)?;
        Ok(Self {
            inner: Arc::new(Inner {
                cookies: CookiePolicy { secure },
                settings: parts.settings,
                secrets: parts.secrets,
                session_codec,
                checks,
                store: parts.store,
                catalog: parts.catalog,
                refresh: parts.refresh,
                clock: parts.clock,
                users: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(300))
                    .build(),
                account_providers: moka::sync::Cache::new(100_000),
                active: ActiveAccounts::default(),
                routes: parts.routes,
                upstream: parts.upstream,
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &GatewaySettings {
        &self.inner.settings
    }

    /// Starts the background refresher (refresh mode `background`); it
    /// stops when the gateway is dropped. Call within a Tokio runtime.
    pub fn spawn_background_refresh(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::background::run(Arc::downgrade(&self.inner)))
    }
}

impl Inner {
    /// The first secret: it signs CSRF tokens.
    pub fn signing_secret(&self) -> &[u8] {
        self.secrets.first().map(Vec::as_slice).unwrap_or_default()
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
