//! Values that must never be printed: secrets (one type for the whole
//! workspace, [`authgate_core::secret::Secret`]), and URLs that may carry passwords.

use std::fmt;

pub use authgate_core::secret::Secret;
use serde::de::{Deserialize, Deserializer};

/// A service URL (`sqlite://…`, `postgres://…`, `memory://`, `redis://…`) that may
/// contain a password. `Debug` and `Display` hide the password and credential-like
/// query parameters; [`ServiceUrl::as_str`] gives the full URL for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// Wraps a URL string.
    pub fn new(url: impl Into<String>) -> Self {
        ServiceUrl(url.into())
    }

    /// The full URL, password included. Never log or display it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme (text before `://`, lower-cased), or `None` if there is no `://`.
    pub fn scheme(&self) -> Option<String> {
        self.0
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// The URL with any password and credential-like query values replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user info ends at the last '@' before any query: a password with an
    // unencoded '/' must not end the authority early and be printed.
    let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
    let host_start = rest[..query_start].rfind('@').map_or(0, |at| at + 1);
    let authority_end = rest[host_start..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| host_start + i);
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:[redacted]@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let (path, query_and_fragment) = match tail.find('?') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let query_and_fragment = if let Some(query) = query_and_fragment.strip_prefix('?') {
        let (query, fragment) = match query.find('#') {
            Some(i) => query.split_at(i),
            None => (query, ""),
        };
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_credential_name(name) => format!("{name}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect();
        format!("?{}{fragment}", pairs.join("&"))
    } else {
        query_and_fragment.to_owned()
    };
    format!("{scheme}://{authority}{path}{query_and_fragment}")
}

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "auth"]
        .iter()
        .any(|word| name.contains(word))
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUrl({:?})", self.redacted())
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for ServiceUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ServiceUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_shows_only_length() {
        let s = Secret::new("super-secret-value");
        assert_eq!(format!("{s:?}"), "Secret([redacted; 18 bytes])");
    }

    #[test]
    fn service_url_hides_password_and_credential_query_values() {
        let u = ServiceUrl::new("postgres://app:hunter2@db:5432/auth?sslmode=require&password=x2");
        let shown = u.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("x2"),
            "{shown}"
        );
        assert_eq!(
            shown,
            "postgres://app:[redacted]@db:5432/auth?sslmode=require&password=[redacted]"
        );
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(
            ServiceUrl::new("redis://:pw@127.0.0.1:6379").to_string(),
            "redis://:[redacted]@127.0.0.1:6379"
        );
        assert_eq!(ServiceUrl::new("memory://").to_string(), "memory://");
        assert_eq!(
            ServiceUrl::new("sqlite://authgate.db").to_string(),
            "sqlite://authgate.db"
        );
    }
}
