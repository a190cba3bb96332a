//! The provider catalog: every configured provider, resolved at start.

use crate::http::HttpClient;
use crate::preset::Preset;
use crate::provider::{Provider, ProviderSettings};
use authgate_core::provider_error::ProviderError;
use std::collections::HashSet;
use std::sync::Arc;

/// A provider could not be resolved. Each variant names the provider id.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Two providers share an id.
    #[error("duplicate provider id {0:?}")]
    DuplicateId(String),
    /// The id is empty or has characters other than letters, digits, `-`, `_`.
    #[error("invalid provider id {0:?}: use letters, digits, '-' and '_'")]
    InvalidId(String),
    /// The preset is per-tenant and needs an `issuer`.
    #[error("provider {provider:?}: preset {} requires an issuer", preset.map_or("-", Preset::as_str))]
    MissingIssuer {
        /// Provider id.
        provider: String,
        /// The preset that needs it.
        preset: Option<Preset>,
    },
    /// A plain OAuth 2.0 preset (GitHub) has fixed endpoints; an `issuer` makes no sense.
    #[error(
        "provider {provider:?}: this preset does not support OIDC discovery; set endpoints instead of an issuer"
    )]
    IssuerNotSupported {
        /// Provider id.
        provider: String,
    },
    /// `groups_claim` or `roles_claim` is not a dotted claim path.
    #[error("provider {provider:?}: {which}: {source}")]
    InvalidClaimPath {
        /// Provider id.
        provider: String,
        /// `groups_claim` or `roles_claim`.
        which: &'static str,
        /// What is wrong with it.
        source: authgate_core::attributes::ClaimPathError,
    },
    /// `google_groups` on a provider that is not Google's.
    #[error("provider {provider:?}: Workspace groups (a service account) need the google preset")]
    WorkspaceGroupsNotGoogle {
        /// Provider id.
        provider: String,
    },
    /// The service account key for Workspace groups is unusable.
    #[error("provider {provider:?}: google_groups: {source}")]
    ServiceAccount {
        /// Provider id.
        provider: String,
        /// What is wrong with the key.
        source: crate::workspace::ServiceAccountError,
    },
    /// Neither a preset, nor an issuer, nor explicit authorization and token endpoints.
    #[error(
        "provider {provider:?}: needs a preset, an issuer, or explicit authorization and token endpoints"
    )]
    MissingEndpoints {
        /// Provider id.
        provider: String,
    },
    /// An endpoint URL is not an absolute http(s) URL.
    #[error("provider {provider:?}: invalid {which} endpoint")]
    InvalidEndpoint {
        /// Provider id.
        provider: String,
        /// Which endpoint.
        which: &'static str,
    },
    /// Configuration tries to set a parameter the flow owns (`state`, `scope`, …).
    #[error(
        "provider {provider:?}: authorization parameter {param:?} is set by authgate and cannot be configured"
    )]
    ReservedParameter {
        /// Provider id.
        provider: String,
        /// The parameter.
        param: String,
    },
    /// Discovery failed (network, status, or an invalid document).
    #[error("provider {provider:?}: OpenID Connect discovery failed")]
    Discovery {
        /// Provider id.
        provider: String,
        /// The classified failure; `source.kind.is_retryable()` tells whether
        /// retrying the start can help.
        #[source]
        source: Box<ProviderError>,
    },
    /// The preset's tenant setting is missing, multi-directory by implication,
    /// invalid, or contradicts the issuer.
    #[error("provider {provider:?}: {source}")]
    Tenant {
        /// Provider id.
        provider: String,
        /// What is wrong with it.
        #[source]
        source: crate::tenant::TenantError,
    },
    /// `tenant` is set on a provider without directories.
    #[error("provider {provider:?}: `tenant` applies only to the microsoft-entra-id preset")]
    TenantNotSupported {
        /// Provider id.
        provider: String,
    },
    /// `signout = "provider"` but the provider has no `end_session_endpoint`
    /// (its discovery document names none).
    #[error(
        "provider {provider:?}: signout = \"provider\" needs the provider's end_session_endpoint, and its discovery document has none; use signout = \"local\""
    )]
    NoEndSession {
        /// Provider id.
        provider: String,
    },
    /// `bearer.introspect` but the provider has no introspection endpoint.
    #[error(
        "provider {provider:?}: bearer.introspect needs the provider's introspection_endpoint, and its discovery document has none"
    )]
    NoIntrospection {
        /// Provider id.
        provider: String,
    },
    /// The discovery document names another issuer than the configured one.
    #[error("provider {provider:?}: discovery returned issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// Provider id.
        provider: String,
        /// The configured issuer.
        expected: String,
        /// The issuer in the discovery document.
        found: String,
    },
}

/// Every configured provider, resolved, by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    providers: Vec<Arc<Provider>>,
}

impl Catalog {
    /// Resolves several providers (presets, discovery, overrides). Ids must
    /// be unique; they are checked before any network access. Providers are
    /// resolved one after the other, and the first failure is returned.
    pub async fn resolve(
        settings: Vec<ProviderSettings>,
        http: &HttpClient,
    ) -> Result<Catalog, CatalogError> {
        let mut seen = HashSet::new();
        for s in &settings {
            if !seen.insert(s.id.as_str()) {
                return Err(CatalogError::DuplicateId(s.id.clone()));
            }
        }
        let mut providers = Vec::with_capacity(settings.len());
        for s in settings {
            providers.push(Arc::new(Provider::resolve(s, http).await?));
        }
        Ok(Catalog { providers })
    }

    /// A catalog of already resolved providers (ids must be unique).
    pub fn from_providers(providers: Vec<Provider>) -> Result<Catalog, CatalogError> {
        let mut seen = HashSet::new();
        for p in &providers {
            if !seen.insert(p.id()) {
                return Err(CatalogError::DuplicateId(p.id().to_owned()));
            }
        }
        Ok(Catalog {
            providers: providers.into_iter().map(Arc::new).collect(),
        })
    }

    /// The provider with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    /// All providers, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.iter()
    }

    /// How many providers there are.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}
