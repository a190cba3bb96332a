//! Provider settings (what the configuration says) and resolved providers
//! (what the flows use), plus the authorization URL.

use crate::catalog::CatalogError;
use crate::discovery::{self, DiscoveryDocument};
use crate::http::HttpClient;
use crate::id_token::{IdTokenSettings, JwksCache};
use crate::preset::{Preset, PresetSource};
use crate::tenant::{self, TenantPolicy};
use authgate_core::pkce::PKCE_METHOD;
use authgate_core::secret::Secret;
use authgate_core::signin::{ProviderFacts, Vouching};
use std::collections::BTreeMap;
use std::fmt;
use url::Url;

/// Authorization request parameters set by the flow itself; configuration
/// cannot override them.
pub const RESERVED_AUTHORIZATION_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// One provider as the gateway's configuration describes it: the plain
/// input to [`Provider::resolve`] and [`Catalog::resolve`](crate::Catalog::resolve).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Identifier used in URLs (`/auth/signin/{id}`): letters, digits, `-`, `_`.
    pub id: String,
    /// Display name; defaults to the preset's name, then to `id`.
    pub name: Option<String>,
    /// Built-in settings for a well-known provider.
    pub preset: Option<Preset>,
    /// OpenID Connect issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Option<Url>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret; empty for a public client (`token_endpoint_auth_method=none`).
    pub client_secret: Secret,
    /// Scopes to request; empty means the preset's defaults (or `openid email profile`
    /// for OIDC providers).
    pub scopes: Vec<String>,
    /// Extra authorization request parameters; they override the preset's.
    pub authorization_params: BTreeMap<String, String>,
    /// Explicit endpoint URLs, overriding the preset's or the discovered ones.
    /// With neither `preset` nor `issuer`, `authorization` and `token` make a
    /// plain OAuth 2.0 provider.
    pub endpoints: EndpointOverrides,
    /// Client authentication at the token endpoint, overriding the preset and discovery.
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// ID-token validation knobs (leeway, JWKS refetch interval).
    pub id_token: IdTokenSettings,
    /// The directory whose users may sign in, for presets with tenants
    /// (Microsoft): a tenant id, or `common` / `organizations` / `consumers`
    /// written out (see [`crate::tenant`]).
    pub tenant: Option<String>,
    /// Link a new account whose verified address belongs to an existing user
    /// (whose address is verified too) to that user instead of refusing the
    /// sign-in. Off by default: a provider's verification says someone
    /// controlled the mailbox once, not that they still do.
    pub link_by_email: bool,
    /// What sign-out does at this provider: nothing (the default), or
    /// OpenID Connect RP-Initiated Logout at its `end_session_endpoint`.
    pub signout: SignOut,
    /// The claim (a dotted path) listing the user's groups, replacing the
    /// preset's ([`GroupSource`](crate::preset::GroupSource)).
    pub groups_claim: Option<String>,
    /// The claim (a dotted path) listing the user's roles, replacing the
    /// preset's.
    pub roles_claim: Option<String>,
    /// Accept this provider's JWT access tokens as bearer tokens on `api`
    /// routes ([`crate::bearer`]); `None`: never.
    pub bearer: Option<crate::bearer::BearerSettings>,
    /// Google only: read the user's Workspace groups with a service account
    /// ([`crate::workspace`]).
    pub workspace_groups: Option<crate::workspace::WorkspaceGroupsSettings>,
}

/// What `POST {base}/signout` does at the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignOut {
    /// Only the gateway's session ends (and the grant, revoked by RFC 7009):
    /// the provider's own session stays.
    #[default]
    Local,
    /// The browser is then sent to the provider's `end_session_endpoint`
    /// (OpenID Connect RP-Initiated Logout 1.0), which must be known (from
    /// discovery, or [`EndpointOverrides::end_session`]) when the provider
    /// is resolved.
    Provider {
        /// Where the provider sends the browser back
        /// (`post_logout_redirect_uri`, registered at the provider).
        post_logout_redirect_uri: Url,
    },
}

