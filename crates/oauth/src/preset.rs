//! Built-in provider presets: short declarative descriptions of well-known
//! providers and their quirks.
//!
//! A preset says where a provider's endpoints come from (OIDC discovery at a
//! default or required issuer, or fixed URLs for plain OAuth 2.0), which
//! scopes and authorization parameters to ask for by default, and which
//! provider-specific answers mean what (GitHub's `bad_refresh_token` ends a
//! grant just like `invalid_grant`), and how it vouches for e-mail addresses
//! ([`Vouching`]: Google's `hd`, GitHub's address list, Entra's `xms_edov`
//! and tenants). The flow code reads this data; it never asks *which*
//! provider it is talking to.

use crate::provider::TokenEndpointAuthMethod;
use authgate_core::signin::Vouching;
use std::fmt;
use std::str::FromStr;

/// A well-known provider with built-in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Google (OIDC). Asks for `access_type=offline`; adds `prompt=consent`
    /// only to a sign-in that must obtain a refresh token (Google issues one
    /// at a user's first consent only).
    Google,
    /// GitHub (plain OAuth 2.0, GitHub Apps with expiring user tokens).
    GitHub,
    /// Microsoft Entra ID (OIDC); `tenant` (or `issuer`) selects the directory.
    /// Multi-directory endpoints (`common`, `organizations`, `consumers`)
    /// must be written out in `tenant`.
    MicrosoftEntraId,
    /// GitLab (OIDC); `issuer` for self-managed instances, default gitlab.com.
    GitLab,
    /// Keycloak (OIDC); `issuer` (the realm URL) is required.
    Keycloak,
    /// Okta (OIDC); `issuer` is required.
    Okta,
    /// Auth0 (OIDC); `issuer` (the tenant URL) is required.
    Auth0,
}

/// Where a preset's endpoints come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetSource {
    /// OpenID Connect discovery at the configured issuer, or at
    /// `default_issuer` when none is configured (`None`: issuer required).
    Discovery {
        /// The issuer used when the configuration names none.
        default_issuer: Option<&'static str>,
    },
    /// Plain OAuth 2.0 with fixed endpoints (no ID tokens).
    Fixed(FixedEndpoints),
}

/// The endpoints of a plain OAuth 2.0 preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedEndpoints {
    /// Authorization endpoint.
    pub authorization: &'static str,
    /// Token endpoint.
    pub token: &'static str,
    /// Endpoint returning the signed-in user's profile.
    pub userinfo: Option<&'static str>,
    /// RFC 7009 revocation endpoint, if the provider has one.
    pub revocation: Option<&'static str>,
    /// Whether the provider accepts PKCE (S256).
    pub supports_pkce: bool,
}

/// The declarative description of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetSpec {
    /// Display name.
    pub name: &'static str,
    /// Where the endpoints come from.
    pub source: PresetSource,
    /// Scopes requested when the configuration names none.
    pub default_scopes: &'static [&'static str],
    /// Authorization request parameters added by default (configuration
    /// values override them).
    pub authorization_params: &'static [(&'static str, &'static str)],
    /// Provider error codes that, like `invalid_grant`, mean the grant is gone.
    pub revoking_codes: &'static [&'static str],
    /// Extra `iss` values the provider puts into ID tokens besides its
    /// discovered issuer (Google's historic `accounts.google.com`).
    pub alternate_issuers: &'static [&'static str],
    /// The provider's directories, when it has them (Microsoft): the
    /// configured tenant decides the issuer and which ID-token `tid`s are
    /// admitted, and the discovered issuer may contain a `{tenantid}`
    /// placeholder that `tid` fills in.
    pub tenants: Option<TenantSpec>,
    /// Client authentication at the token endpoint, when the preset fixes it
    /// (otherwise discovery decides).
    pub token_endpoint_auth: Option<TokenEndpointAuthMethod>,
    /// How the provider vouches for the user's e-mail address.
    pub vouching: Vouching,
    /// Where the provider lists the user's addresses with their verification
    /// (GitHub's `GET /user/emails`), as a path appended to the userinfo
    /// endpoint, so that overriding `userinfo` (GitHub Enterprise, tests)
    /// moves it along.
    pub address_list_path: Option<&'static str>,
    /// Authorization parameters that make the provider issue a refresh
    /// token to a user who already consented (Google's `prompt=consent`).
    /// Not sent by default — users would see the consent screen at every
    /// sign-in — only by a sign-in that must obtain a refresh token.
    pub reconsent_params: &'static [(&'static str, &'static str)],
    /// Where the provider says which groups and roles the user has (route
    /// rules `allow_groups` / `allow_roles`, `X-Auth-Request-Groups`).
    pub groups: GroupSource,
}

