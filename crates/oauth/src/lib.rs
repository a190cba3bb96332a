//! authgate's OAuth 2.0 / OpenID Connect client.
//!
//! This crate talks to identity providers and nothing else: it never decides
//! about sessions or HTTP responses (DESIGN.md §2, the `oauth` part). It
//! turns configuration into resolved providers, builds authorization URLs,
//! exchanges codes, refreshes and revokes tokens, reads userinfo and
//! validates ID tokens — and it normalises *every* failure into the core's
//! error taxonomy, [`ProviderError`] with a
//! [`ProviderErrorKind`](authgate_core::provider_error::ProviderErrorKind),
//! because that kind alone decides whether a session ends (`GrantRevoked`),
//! is retried (`Transient`), or needs an operator (`Misconfigured`,
//! `Protocol`).
//!
//! # Providers
//!
//! The gateway builds one [`ProviderSettings`] per `[[providers]]` entry and
//! resolves them all with [`Catalog::resolve`]. A provider's endpoints come
//! from one of three places:
//!
//! - a [`Preset`] — short declarative data ([`PresetSpec`]): Google, GitHub,
//!   Microsoft Entra ID, GitLab, Keycloak, Okta, Auth0. OIDC presets run
//!   discovery at a default issuer (or the configured one; Keycloak, Okta and
//!   Auth0 require it); GitHub has fixed endpoints;
//! - any OIDC `issuer`, by discovery at `{issuer}/.well-known/openid-configuration`
//!   — the document's `issuer` must equal the configured one;
//! - explicit endpoints ([`EndpointOverrides`]), which also override a
//!   preset's or the discovered URLs (tests point GitHub at a local fake).
//!
//! Provider quirks are data in the preset ([`Quirks`], [`PresetSpec`]):
//! GitHub's extra grant-ending codes (`bad_refresh_token`,
//! `bad_verification_code`), Google's alternate issuer, Microsoft's tenants
//! and `{tenantid}` issuer template, and how each vouches for e-mail
//! addresses ([`authgate_core::signin::Vouching`]: Google's `hd`, GitHub's
//! `GET /user/emails`, Entra's `xms_edov`). The flow code never asks which
//! provider it talks to.
//!
//! [`response_issuer`] checks an authorization response's `iss` (RFC 9207)
//! before the code is redeemed.
//!
//! # Identity
//!
//! [`identity`] reads what a provider says about the user in the core's
//! terms ([`IdTokenClaims::signin_claims`], [`UserInfo::signin_claims`],
//! [`Provider::addresses`]); [`Provider::signin_facts`] says how it vouches.
//! [`groups`] reads the user's groups and roles ([`Provider::read_attributes`]:
//! the preset's claims or `groups_claim` / `roles_claim`, Google's `hd`;
//! [`Provider::organisations`]: GitHub's organisations and teams).
//! A provider with tenants checks every ID token's `tid` against its
//! [`TenantPolicy`] ([`tenant`]): `common` and its kin are never a default. Some quirks need no data
//! at all because the rules are general: an OAuth error body is classified
//! whatever its HTTP status (GitHub's 200, Auth0's 403), form-encoded token
//! answers are parsed as well as JSON, and `Accept: application/json` is
//! always sent.
//!
//! # Operations
//!
//! On [`Provider`]: [`authorization_url`](Provider::authorization_url) (S256
//! PKCE when supported, `state`, `nonce`, scopes, preset and configured
//! parameters), [`exchange_code`](Provider::exchange_code),
//! [`refresh`](Provider::refresh) (`expires_at = now + expires_in`; no
//! `refresh_token` in the answer → `None`, keep the old one with
//! [`TokenSet::merge_refreshed`](authgate_core::token::TokenSet::merge_refreshed)),
//! [`revoke`](Provider::revoke) (RFC 7009), [`userinfo`](Provider::userinfo),
//! [`addresses`](Provider::addresses), and
//! [`verify_id_token`](Provider::verify_id_token) (see [`id_token`]).
//! Time is always a parameter: nothing here reads the clock, not even the
//! JWKS refetch rate limit.
//!
//! # Error normalisation
//!
//! | what happened | kind |
//! |---|---|
//! | connect error, timeout, reset or truncated body | `Transient` |
//! | 5xx, 429, 408 without an OAuth error (with `Retry-After` seconds) | `Transient` |
//! | OAuth `error` body, any status | by code: `invalid_grant` and the preset's revoking codes → `GrantRevoked`; `temporarily_unavailable`/`server_error` → `Transient`; `invalid_client` & co → `Misconfigured`; unknown codes by status |
//! | 3xx (redirects are never followed), other 4xx | `Protocol` |
//! | 2xx without `access_token`, HTML or garbage | `Protocol` |
//!
//! # Outbound HTTP
//!
//! One [`HttpClient`] (reqwest, rustls) with connect and total timeouts,
//! redirects disabled, capped bodies and `User-Agent: authgate/<version>`.
//! Tokens and secrets never reach a log line: credentials are
//! [`Secret`](authgate_core::secret::Secret)s, reqwest marks the
//! `Authorization` header sensitive, and logged errors carry only the
//! provider id, status and OAuth error code.

pub mod bearer;
pub mod catalog;
pub mod discovery;
pub mod groups;
pub mod http;
pub mod id_token;
pub mod identity;
pub mod introspection;
pub mod logout_token;
pub mod preset;
pub mod provider;
mod response;
pub mod response_issuer;
pub mod tenant;
pub mod token;
pub mod userinfo;
pub mod workspace;

pub use authgate_core::provider_error::ProviderError;
pub use bearer::{
    BearerError, BearerRefusal, BearerSettings, VerifiedBearer, parse_bearer_algorithm,
};
pub use catalog::{Catalog, CatalogError};
pub use http::{HttpClient, HttpClientError, HttpSettings, USER_AGENT};
pub use id_token::{ALLOWED_ALGORITHMS, IdTokenClaims, IdTokenError, IdTokenSettings};
pub use identity::parse_address_list;
pub use logout_token::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutClaims, LogoutTokenError, MAX_LOGOUT_TOKEN_AGE,
};
pub use preset::{FixedEndpoints, Preset, PresetSource, PresetSpec, TenantSpec, UnknownPreset};
pub use provider::{
    EndpointOverrides, Endpoints, Provider, ProviderKind, ProviderSettings, Quirks, SignOut,
    TokenEndpointAuthMethod,
};
pub use response_issuer::ResponseIssuerError;
pub use tenant::{TenantError, TenantPolicy};
pub use token::{TokenResponse, TokenTypeHint};
pub use userinfo::UserInfo;