impl ProviderSettings {
    /// Settings with the given id and credentials and everything else empty
    /// or default.
    pub fn new(
        id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self {
            id: id.into(),
            name: None,
            preset: None,
            issuer: None,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: Vec::new(),
            authorization_params: BTreeMap::new(),
            endpoints: EndpointOverrides::default(),
            token_endpoint_auth_method: None,
            id_token: IdTokenSettings::default(),
            tenant: None,
            link_by_email: false,
            signout: SignOut::Local,
            groups_claim: None,
            roles_claim: None,
            bearer: None,
            workspace_groups: None,
        }
    }
}

/// Endpoint URLs that replace a preset's fixed ones or the discovered ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    /// Authorization endpoint.
    pub authorization: Option<Url>,
    /// Token endpoint.
    pub token: Option<Url>,
    /// UserInfo endpoint.
    pub userinfo: Option<Url>,
    /// RFC 7009 revocation endpoint.
    pub revocation: Option<Url>,
    /// JWKS of an OIDC provider.
    pub jwks_uri: Option<Url>,
    /// RFC 7662 introspection endpoint.
    pub introspection: Option<Url>,
    /// RP-initiated logout endpoint (`end_session_endpoint`).
    pub end_session: Option<Url>,
    /// The list of the user's addresses with their verification (GitHub's
    /// `GET /user/emails`).
    pub emails: Option<Url>,
}

/// Whether a provider speaks OpenID Connect or only OAuth 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: ID tokens, JWKS, discovery.
    Oidc,
    /// Plain OAuth 2.0 (GitHub): identity comes from the userinfo endpoint only.
    OAuth2,
}

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

impl TokenEndpointAuthMethod {
    /// The method's registered name (`client_secret_basic`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A resolved provider's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: Url,
    /// Code exchange and refresh.
    pub token: Url,
    /// The signed-in user's profile.
    pub userinfo: Option<Url>,
    /// RFC 7009 revocation.
    pub revocation: Option<Url>,
    /// Signing keys (OIDC only).
    pub jwks_uri: Option<Url>,
    /// RFC 7662 introspection.
    pub introspection: Option<Url>,
    /// RP-initiated logout.
    pub end_session: Option<Url>,
    /// The user's addresses with their verification (presets with an
    /// address list).
    pub emails: Option<Url>,
}

/// Provider-specific behaviour, taken from the preset's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Error codes that end the grant besides `invalid_grant`.
    pub revoking_codes: Vec<String>,
    /// Extra accepted ID-token `iss` values.
    pub alternate_issuers: Vec<String>,
    /// The issuer may hold a `{tenantid}` placeholder filled by the `tid` claim.
    pub tenant_issuer_template: bool,
    /// Authorization parameters that make the provider issue a refresh token
    /// again (see [`Provider::reconsent_url`]).
    pub reconsent_params: Vec<(String, String)>,
    /// Discovery says every authorization response carries `iss` (RFC 9207).
    pub response_iss_required: bool,
}

