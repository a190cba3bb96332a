//! Google Workspace group membership, read with a service account (domain-wide delegation).
//!
//! The gateway signs an RFC 7523 JWT-bearer assertion with the service account's private
//! key (RS256: `iss` = the key's `client_email`, `sub` = the Workspace admin it
//! impersonates, `scope` = [`DIRECTORY_SCOPE`], `aud` = the key's `token_uri`, one hour),
//! exchanges it at `token_uri` for an access token (cached until a minute before its
//! `expires_in`), and lists `GET {directory}/admin/directory/v1/groups?userKey={email}`,
//! following `nextPageToken`, at most [`MAX_WORKSPACE_GROUPS`] groups. Each group is named
//! by its `email` (`staff@corp.example`), lower case. The private key is never logged.

use crate::provider::Provider;
use crate::response::{check, protocol, status_error};
use authgate_core::provider_error::ProviderError;
use authgate_core::secret::Secret;
use authgate_core::time::UnixTime;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::{Arc, Mutex};
use url::Url;

/// The scope asked for: read-only access to the Directory API's groups.
pub const DIRECTORY_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

/// The most Workspace groups read for one user.
pub const MAX_WORKSPACE_GROUPS: usize = 500;

/// The Directory API's default base URL.
pub const DEFAULT_DIRECTORY_URL: &str = "https://admin.googleapis.com";

/// Lifetime of a signed assertion (Google accepts at most one hour).
const ASSERTION_LIFETIME: i64 = 3600;

/// A cached access token is dropped this long before it expires.
const TOKEN_MARGIN: i64 = 60;

/// The most pages followed (a page has up to 200 groups).
const MAX_PAGES: usize = 5;

/// How a Google provider reads Workspace groups: configuration input.
#[derive(Clone)]
pub struct WorkspaceGroupsSettings {
    /// The service account's JSON key file as Google issues it.
    pub service_account_key: Secret,
    /// The Workspace admin the service account impersonates.
    pub admin_email: String,
    /// The Directory API's base URL; `None`: [`DEFAULT_DIRECTORY_URL`].
    pub directory_url: Option<Url>,
}

impl fmt::Debug for WorkspaceGroupsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkspaceGroupsSettings")
            .field("admin_email", &self.admin_email)
            .field(
                "directory_url",
                &self.directory_url.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

/// Why a service account key is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServiceAccountError {
    /// Not JSON, or not a `"type": "service_account"` key.
    #[error("not a Google service account key (JSON with \"type\": \"service_account\")")]
    NotServiceAccount,
    /// A required field is missing or empty.
    #[error("the service account key has no {0}")]
    MissingField(&'static str),
    /// `token_uri` is not an absolute http(s) URL.
    #[error("the service account key's token_uri is not an http(s) URL")]
    InvalidTokenUri,
    /// `private_key` is not an RSA private key in PEM.
    #[error("the service account key's private_key is not an RSA private key (PEM)")]
    InvalidPrivateKey,
    /// The Directory API's base URL is not an absolute http(s) URL.
    #[error("directory_url is not an http(s) URL")]
    InvalidDirectoryUrl,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// A parsed service account key: what signing an assertion needs.
#[derive(Clone)]
pub struct ServiceAccount {
    client_email: String,
    key: EncodingKey,
    token_uri: Url,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Parse Google's JSON key file (`type`, `client_email`, `private_key`, `token_uri`).
    pub fn parse(json: &str) -> Result<ServiceAccount, ServiceAccountError> {
        let file: KeyFile =
            serde_json::from_str(json).map_err(|_| ServiceAccountError::NotServiceAccount)?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(ServiceAccountError::NotServiceAccount);
        }
        let field = |v: Option<String>, name: &'static str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or(ServiceAccountError::MissingField(name))
        };
        let client_email = field(file.client_email, "client_email")?;
        let private_key = field(file.private_key, "private_key")?;
        let token_uri = field(file.token_uri, "token_uri")?;
        let token_uri = Url::parse(&token_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(ServiceAccountError::InvalidTokenUri)?;
        let key = EncodingKey::from_rsa_pem(private_key.as_bytes())
            .map_err(|_| ServiceAccountError::InvalidPrivateKey)?;
        Ok(ServiceAccount {
            client_email,
            key,
            token_uri,
        })
    }

    /// The service account's address (`iss` of its assertions).
    pub fn client_email(&self) -> &str {
        &self.client_email
    }
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// A provider's Workspace directory reader, with its cached access token.
#[derive(Clone)]
pub(crate) struct WorkspaceDirectory {
    account: ServiceAccount,
    admin_email: String,
    directory_url: Url,
    /// The access token and when (Unix seconds) it stops being used.
    token: Arc<Mutex<Option<(Secret, i64)>>>,
}

impl fmt::Debug for WorkspaceDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkspaceDirectory")
            .field("account", &self.account)
            .field("admin_email", &self.admin_email)
            .finish_non_exhaustive()
    }
}