/// Where a preset's groups and roles come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSource {
    /// The ID-token / userinfo claim (a dotted path) listing the user's
    /// groups; `providers[].groups_claim` replaces it.
    pub groups_claim: Option<&'static str>,
    /// The claim (a dotted path) listing the user's roles;
    /// `providers[].roles_claim` replaces it.
    pub roles_claim: Option<&'static str>,
    /// Groups are listed in userinfo rather than the ID token (GitLab):
    /// userinfo is fetched at every sign-in and refresh.
    pub userinfo: bool,
    /// The Workspace domain (Google's `hd` claim) is a group.
    pub hosted_domain: bool,
    /// With the `read:org` scope, the user's organisations and teams
    /// (GitHub's `GET /user/orgs` and `GET /user/teams`, under the userinfo
    /// endpoint) are groups: `org` and `org/team-slug`, lower case.
    pub organisations: bool,
}

impl GroupSource {
    /// Generic OpenID Connect: `groups` and `roles` claims, when present.
    pub const OIDC: GroupSource = GroupSource {
        groups_claim: Some("groups"),
        roles_claim: Some("roles"),
        userinfo: false,
        hosted_domain: false,
        organisations: false,
    };
    /// No group source (claims must be configured).
    pub const NONE: GroupSource = GroupSource {
        groups_claim: None,
        roles_claim: None,
        userinfo: false,
        hosted_domain: false,
        organisations: false,
    };
}

/// The directories of a multi-directory provider (see [`crate::tenant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSpec {
    /// The issuer of one directory; `{tenant}` stands for its id.
    pub issuer_template: &'static str,
    /// Endpoints that admit users of many directories; never a default.
    pub multi_tenant: &'static [&'static str],
    /// The directory id of personal (consumer) accounts.
    pub consumer_tenant: &'static str,
}

const OIDC_SCOPES: &[&str] = &["openid", "email", "profile"];
const OIDC_OFFLINE_SCOPES: &[&str] = &["openid", "email", "profile", "offline_access"];

const GOOGLE: PresetSpec = PresetSpec {
    name: "Google",
    source: PresetSource::Discovery {
        default_issuer: Some("https://accounts.google.com"),
    },
    default_scopes: OIDC_SCOPES,
    authorization_params: &[("access_type", "offline")],
    revoking_codes: &[],
    alternate_issuers: &["accounts.google.com"],
    tenants: None,
    token_endpoint_auth: None,
    vouching: Vouching::HostedDomain {
        provider_domains: &["gmail.com", "googlemail.com"],
    },
    address_list_path: None,
    reconsent_params: &[("prompt", "consent")],
    groups: GroupSource {
        hosted_domain: true,
        ..GroupSource::NONE
    },
};

const GITHUB: PresetSpec = PresetSpec {
    name: "GitHub",
    source: PresetSource::Fixed(FixedEndpoints {
        authorization: "https://github.com/login/oauth/authorize",
        token: "https://github.com/login/oauth/access_token",
        userinfo: Some("https://api.github.com/user"),
        revocation: None,
        supports_pkce: true,
    }),
    default_scopes: &["read:user", "user:email"],
    authorization_params: &[],
    revoking_codes: &["bad_refresh_token", "bad_verification_code"],
    alternate_issuers: &[],
    tenants: None,
    token_endpoint_auth: Some(TokenEndpointAuthMethod::ClientSecretPost),
    vouching: Vouching::AddressList,
    address_list_path: Some("/emails"),
    reconsent_params: &[],
    groups: GroupSource {
        organisations: true,
        ..GroupSource::NONE
    },
};