/// A provider ready for the sign-in and refresh flows: endpoints resolved
/// (from a preset, discovery or explicit settings), client credentials, and
/// a JWKS cache. Operations live in `impl` blocks across this crate:
/// [`authorization_url`](Provider::authorization_url),
/// [`exchange_code`](Provider::exchange_code), [`refresh`](Provider::refresh),
/// [`revoke`](Provider::revoke), [`userinfo`](Provider::userinfo),
/// [`verify_id_token`](Provider::verify_id_token).
pub struct Provider {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) preset: Option<Preset>,
    pub(crate) kind: ProviderKind,
    pub(crate) issuer: Option<String>,
    pub(crate) endpoints: Endpoints,
    pub(crate) client_id: String,
    pub(crate) client_secret: Secret,
    pub(crate) auth_method: TokenEndpointAuthMethod,
    pub(crate) supports_pkce: bool,
    pub(crate) scopes: Vec<String>,
    pub(crate) authorization_params: BTreeMap<String, String>,
    pub(crate) quirks: Quirks,
    pub(crate) signout: SignOut,
    pub(crate) id_token_settings: IdTokenSettings,
    pub(crate) tenant: Option<TenantPolicy>,
    pub(crate) vouching: Vouching,
    pub(crate) link_by_email: bool,
    pub(crate) groups: crate::groups::GroupSources,
    pub(crate) workspace: Option<crate::workspace::WorkspaceDirectory>,
    pub(crate) http: HttpClient,
    pub(crate) jwks: JwksCache,
    pub(crate) bearer: Option<crate::bearer::BearerSettings>,
    pub(crate) introspected: crate::introspection::IntrospectionCache,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("preset", &self.preset)
            .field("issuer", &self.issuer)
            .field("endpoints", &self.endpoints)
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The configured id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The preset it was built from, if any.
    pub fn preset(&self) -> Option<Preset> {
        self.preset
    }
    /// OIDC or plain OAuth 2.0.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }
    /// The issuer exactly as the provider states it (OIDC only).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
    /// The resolved endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
    /// The OAuth client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// How the client authenticates at the token endpoint.
    pub fn token_endpoint_auth_method(&self) -> TokenEndpointAuthMethod {
        self.auth_method
    }
    /// Whether authorization requests carry a PKCE (S256) challenge.
    pub fn supports_pkce(&self) -> bool {
        self.supports_pkce
    }
    /// Whether tokens can be revoked (RFC 7009).
    pub fn supports_revocation(&self) -> bool {
        self.endpoints.revocation.is_some()
    }
    /// The scopes requested by default.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    /// Extra authorization parameters (preset merged with configuration).
    pub fn authorization_params(&self) -> &BTreeMap<String, String> {
        &self.authorization_params
    }
    /// Provider-specific behaviour.
    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }
    /// The admitted directories (presets with tenants).
    pub fn tenant(&self) -> Option<&TenantPolicy> {
        self.tenant.as_ref()
    }
    /// What the sign-in decision needs to know: how this provider vouches for
    /// addresses, whether it is pinned to one directory, whether it links by
    /// e-mail.
    pub fn signin_facts(&self) -> ProviderFacts {
        ProviderFacts {
            vouching: self.vouching,
            tenant_pinned: self.tenant.as_ref().is_some_and(TenantPolicy::is_pinned),
            link_by_email: self.link_by_email,
        }
    }

    pub(crate) fn revoking_codes(&self) -> Vec<&str> {
        self.quirks
            .revoking_codes
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// Resolves one provider: applies its preset, runs OIDC discovery when
    /// it has an issuer (the discovered `issuer` must equal the configured
    /// one), then applies explicit endpoint overrides.
    pub async fn resolve(
        settings: ProviderSettings,
        http: &HttpClient,
    ) -> Result<Provider, CatalogError> {
        let id = settings.id.clone();
        validate_id(&id)?;
        for key in settings.authorization_params.keys() {
            if RESERVED_AUTHORIZATION_PARAMS.contains(&key.as_str()) {
                return Err(CatalogError::ReservedParameter {
                    provider: id,
                    param: key.clone(),
                });
            }
        }
        let spec = settings.preset.map(Preset::spec);

        // A preset with tenants takes its issuer from the tenant.
        let tenant_spec = spec.and_then(|s| s.tenants);
        let (tenant, tenant_issuer) = match (&tenant_spec, &settings.tenant) {
            (Some(t), configured) => {
                let (policy, issuer) =
                    tenant::resolve(t, configured.as_deref(), settings.issuer.as_ref()).map_err(
                        |source| CatalogError::Tenant {
                            provider: id.clone(),
                            source,
                        },
                    )?;
                (Some(policy), Some(issuer))
            }
            (None, Some(_)) => return Err(CatalogError::TenantNotSupported { provider: id }),
            (None, None) => (None, None),
        };

        // Where the endpoints come from.
        let issuer = match (
            tenant_issuer.or_else(|| settings.issuer.clone()),
            spec.map(|s| s.source),
        ) {
            (Some(issuer), Some(PresetSource::Discovery { .. }) | None) => Some(issuer),
            (None, Some(PresetSource::Discovery { default_issuer })) => match default_issuer {
                Some(d) => Some(Url::parse(d).map_err(|_| CatalogError::InvalidEndpoint {
                    provider: id.clone(),
                    which: "issuer",
                })?),
                None => {
                    return Err(CatalogError::MissingIssuer {
                        provider: id,
                        preset: settings.preset,
                    });
                }
            },
            (Some(_), Some(PresetSource::Fixed(_))) => {
                return Err(CatalogError::IssuerNotSupported { provider: id });
            }
            (None, Some(PresetSource::Fixed(_)) | None) => None,
        };

        let tenant_template = tenant_spec.is_some();
        let (kind, mut endpoints, discovered_issuer, doc) = if let Some(issuer) = &issuer {
            let doc = discovery::fetch(http, &id, issuer)
                .await
                .map_err(|source| CatalogError::Discovery {
                    provider: id.clone(),
                    source: Box::new(source),
                })?;
            if !discovery::issuer_matches(issuer, &doc.issuer, tenant_template) {
                return Err(CatalogError::IssuerMismatch {
                    provider: id,
                    expected: issuer.to_string(),
                    found: doc.issuer,
                });
            }
            let endpoints = endpoints_from_discovery(&id, &doc)?;
            (
                ProviderKind::Oidc,
                endpoints,
                Some(doc.issuer.clone()),
                Some(doc),
            )
        } else if let Some(PresetSource::Fixed(fixed)) = spec.map(|s| s.source) {
            let parse = |s: &str, which| {
                Url::parse(s).map_err(|_| CatalogError::InvalidEndpoint {
                    provider: id.clone(),
                    which,
                })
            };
            let endpoints = Endpoints {
                authorization: parse(fixed.authorization, "authorization")?,
                token: parse(fixed.token, "token")?,
                userinfo: fixed.userinfo.map(|u| parse(u, "userinfo")).transpose()?,
                revocation: fixed
                    .revocation
                    .map(|u| parse(u, "revocation"))
                    .transpose()?,
                jwks_uri: None,
                introspection: None,
                end_session: None,
                emails: None,
            };
            (ProviderKind::OAuth2, endpoints, None, None)
        } else {
            // Generic OAuth 2.0: endpoints must be explicit.
            let (Some(authorization), Some(token)) = (
                settings.endpoints.authorization.clone(),
                settings.endpoints.token.clone(),
            ) else {
                return Err(CatalogError::MissingEndpoints { provider: id });
            };
            let endpoints = Endpoints {
                authorization,
                token,
                userinfo: None,
                revocation: None,
                jwks_uri: None,
                introspection: None,
                end_session: None,
                emails: None,
            };
            (ProviderKind::OAuth2, endpoints, None, None)
        };

        let o = &settings.endpoints;
        override_with(&mut endpoints.authorization, &o.authorization);
        override_with(&mut endpoints.token, &o.token);
        override_opt(&mut endpoints.userinfo, &o.userinfo);
        override_opt(&mut endpoints.revocation, &o.revocation);
        override_opt(&mut endpoints.jwks_uri, &o.jwks_uri);
        override_opt(&mut endpoints.introspection, &o.introspection);
        override_opt(&mut endpoints.end_session, &o.end_session);
        // The address list lives under the (final) userinfo endpoint.
        endpoints.emails = match (&o.emails, spec.and_then(|s| s.address_list_path)) {
            (Some(explicit), _) => Some(explicit.clone()),
            (None, Some(path)) => endpoints.userinfo.as_ref().map(|u| {
                let mut list = u.clone();
                list.set_path(&format!("{}{path}", u.path().trim_end_matches('/')));
                list
            }),
            (None, None) => None,
        };

        let supports_pkce = match (&doc, spec.map(|s| s.source)) {
            (Some(doc), _) => doc
                .code_challenge_methods_supported
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == PKCE_METHOD)),
            (None, Some(PresetSource::Fixed(f))) => f.supports_pkce,
            // Servers ignore unknown parameters (RFC 6749 §3.1), so sending a
            // challenge to a generic provider is harmless and usually useful.
            (None, _) => true,
        };

        let auth_method = if settings.client_secret.expose().is_empty() {
            TokenEndpointAuthMethod::None
        } else if let Some(m) = settings
            .token_endpoint_auth_method
            .or(spec.and_then(|s| s.token_endpoint_auth))
        {
            m
        } else {
            auth_method_from_discovery(doc.as_ref())
        };

        let mut scopes = if !settings.scopes.is_empty() {
            settings.scopes.clone()
        } else if let Some(spec) = spec {
            spec.default_scopes
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else if kind == ProviderKind::Oidc {
            ["openid", "email", "profile"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            Vec::new()
        };
        if kind == ProviderKind::Oidc && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }

        let mut authorization_params: BTreeMap<String, String> = spec
            .map(|s| {
                s.authorization_params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        authorization_params.extend(settings.authorization_params.clone());

        let mut quirks = spec
            .map(|s| Quirks {
                revoking_codes: s.revoking_codes.iter().map(|c| (*c).to_owned()).collect(),
                alternate_issuers: s
                    .alternate_issuers
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect(),
                tenant_issuer_template: s.tenants.is_some(),
                reconsent_params: s
                    .reconsent_params
                    .iter()
                    .filter(|(k, _)| !settings.authorization_params.contains_key(*k))
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                response_iss_required: false,
            })
            .unwrap_or_default();
        quirks.response_iss_required = doc
            .as_ref()
            .and_then(|d| d.authorization_response_iss_parameter_supported)
            .unwrap_or(false);

        if settings.bearer.as_ref().is_some_and(|b| b.introspect)
            && endpoints.introspection.is_none()
        {
            return Err(CatalogError::NoIntrospection { provider: id });
        }
        if matches!(settings.signout, SignOut::Provider { .. }) && endpoints.end_session.is_none() {
            return Err(CatalogError::NoEndSession { provider: id });
        }

        let groups = crate::groups::GroupSources::resolve(
            &id,
            spec.map(|s| s.groups),
            kind,
            &settings,
            &scopes,
            endpoints.userinfo.as_ref(),
        )?;
        let workspace =
            match &settings.workspace_groups {
                None => None,
                Some(_) if settings.preset != Some(Preset::Google) => {
                    return Err(CatalogError::WorkspaceGroupsNotGoogle { provider: id });
                }
                Some(w) => Some(crate::workspace::WorkspaceDirectory::new(w).map_err(
                    |source| CatalogError::ServiceAccount {
                        provider: id.clone(),
                        source,
                    },
                )?),
            };

        let name = settings
            .name
            .clone()
            .or_else(|| spec.map(|s| s.name.to_owned()))
            .unwrap_or_else(|| id.clone());

        Ok(Provider {
            jwks: JwksCache::new(endpoints.jwks_uri.clone()),
            id,
            name,
            preset: settings.preset,
            kind,
            issuer: discovered_issuer,
            endpoints,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            auth_method,
            supports_pkce,
            scopes,
            authorization_params,
            quirks,
            id_token_settings: settings.id_token,
            tenant,
            vouching: spec.map_or(Vouching::EmailVerifiedClaim, |s| s.vouching),
            link_by_email: settings.link_by_email,
            signout: settings.signout,
            groups,
            workspace,
            http: http.clone(),
            bearer: settings.bearer,
            introspected: Default::default(),
        })
    }

    /// The URL to send the browser to: `response_type=code`, `client_id`,
    /// `redirect_uri`, `scope` (the default scopes, or `scopes` when given),
    /// `state`, `nonce` (when given), the S256 PKCE challenge (when the
    /// provider supports PKCE), then the preset's and configuration's extra
    /// parameters (Google's `access_type=offline&prompt=consent`).
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: Option<&str>,
        pkce_challenge: &str,
        scopes: Option<&[String]>,
    ) -> Url {
        let mut url = self.endpoints.authorization.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &self.client_id);
            q.append_pair("redirect_uri", redirect_uri);
            let scopes = scopes.unwrap_or(&self.scopes);
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(" "));
            }
            q.append_pair("state", state);
            if let Some(nonce) = nonce {
                q.append_pair("nonce", nonce);
            }
            if self.supports_pkce {
                q.append_pair("code_challenge", pkce_challenge);
                q.append_pair("code_challenge_method", PKCE_METHOD);
            }
            for (k, v) in &self.authorization_params {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Whether [`Provider::reconsent_url`] has anything to add.
    pub fn can_reconsent(&self) -> bool {
        !self.quirks.reconsent_params.is_empty()
    }

    /// The authorization URL of a sign-in that must obtain a refresh token
    /// from a user who already consented (Google issues one only at first
    /// consent): [`Provider::authorization_url`] plus the preset's
    /// re-consent parameters (`prompt=consent`). `None` when the provider has
    /// none, or the configuration already sends them on every sign-in.
    pub fn reconsent_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: Option<&str>,
        pkce_challenge: &str,
    ) -> Option<Url> {
        if !self.can_reconsent() {
            return None;
        }
        let mut url = self.authorization_url(redirect_uri, state, nonce, pkce_challenge, None);
        url.query_pairs_mut()
            .extend_pairs(self.quirks.reconsent_params.iter());
        Some(url)
    }
}

