//! Where a provider says which groups and roles a user has, and reading them: claims of the
//! ID token and userinfo (a preset's [`GroupSource`], or `groups_claim` / `roles_claim`),
//! Google's Workspace domain (`hd`) as a group, and GitHub's organisations and teams.
//!
//! GitHub's groups are read with the `read:org` scope from `GET /user/orgs` (each
//! organisation's `login`) and `GET /user/teams` (each team as `org/team-slug`), both lower
//! case, the first 100 of each (`per_page=100`; one page). The endpoints are the userinfo
//! endpoint (`https://api.github.com/user`) plus `/orgs` and `/teams`, so overriding
//! `userinfo` (GitHub Enterprise, tests) moves them along.

use crate::catalog::CatalogError;
use crate::id_token::IdTokenClaims;
use crate::preset::GroupSource;
use crate::provider::{Provider, ProviderKind, ProviderSettings};
use crate::response::{check, protocol, status_error};
use crate::userinfo::UserInfo;
use authgate_core::attributes::{AttributeError, AttributeSources, Attributes, ClaimPath};
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use reqwest::header::ACCEPT;
use serde_json::{Map, Value};
use url::Url;

/// The most organisations, and the most teams, read from GitHub (one page each).
pub const MAX_ORGANISATIONS: usize = 100;

/// A provider's resolved group sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupSources {
    groups: Vec<ClaimPath>,
    roles: Vec<ClaimPath>,
    userinfo: bool,
    hosted_domain: bool,
    /// GitHub's `/user/orgs` and `/user/teams`, when `read:org` is granted.
    organisations: Option<(Url, Url)>,
}

impl GroupSources {
    /// The sources of a provider: the configured claims, else the preset's, else (OpenID
    /// Connect without a preset) `groups` and `roles`.
    pub(crate) fn resolve(
        id: &str,
        preset: Option<GroupSource>,
        kind: ProviderKind,
        settings: &ProviderSettings,
        scopes: &[String],
        userinfo: Option<&Url>,
    ) -> Result<GroupSources, CatalogError> {
        let source = preset.unwrap_or(match kind {
            ProviderKind::Oidc => GroupSource::OIDC,
            ProviderKind::OAuth2 => GroupSource::NONE,
        });
        let path = |which: &'static str, configured: &Option<String>, default: Option<&str>| {
            configured
                .as_deref()
                .or(default)
                .map(|p| {
                    ClaimPath::parse(p).map_err(|source| CatalogError::InvalidClaimPath {
                        provider: id.to_owned(),
                        which,
                        source,
                    })
                })
                .transpose()
        };
        let groups = path("groups_claim", &settings.groups_claim, source.groups_claim)?;
        let roles = path("roles_claim", &settings.roles_claim, source.roles_claim)?;
        let organisations = (source.organisations && scopes.iter().any(|s| s == "read:org"))
            .then(|| userinfo.map(|u| (under(u, "/orgs"), under(u, "/teams"))))
            .flatten();
        Ok(GroupSources {
            groups: groups.into_iter().collect(),
            roles: roles.into_iter().collect(),
            // A configured claim may be in either document.
            userinfo: source.userinfo || settings.groups_claim.is_some(),
            hosted_domain: source.hosted_domain,
            organisations,
        })
    }
}

/// `base` with `suffix` appended to its path, and `per_page=100`.
fn under(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("{}{suffix}", base.path().trim_end_matches('/')));
    url.set_query(Some("per_page=100"));
    url
}

impl Provider {
    /// Whether reading the user's groups needs the userinfo answer (GitLab lists groups
    /// there; a configured `groups_claim` may be there).
    pub fn groups_need_userinfo(&self) -> bool {
        self.groups.userinfo && self.endpoints.userinfo.is_some()
    }

    /// Whether the user's organisations and teams are read (GitHub with `read:org`).
    pub fn lists_organisations(&self) -> bool {
        self.groups.organisations.is_some()
    }