impl WorkspaceDirectory {
    pub(crate) fn new(settings: &WorkspaceGroupsSettings) -> Result<Self, ServiceAccountError> {
        let directory_url = match &settings.directory_url {
            Some(url) => Some(url.clone()),
            None => Url::parse(DEFAULT_DIRECTORY_URL).ok(),
        }
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or(ServiceAccountError::InvalidDirectoryUrl)?;
        Ok(WorkspaceDirectory {
            account: ServiceAccount::parse(settings.service_account_key.expose())?,
            admin_email: settings.admin_email.clone(),
            directory_url,
            token: Arc::new(Mutex::new(None)),
        })
    }

    fn cached(&self, now: i64) -> Option<Secret> {
        let guard = self.token.lock().ok()?;
        guard
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(t, _)| t.clone())
    }

    fn store(&self, token: Secret, until: i64) {
        if let Ok(mut guard) = self.token.lock() {
            *guard = Some((token, until));
        }
    }

    fn assertion(&self, now: i64) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Assertion {
            iss: &self.account.client_email,
            sub: &self.admin_email,
            scope: DIRECTORY_SCOPE,
            aud: self.account.token_uri.as_str(),
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.account.key)
    }
}

impl Provider {
    /// Whether the user's Google Workspace groups are read (a service account is configured).
    pub fn lists_workspace_groups(&self) -> bool {
        self.workspace.is_some()
    }

    /// The Workspace groups (their addresses, lower case) of the user with this verified
    /// address; empty when the provider does not read them.
    pub async fn workspace_groups(
        &self,
        user_email: &str,
        now: UnixTime,
    ) -> Result<Vec<String>, ProviderError> {
        let Some(directory) = self.workspace.as_ref() else {
            return Ok(Vec::new());
        };
        let token = self.directory_token(directory, now.as_secs()).await?;
        let mut groups = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = directory.directory_url.clone();
            url.set_path(&format!(
                "{}/admin/directory/v1/groups",
                directory.directory_url.path().trim_end_matches('/')
            ));
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("userKey", user_email);
                query.append_pair("maxResults", "200");
                if let Some(page) = &page_token {
                    query.append_pair("pageToken", page);
                }
            }
            let request = self
                .http
                .inner()
                .get(url)
                .header(ACCEPT, "application/json")
                .bearer_auth(token.expose());
            let raw = self.http.send(&self.id, request).await?;
            if !raw.is_success() {
                if raw.status == 401 {
                    // The token was revoked or expired early: the next call asks anew.
                    directory.store(Secret::new(""), 0);
                }
                return Err(status_error(&self.id, &raw));
            }
            let page = parse_groups_page(&raw.body).ok_or_else(|| {
                protocol(&self.id, "directory group list is not JSON").with_status(raw.status)
            })?;
            groups.extend(page.groups);
            if groups.len() >= MAX_WORKSPACE_GROUPS {
                groups.truncate(MAX_WORKSPACE_GROUPS);
                break;
            }
            match page.next {
                Some(next) => page_token = Some(next),
                None => break,
            }
        }
        Ok(groups)
    }

    async fn directory_token(
        &self,
        directory: &WorkspaceDirectory,
        now: i64,
    ) -> Result<Secret, ProviderError> {
        if let Some(token) = directory.cached(now) {
            return Ok(token);
        }
        let assertion = directory.assertion(now).map_err(|error| {
            tracing::warn!(provider = %self.id, %error, "service account assertion not signed");
            protocol(&self.id, "service account assertion could not be signed")
        })?;
        let request = self
            .http
            .inner()
            .post(directory.account.token_uri.clone())
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ]);
        let raw = self.http.send(&self.id, request).await?;
        let body = check(&self.id, &raw, &[])?;
        let Some(Value::String(token)) = body.get("access_token") else {
            return Err(
                protocol(&self.id, "service account token answer has no access_token")
                    .with_status(raw.status),
            );
        };
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(ASSERTION_LIFETIME);
        let token = Secret::new(token.clone());
        directory.store(token.clone(), now + expires_in - TOKEN_MARGIN);
        Ok(token)
    }
}