impl Provider {
    /// What sign-out does at this provider.
    pub fn signout(&self) -> &SignOut {
        &self.signout
    }

    /// Where RP-Initiated Logout sends the browser: the provider's
    /// `end_session_endpoint` with `id_token_hint` (when the sign-in's ID
    /// token is at hand), `post_logout_redirect_uri` and `client_id`.
    /// `None` unless [`SignOut::Provider`] is configured (resolution
    /// guarantees the endpoint then).
    pub fn end_session_url(&self, id_token_hint: Option<&str>) -> Option<Url> {
        let SignOut::Provider {
            post_logout_redirect_uri,
        } = &self.signout
        else {
            return None;
        };
        let mut url = self.endpoints.end_session.clone()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair(
                "post_logout_redirect_uri",
                post_logout_redirect_uri.as_str(),
            );
            q.append_pair("client_id", &self.client_id);
        }
        Some(url)
    }
}

fn override_with(target: &mut Url, with: &Option<Url>) {
    if let Some(u) = with {
        *target = u.clone();
    }
}

fn override_opt(target: &mut Option<Url>, with: &Option<Url>) {
    if with.is_some() {
        target.clone_from(with);
    }
}

fn validate_id(id: &str) -> Result<(), CatalogError> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CatalogError::InvalidId(id.to_owned()))
    }
}

