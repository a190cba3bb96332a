//! The provider side: the refresh grant and revocation (RFC 7009).

use async_trait::async_trait;
use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use authgate_core::token::TokenSet;
use authgate_oauth::TokenTypeHint;

/// What a provider did with a revocation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The provider answered 2xx (RFC 7009: also for unknown tokens).
    Revoked,
    /// The provider has no revocation endpoint.
    Unsupported,
}

/// What the refresh service asks of providers: the refresh grant, and
/// revoking a grant that ends. Implemented over the OAuth client by
/// [`CatalogRefresher`]; tests may implement it over any real provider.
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Presents `refresh_token` to `provider`'s token endpoint. `Ok` carries
    /// the provider's answer as is (no refresh token when it sent none).
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError>;

    /// Revokes `token` at `provider` (RFC 7009). An error means the token
    /// must be assumed alive.
    async fn revoke(
        &self,
        provider: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<Revocation, ProviderError>;
}

/// The refresh grant and revocation over the configured providers' OAuth
/// clients.
#[derive(Debug, Clone)]
pub struct CatalogRefresher {
    catalog: authgate_oauth::Catalog,
}

impl CatalogRefresher {
    /// Talks to `catalog`'s providers.
    pub fn new(catalog: authgate_oauth::Catalog) -> Self {
        Self { catalog }
    }

    fn provider(&self, provider: &str) -> Result<&authgate_oauth::Provider, ProviderError> {
        self.catalog.get(provider).map(|p| &**p).ok_or_else(|| {
            ProviderError::new(ProviderErrorKind::Misconfigured, provider)
                .with_description("no such provider is configured")
        })
    }
}

#[async_trait]
impl TokenRefresher for CatalogRefresher {
    async fn refresh(
        &self,
        provider: &str,
        refresh_token: &Secret,
        now: UnixTime,
    ) -> Result<TokenSet, ProviderError> {
        self.provider(provider)?.refresh(refresh_token, now).await
    }

    async fn revoke(
        &self,
        provider: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<Revocation, ProviderError> {
        let provider = self.provider(provider)?;
        if !provider.supports_revocation() {
            return Ok(Revocation::Unsupported);
        }
        provider.revoke(token, Some(hint)).await?;
        Ok(Revocation::Revoked)
    }
}