/// One page of `groups.list`.
#[derive(Debug, PartialEq, Eq)]
struct GroupsPage {
    groups: Vec<String>,
    next: Option<String>,
}

/// `{"groups": [{"email": "Staff@corp.example", …}], "nextPageToken": "…"}` (no `groups`
/// when the user is in none).
fn parse_groups_page(body: &[u8]) -> Option<GroupsPage> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let groups = doc
        .get("groups")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|g| g.get("email")?.as_str())
                .filter(|e| !e.is_empty())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let next = doc
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Some(GroupsPage { groups, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_groups_page_names_groups_by_their_lower_case_address() {
        let body = json!({
            "kind": "admin#directory#groups",
            "groups": [{"email": "Staff@Corp.example", "name": "Staff"}, {"name": "x"}],
            "nextPageToken": "p2",
        });
        assert_eq!(
            parse_groups_page(body.to_string().as_bytes()),
            Some(GroupsPage {
                groups: vec!["staff@corp.example".into()],
                next: Some("p2".into())
            })
        );
        assert_eq!(
            parse_groups_page(b"{\"kind\":\"admin#directory#groups\"}"),
            Some(GroupsPage {
                groups: vec![],
                next: None
            })
        );
        assert_eq!(parse_groups_page(b"[]"), None);
    }

    fn key_file() -> String {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        use base64::Engine;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .unwrap_or_else(|e| panic!("{e}"));
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap_or_else(|e| panic!("{e}"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        json!({
            "type": "service_account",
            "client_email": "sa@p.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }

    #[test]
    fn a_service_account_signs_a_one_hour_assertion_and_never_shows_its_key() {
        let settings = WorkspaceGroupsSettings {
            service_account_key: Secret::new(key_file()),
            admin_email: "admin@corp.example".into(),
            directory_url: None,
        };
        let directory = WorkspaceDirectory::new(&settings).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            directory.directory_url.as_str(),
            "https://admin.googleapis.com/"
        );
        let jwt = directory.assertion(1_000).unwrap_or_else(|e| panic!("{e}"));
        let header = jsonwebtoken::decode_header(&jwt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header.alg, Algorithm::RS256);
        let payload = jwt.split('.').nth(1).unwrap_or_default();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(
            claims,
            json!({
                "iss": "sa@p.iam.gserviceaccount.com",
                "sub": "admin@corp.example",
                "scope": DIRECTORY_SCOPE,
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_000,
                "exp": 4_600,
            })
        );
        for shown in [format!("{settings:?}"), format!("{directory:?}")] {
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
        // The cache: kept until its time, then gone.
        directory.store(Secret::new("t"), 2_000);
        assert_eq!(
            directory.cached(1_999).map(|t| t.expose().to_owned()),
            Some("t".into())
        );
        assert!(directory.cached(2_000).is_none());
    }

    #[test]
    fn a_key_file_without_its_fields_is_refused() {
        assert_eq!(
            ServiceAccount::parse("{}").err(),
            Some(ServiceAccountError::NotServiceAccount)
        );
        assert_eq!(
            ServiceAccount::parse(r#"{"type":"service_account","private_key":"x","token_uri":"https://oauth2.googleapis.com/token"}"#).err(),
            Some(ServiceAccountError::MissingField("client_email"))
        );
        assert_eq!(
            ServiceAccount::parse(r#"{"type":"service_account","client_email":"a@b","private_key":"x","token_uri":"https://oauth2.googleapis.com/token"}"#).err(),
            Some(ServiceAccountError::InvalidPrivateKey)
        );
    }
}