const MICROSOFT_ENTRA_ID: PresetSpec = PresetSpec {
    name: "Microsoft",
    source: PresetSource::Discovery {
        default_issuer: None,
    },
    default_scopes: OIDC_OFFLINE_SCOPES,
    authorization_params: &[],
    revoking_codes: &[],
    alternate_issuers: &[],
    tenants: Some(TenantSpec {
        issuer_template: "https://login.microsoftonline.com/{tenant}/v2.0",
        multi_tenant: &["common", "organizations", "consumers"],
        consumer_tenant: "9188040d-6c67-4c5b-b112-36a304b66dad",
    }),
    token_endpoint_auth: None,
    vouching: Vouching::DomainOwner,
    address_list_path: None,
    reconsent_params: &[],
    groups: GroupSource::OIDC,
};

const GITLAB: PresetSpec = PresetSpec {
    name: "GitLab",
    source: PresetSource::Discovery {
        default_issuer: Some("https://gitlab.com"),
    },
    default_scopes: OIDC_SCOPES,
    authorization_params: &[],
    revoking_codes: &[],
    alternate_issuers: &[],
    tenants: None,
    token_endpoint_auth: None,
    vouching: Vouching::EmailVerifiedClaim,
    address_list_path: None,
    reconsent_params: &[],
    groups: GroupSource {
        groups_claim: Some("groups"),
        userinfo: true,
        ..GroupSource::NONE
    },
};

const KEYCLOAK: PresetSpec = PresetSpec {
    name: "Keycloak",
    source: PresetSource::Discovery {
        default_issuer: None,
    },
    default_scopes: OIDC_SCOPES,
    authorization_params: &[],
    revoking_codes: &[],
    alternate_issuers: &[],
    tenants: None,
    token_endpoint_auth: None,
    vouching: Vouching::EmailVerifiedClaim,
    address_list_path: None,
    reconsent_params: &[],
    groups: GroupSource {
        groups_claim: Some("groups"),
        roles_claim: Some("realm_access.roles"),
        ..GroupSource::NONE
    },
};

const OKTA: PresetSpec = PresetSpec {
    name: "Okta",
    source: PresetSource::Discovery {
        default_issuer: None,
    },
    default_scopes: OIDC_OFFLINE_SCOPES,
    authorization_params: &[],
    revoking_codes: &[],
    alternate_issuers: &[],
    tenants: None,
    token_endpoint_auth: None,
    vouching: Vouching::EmailVerifiedClaim,
    address_list_path: None,
    reconsent_params: &[],
    groups: GroupSource {
        groups_claim: Some("groups"),
        ..GroupSource::NONE
    },
};

