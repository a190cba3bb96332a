//! Directories (tenants) of a multi-directory provider: Microsoft Entra ID.
//!
//! An Entra application registered as multi-tenant accepts users of *any*
//! directory through the `common` endpoint, and in another directory anyone
//! can set any `email`. So a provider with tenants must say which directory
//! it admits: one tenant id (a GUID; the default issuer becomes
//! `https://login.microsoftonline.com/{tenant}/v2.0`), or — written out
//! explicitly, never by default — `common`, `organizations` or `consumers`.
//! Every ID token's `tid` is then checked against that choice, on top of the
//! `iss` check (whose `{tenantid}` template `tid` fills in).

use crate::preset::TenantSpec;
use url::Url;

/// Which directories' users may sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantPolicy {
    /// One directory: `tid` must be this id (lower-case GUID).
    One(String),
    /// `common`: any directory, personal accounts included.
    Any,
    /// `organizations`: any work or school directory, not personal accounts.
    Organizations {
        /// The tenant id of personal accounts, refused.
        consumer_tenant: &'static str,
    },
    /// `consumers`: personal accounts only.
    Consumers {
        /// The tenant id of personal accounts, required.
        consumer_tenant: &'static str,
    },
}

impl TenantPolicy {
    /// Whether an ID token with this `tid` comes from an admitted directory.
    pub fn admits(&self, tid: Option<&str>) -> bool {
        let Some(tid) = tid.filter(|t| !t.is_empty()) else {
            return false;
        };
        match self {
            TenantPolicy::One(tenant) => tid.eq_ignore_ascii_case(tenant),
            TenantPolicy::Any => true,
            TenantPolicy::Organizations { consumer_tenant } => {
                !tid.eq_ignore_ascii_case(consumer_tenant)
            }
            TenantPolicy::Consumers { consumer_tenant } => {
                tid.eq_ignore_ascii_case(consumer_tenant)
            }
        }
    }

    /// Whether exactly one directory is admitted (its administrators then
    /// vouch for the addresses it issues).
    pub fn is_pinned(&self) -> bool {
        matches!(self, TenantPolicy::One(_))
    }
}

/// Why a provider's tenant setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// Neither `tenant` nor `issuer` names a directory.
    #[error(
        "needs `tenant`: your directory (tenant) ID, or \"common\", \"organizations\" or \"consumers\" to admit users of other directories"
    )]
    Missing,
    /// The issuer names a multi-directory endpoint that `tenant` does not
    /// confirm.
    #[error(
        "issuer {0:?} admits users of any directory, whose e-mail addresses anyone can set; name your tenant ID in `tenant`, or write `tenant = \"{0}\"` to accept that"
    )]
    MultiTenantImplicit(String),
    /// Not a GUID nor one of the keywords.
    #[error(
        "tenant {0:?} is not a directory (tenant) ID like 72f988bf-86f1-41af-91ab-2d7cd011db47, nor \"common\", \"organizations\" or \"consumers\""
    )]
    Invalid(String),
    /// `tenant` and the issuer's tenant segment differ.
    #[error("tenant {tenant:?} does not match the issuer's tenant {issuer:?}")]
    Mismatch {
        /// The configured tenant.
        tenant: String,
        /// The first path segment of the configured issuer.
        issuer: String,
    },
}