fn endpoints_from_discovery(id: &str, doc: &DiscoveryDocument) -> Result<Endpoints, CatalogError> {
    let parse = |s: &str, which| {
        Url::parse(s)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| CatalogError::InvalidEndpoint {
                provider: id.to_owned(),
                which,
            })
    };
    let opt = |s: &Option<String>, which| s.as_deref().map(|s| parse(s, which)).transpose();
    Ok(Endpoints {
        authorization: parse(&doc.authorization_endpoint, "authorization")?,
        token: parse(&doc.token_endpoint, "token")?,
        userinfo: opt(&doc.userinfo_endpoint, "userinfo")?,
        revocation: opt(&doc.revocation_endpoint, "revocation")?,
        jwks_uri: Some(parse(&doc.jwks_uri, "jwks_uri")?),
        introspection: opt(&doc.introspection_endpoint, "introspection")?,
        end_session: opt(&doc.end_session_endpoint, "end_session")?,
        emails: None,
    })
}

/// `client_secret_basic` when advertised (or nothing is advertised, its
/// default per OIDC Discovery), else `client_secret_post` when advertised.
fn auth_method_from_discovery(doc: Option<&DiscoveryDocument>) -> TokenEndpointAuthMethod {
    let Some(methods) = doc.and_then(|d| d.token_endpoint_auth_methods_supported.as_ref()) else {
        return TokenEndpointAuthMethod::ClientSecretBasic;
    };
    let has = |m: &str| methods.iter().any(|x| x == m);
    if !has("client_secret_basic") && has("client_secret_post") {
        TokenEndpointAuthMethod::ClientSecretPost
    } else {
        TokenEndpointAuthMethod::ClientSecretBasic
    }
}