/// Auth0 answers a reused or revoked refresh token with HTTP 403
/// `invalid_grant`; error bodies are classified whatever their status, so
/// that needs no entry here.
const AUTH0: PresetSpec = PresetSpec {
    name: "Auth0",
    source: PresetSource::Discovery {
        default_issuer: None,
    },
    default_scopes: OIDC_OFFLINE_SCOPES,
    authorization_params: &[],
    revoking_codes: &[],
    alternate_issuers: &[],
    tenants: None,
    token_endpoint_auth: None,
    vouching: Vouching::EmailVerifiedClaim,
    address_list_path: None,
    reconsent_params: &[],
    groups: GroupSource::NONE,
};

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 7] = [
        Preset::Google,
        Preset::GitHub,
        Preset::MicrosoftEntraId,
        Preset::GitLab,
        Preset::Keycloak,
        Preset::Okta,
        Preset::Auth0,
    ];

    /// The preset's name as written in the configuration (`google`, `github`,
    /// `microsoft-entra-id`, `gitlab`, `keycloak`, `okta`, `auth0`).
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::GitHub => "github",
            Preset::MicrosoftEntraId => "microsoft-entra-id",
            Preset::GitLab => "gitlab",
            Preset::Keycloak => "keycloak",
            Preset::Okta => "okta",
            Preset::Auth0 => "auth0",
        }
    }

    /// The preset's declarative description.
    pub fn spec(self) -> &'static PresetSpec {
        match self {
            Preset::Google => &GOOGLE,
            Preset::GitHub => &GITHUB,
            Preset::MicrosoftEntraId => &MICROSOFT_ENTRA_ID,
            Preset::GitLab => &GITLAB,
            Preset::Keycloak => &KEYCLOAK,
            Preset::Okta => &OKTA,
            Preset::Auth0 => &AUTH0,
        }
    }

    /// Whether the configuration must name an `issuer` for this preset (a
    /// preset with tenants takes it from `tenant` instead).
    pub fn requires_issuer(self) -> bool {
        let spec = self.spec();
        spec.tenants.is_none()
            && matches!(
                spec.source,
                PresetSource::Discovery {
                    default_issuer: None
                }
            )
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Preset::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider preset {0:?}")]
pub struct UnknownPreset(pub String);

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPreset(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.as_str().parse::<Preset>(), Ok(p));
        }
        assert!("facebook".parse::<Preset>().is_err());
    }

    #[test]
    fn presets_say_how_they_vouch_for_addresses() {
        let vouching = |p: Preset| p.spec().vouching;
        assert!(matches!(
            vouching(Preset::Google),
            Vouching::HostedDomain { provider_domains } if provider_domains.contains(&"gmail.com")
        ));
        assert_eq!(vouching(Preset::GitHub), Vouching::AddressList);
        assert_eq!(Preset::GitHub.spec().address_list_path, Some("/emails"));
        assert!(
            Preset::GitHub.spec().default_scopes.contains(&"user:email"),
            "private addresses need the user:email scope"
        );
        assert_eq!(vouching(Preset::MicrosoftEntraId), Vouching::DomainOwner);
        for p in [
            Preset::GitLab,
            Preset::Keycloak,
            Preset::Okta,
            Preset::Auth0,
        ] {
            assert_eq!(vouching(p), Vouching::EmailVerifiedClaim, "{p}");
        }
    }

    #[test]
    fn only_microsoft_has_tenants_and_none_is_multi_tenant_by_default() {
        for p in Preset::ALL {
            let spec = p.spec();
            assert_eq!(spec.tenants.is_some(), p == Preset::MicrosoftEntraId, "{p}");
            if let PresetSource::Discovery {
                default_issuer: Some(issuer),
            } = spec.source
            {
                for keyword in ["/common/", "/organizations/", "/consumers/"] {
                    assert!(!issuer.contains(keyword), "{p}: {issuer}");
                }
            }
        }
    }

    #[test]
    fn presets_say_where_groups_and_roles_come_from() {
        let g = |p: Preset| p.spec().groups;
        assert_eq!(g(Preset::Keycloak).roles_claim, Some("realm_access.roles"));
        assert_eq!(g(Preset::MicrosoftEntraId), GroupSource::OIDC);
        assert!(g(Preset::GitLab).userinfo);
        assert!(g(Preset::GitHub).organisations);
        assert!(g(Preset::Google).hosted_domain);
        assert_eq!(g(Preset::Auth0), GroupSource::NONE);
        for p in [Preset::Okta, Preset::Keycloak, Preset::GitLab] {
            assert_eq!(g(p).groups_claim, Some("groups"), "{p}");
        }
    }

    #[test]
    fn tenant_presets_require_an_issuer() {
        let required: Vec<_> = Preset::ALL
            .into_iter()
            .filter(|p| p.requires_issuer())
            .collect();
        assert_eq!(required, [Preset::Keycloak, Preset::Okta, Preset::Auth0]);
    }
}