    /// The groups, roles and `rule_claims` the provider's answers say (the ID token's
    /// claims first, then userinfo's), with the Workspace domain as a group when the preset
    /// says so. Pure. [`AttributeError::DistributedGroups`] when the groups claim was moved
    /// out of the token (Entra's groups overage).
    pub fn read_attributes(
        &self,
        id_token: Option<&IdTokenClaims>,
        userinfo: Option<&UserInfo>,
        rule_claims: &[ClaimPath],
    ) -> Result<Attributes, AttributeError> {
        let id_doc = id_token.map(|c| {
            let mut doc = c.extra.clone();
            if let Some(name) = &c.preferred_username {
                doc.insert("preferred_username".into(), Value::String(name.clone()));
            }
            doc
        });
        let info_doc = userinfo.map(|u| {
            let mut doc = u.claims.clone();
            if let Some(name) = &u.preferred_username {
                doc.insert("preferred_username".into(), Value::String(name.clone()));
            }
            doc
        });
        let documents: Vec<&Map<String, Value>> = id_doc.iter().chain(info_doc.iter()).collect();
        let sources = AttributeSources {
            groups: self.groups.groups.clone(),
            roles: self.groups.roles.clone(),
            claims: rule_claims.to_vec(),
        };
        let mut attributes = Attributes::read(&sources, &documents)?;
        if self.groups.hosted_domain
            && let Some(Value::String(hd)) = documents.iter().find_map(|d| d.get("hd"))
        {
            attributes.add_groups([hd.to_ascii_lowercase()]);
        }
        Ok(attributes)
    }

    /// The user's GitHub organisations and teams as groups (`org`, `org/team-slug`, lower
    /// case); empty when the provider does not list them.
    pub async fn organisations(&self, access_token: &Secret) -> Result<Vec<String>, ProviderError> {
        let Some((orgs, teams)) = self.groups.organisations.clone() else {
            return Ok(Vec::new());
        };
        let orgs = self.github_list(orgs, access_token).await?;
        let teams = self.github_list(teams, access_token).await?;
        let mut groups = parse_organisations(&orgs);
        groups.extend(parse_teams(&teams));
        Ok(groups)
    }

    async fn github_list(&self, url: Url, access_token: &Secret) -> Result<Vec<u8>, ProviderError> {
        let request = self
            .http
            .inner()
            .get(url)
            .header(ACCEPT, "application/vnd.github+json")
            .bearer_auth(access_token.expose());
        let raw = self.http.send(&self.id, request).await?;
        if !raw.is_success() {
            return Err(check(&self.id, &raw, &[])
                .err()
                .unwrap_or_else(|| status_error(&self.id, &raw)));
        }
        match serde_json::from_slice::<Value>(&raw.body) {
            Ok(Value::Array(_)) => Ok(raw.body),
            _ => {
                Err(protocol(&self.id, "organisation list is not a JSON array")
                    .with_status(raw.status))
            }
        }
    }
}

/// `GET /user/orgs`: `[{"login": "octo-org", …}, …]` → `["octo-org", …]`.
pub fn parse_organisations(body: &[u8]) -> Vec<String> {
    let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| e.get("login")?.as_str())
        .filter(|l| !l.is_empty())
        .map(str::to_ascii_lowercase)
        .take(MAX_ORGANISATIONS)
        .collect()
}

/// `GET /user/teams`: `[{"slug": "core", "organization": {"login": "octo-org"}}, …]` →
/// `["octo-org/core", …]`.
pub fn parse_teams(body: &[u8]) -> Vec<String> {
    let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let slug = e.get("slug")?.as_str()?;
            let org = e.get("organization")?.get("login")?.as_str()?;
            (!slug.is_empty() && !org.is_empty())
                .then(|| format!("{org}/{slug}").to_ascii_lowercase())
        })
        .take(MAX_ORGANISATIONS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_organisations_and_teams_become_lower_case_groups() {
        let orgs = json!([{"login": "Octo-Org", "id": 1}, {"login": ""}, {"id": 2}, "x"]);
        assert_eq!(
            parse_organisations(orgs.to_string().as_bytes()),
            vec!["octo-org"]
        );
        let teams = json!([
            {"slug": "core", "name": "Core", "organization": {"login": "Octo-Org"}},
            {"slug": "docs"},
            {"slug": "", "organization": {"login": "a"}},
        ]);
        assert_eq!(
            parse_teams(teams.to_string().as_bytes()),
            vec!["octo-org/core"]
        );
        assert!(parse_teams(b"{\"message\":\"Bad credentials\"}").is_empty());
    }

    #[test]
    fn organisation_endpoints_live_under_userinfo() {
        let base = Url::parse("http://127.0.0.1:9/api/user").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            under(&base, "/teams").as_str(),
            "http://127.0.0.1:9/api/user/teams?per_page=100"
        );
    }
}