/// The admitted directories and the issuer to discover, from the configured
/// `tenant` and `issuer` (an explicit issuer wins over the template; its
/// first path segment is its tenant).
pub(crate) fn resolve(
    spec: &TenantSpec,
    tenant: Option<&str>,
    issuer: Option<&Url>,
) -> Result<(TenantPolicy, Url), TenantError> {
    let issuer_tenant = issuer
        .and_then(|u| u.path_segments())
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let (chosen, explicit) = match (tenant, &issuer_tenant) {
        (Some(t), Some(i)) if !t.eq_ignore_ascii_case(i) => {
            return Err(TenantError::Mismatch {
                tenant: t.to_owned(),
                issuer: i.clone(),
            });
        }
        (Some(t), _) => (t.to_owned(), true),
        (None, Some(i)) => (i.clone(), false),
        (None, None) => return Err(TenantError::Missing),
    };
    let lower = chosen.to_ascii_lowercase();
    let policy = match lower.as_str() {
        keyword if spec.multi_tenant.contains(&keyword) => {
            if !explicit {
                return Err(TenantError::MultiTenantImplicit(lower));
            }
            match keyword {
                "organizations" => TenantPolicy::Organizations {
                    consumer_tenant: spec.consumer_tenant,
                },
                "consumers" => TenantPolicy::Consumers {
                    consumer_tenant: spec.consumer_tenant,
                },
                _ => TenantPolicy::Any,
            }
        }
        id if is_guid(id) => TenantPolicy::One(id.to_owned()),
        _ => return Err(TenantError::Invalid(chosen)),
    };
    let issuer = match issuer {
        Some(u) => u.clone(),
        None => Url::parse(&spec.issuer_template.replace("{tenant}", &lower))
            .map_err(|_| TenantError::Invalid(chosen))?,
    };
    Ok((policy, issuer))
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::preset::Preset;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const CONSUMER: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

    fn spec() -> TenantSpec {
        Preset::MicrosoftEntraId.spec().tenants.unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn multi_tenant_endpoints_are_refused_unless_written_out() {
        let common = url("https://login.microsoftonline.com/common/v2.0");
        let upper = TID.to_ascii_uppercase();
        let cases: Vec<(
            Option<&str>,
            Option<&Url>,
            Result<TenantPolicy, TenantError>,
        )> = vec![
            (None, None, Err(TenantError::Missing)),
            (
                None,
                Some(&common),
                Err(TenantError::MultiTenantImplicit("common".into())),
            ),
            (Some("common"), None, Ok(TenantPolicy::Any)),
            (Some("Common"), Some(&common), Ok(TenantPolicy::Any)),
            (
                Some("organizations"),
                None,
                Ok(TenantPolicy::Organizations {
                    consumer_tenant: CONSUMER,
                }),
            ),
            (
                Some("consumers"),
                None,
                Ok(TenantPolicy::Consumers {
                    consumer_tenant: CONSUMER,
                }),
            ),
            (Some(TID), None, Ok(TenantPolicy::One(TID.into()))),
            (
                Some(upper.as_str()),
                None,
                Ok(TenantPolicy::One(TID.into())),
            ),
            (
                Some("contoso.onmicrosoft.com"),
                None,
                Err(TenantError::Invalid("contoso.onmicrosoft.com".into())),
            ),
            (
                Some(TID),
                Some(&common),
                Err(TenantError::Mismatch {
                    tenant: TID.into(),
                    issuer: "common".into(),
                }),
            ),
        ];
        for (tenant, issuer, expected) in cases {
            let got = resolve(&spec(), tenant, issuer).map(|(p, _)| p);
            assert_eq!(got, expected, "tenant {tenant:?}, issuer {issuer:?}");
        }
    }

    #[test]
    fn the_issuer_follows_the_tenant_unless_configured() {
        let (_, issuer) = resolve(&spec(), Some(TID), None).unwrap();
        assert_eq!(
            issuer.as_str(),
            format!("https://login.microsoftonline.com/{TID}/v2.0")
        );
        let local = url(&format!("http://127.0.0.1:9/{TID}/v2.0"));
        let (policy, issuer) = resolve(&spec(), None, Some(&local)).unwrap();
        assert_eq!((policy, issuer), (TenantPolicy::One(TID.into()), local));
    }

    #[test]
    fn id_tokens_are_admitted_by_their_tid() {
        let one = TenantPolicy::One(TID.into());
        assert!(one.admits(Some(TID)));
        assert!(one.admits(Some(&TID.to_ascii_uppercase())));
        assert!(!one.admits(Some(CONSUMER)));
        assert!(!one.admits(None));
        assert!(TenantPolicy::Any.admits(Some(CONSUMER)));
        assert!(!TenantPolicy::Any.admits(None));
        assert!(!TenantPolicy::Any.admits(Some("")));
        let orgs = TenantPolicy::Organizations {
            consumer_tenant: CONSUMER,
        };
        assert!(orgs.admits(Some(TID)) && !orgs.admits(Some(CONSUMER)));
        let consumers = TenantPolicy::Consumers {
            consumer_tenant: CONSUMER,
        };
        assert!(consumers.admits(Some(CONSUMER)) && !consumers.admits(Some(TID)));
        assert!(one.is_pinned() && !TenantPolicy::Any.is_pinned());
    }
}
