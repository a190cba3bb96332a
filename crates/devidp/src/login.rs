//! The login form: who signs in, as typed into the development provider's form.
//!
//! Any user name signs in. Beyond the name and address, the form's "identity claims"
//! fields let a test (or a curious demo user) choose what the provider states about the
//! address — the cases real providers produce:
//!
//! | field | values | claim |
//! |---|---|---|
//! | `email_verified` | `true` (default), `false`, `absent` | `email_verified`, left out for `absent` |
//! | `hd` | a domain, or empty | Google's `hd` (hosted domain) |
//! | `tid` | a tenant id, or empty | Entra's `tid` (and the issuer's tenant segment in template mode) |
//! | `xms_edov` | empty (absent), `true`, `false` | Entra's `xms_edov` |
//! | `groups` | names separated by commas, or empty | `groups` (left out when empty) |
//! | `roles` | names separated by commas, or empty | `roles` and Keycloak's `realm_access.roles` |
//! | `groups_overage` | `true`, or empty | Entra's groups overage: no `groups` in the ID token, `_claim_names` / `_claim_sources` instead |

use serde::Deserialize;

use crate::grants::Identity;

/// The submitted login form; every field is optional text.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    pub(crate) request: String,
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) email_verified: String,
    pub(crate) hd: String,
    pub(crate) tid: String,
    pub(crate) xms_edov: String,
    pub(crate) groups: String,
    pub(crate) roles: String,
    pub(crate) groups_overage: String,
    pub(crate) action: String,
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Check the form; returns the identity or a message for the user.
pub(crate) fn identity_from(form: &LoginForm) -> Result<Identity, &'static str> {
    let username = form.username.trim();
    if username.is_empty() {
        return Err("Enter a user name.");
    }
    if username.chars().count() > 64 || has_control(username) {
        return Err("The user name must be at most 64 printable characters.");
    }
    let name = form.name.trim();
    if name.chars().count() > 128 || has_control(name) {
        return Err("The display name must be at most 128 printable characters.");
    }
    let email = form.email.trim();
    let email = if email.is_empty() {
        username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            .then(|| format!("{}@example.com", username.to_ascii_lowercase()))
    } else {
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !valid {
            return Err("Enter a valid email address, or leave it empty.");
        }
        Some(email.to_owned())
    };
    let email_verified = match form.email_verified.trim() {
        "" | "true" => Some(true),
        "false" => Some(false),
        "absent" => None,
        _ => return Err("email_verified must be true, false or absent."),
    };
    let domain_owner_verified = match form.xms_edov.trim() {
        "" | "absent" => None,
        "true" => Some(true),
        "false" => Some(false),
        _ => return Err("xms_edov must be true, false or empty."),
    };
    let hosted_domain = optional(&form.hd, 253, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
    })
    .ok_or("hd must be a domain name (letters, digits, '.', '-').")?;
    let tenant_id = optional(&form.tid, 64, |b| b.is_ascii_alphanumeric() || b == b'-')
        .ok_or("tid must be at most 64 letters, digits or '-'.")?;
    let groups = names(&form.groups).ok_or(GROUPS_ERROR)?;
    let roles = names(&form.roles).ok_or(ROLES_ERROR)?;
    let groups_overage = match form.groups_overage.trim() {
        "" | "false" => false,
        "true" => true,
        _ => return Err("groups_overage must be true or empty."),
    };
    Ok(Identity {
        groups_overage,
        groups,
        roles,
        sub: username.to_owned(),
        name: Some(if name.is_empty() { username } else { name }.to_owned()),
        email,
        email_verified,
        hosted_domain,
        tenant_id,
        domain_owner_verified,
    })
}

const GROUPS_ERROR: &str =
    "groups must be at most 50 comma-separated names of at most 128 printable characters.";
const ROLES_ERROR: &str =
    "roles must be at most 50 comma-separated names of at most 128 printable characters.";

/// A comma-separated list of names (trimmed, empty ones skipped); `None` when a name is
/// too long or has control characters, or there are more than 50.
fn names(text: &str) -> Option<Vec<String>> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    (list.len() <= 50
        && list
            .iter()
            .all(|n| n.chars().count() <= 128 && !has_control(n)))
    .then_some(list)
}

/// An optional short field: `Some(None)` when empty, `Some(Some(v))` when every byte
/// passes `allowed` and it is at most `max` bytes, `None` when invalid.
fn optional(text: &str, max: usize, allowed: fn(u8) -> bool) -> Option<Option<String>> {
    let text = text.trim();
    if text.is_empty() {
        return Some(None);
    }
    (text.len() <= max && text.bytes().all(allowed)).then(|| Some(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_roles_are_comma_separated_names() {
        let form = |groups: &str, roles: &str| LoginForm {
            username: "ann".into(),
            groups: groups.into(),
            roles: roles.into(),
            ..LoginForm::default()
        };
        let id = identity_from(&form(" staff, ops ,,", "admin")).unwrap();
        assert_eq!(id.groups, ["staff", "ops"]);
        assert_eq!(id.roles, ["admin"]);
        assert!(identity_from(&form("", "")).unwrap().groups.is_empty());
        assert_eq!(identity_from(&form("a\u{7}", "")).err(), Some(GROUPS_ERROR));
        let many = vec!["g"; 51].join(",");
        assert_eq!(identity_from(&form("", &many)).err(), Some(ROLES_ERROR));
    }

    #[test]
    fn identity_claims_follow_the_form() {
        let form = |verified: &str, hd: &str, tid: &str, edov: &str| LoginForm {
            username: "mallory".into(),
            email: "ceo@corp.example".into(),
            email_verified: verified.into(),
            hd: hd.into(),
            tid: tid.into(),
            xms_edov: edov.into(),
            ..LoginForm::default()
        };
        let id = identity_from(&form("", "", "", "")).unwrap();
        assert_eq!(id.email_verified, Some(true), "verified by default");
        assert_eq!(
            (id.hosted_domain, id.tenant_id, id.domain_owner_verified),
            (None, None, None)
        );
        assert_eq!(
            identity_from(&form("false", "", "", ""))
                .unwrap()
                .email_verified,
            Some(false)
        );
        assert_eq!(
            identity_from(&form("absent", "", "", ""))
                .unwrap()
                .email_verified,
            None
        );
        let id = identity_from(&form("true", "corp.example", "abc-123", "true")).unwrap();
        assert_eq!(id.hosted_domain.as_deref(), Some("corp.example"));
        assert_eq!(id.tenant_id.as_deref(), Some("abc-123"));
        assert_eq!(id.domain_owner_verified, Some(true));
        assert_eq!(
            identity_from(&form("", "", "", "false"))
                .unwrap()
                .domain_owner_verified,
            Some(false)
        );
        for bad in [
            form("maybe", "", "", ""),
            form("", "a b", "", ""),
            form("", "", "../x", ""),
            form("", "", "", "1"),
        ] {
            assert!(identity_from(&bad).is_err());
        }
    }

    #[test]
    fn identity_defaults_and_validation() {
        let form = |u: &str, n: &str, e: &str| LoginForm {
            username: u.into(),
            name: n.into(),
            email: e.into(),
            ..LoginForm::default()
        };
        let id = identity_from(&form(" Alice ", "", "")).unwrap();
        assert_eq!(id.sub, "Alice");
        assert_eq!(id.name.as_deref(), Some("Alice"));
        assert_eq!(id.email.as_deref(), Some("alice@example.com"));
        let id = identity_from(&form("Jo Doe", "Jo", "")).unwrap();
        assert_eq!(id.email, None);
        assert!(identity_from(&form("", "", "")).is_err());
        assert!(identity_from(&form("a\u{7}", "", "")).is_err());
        assert!(identity_from(&form("a", "", "not-an-email")).is_err());
        assert_eq!(
            identity_from(&form("a", "", "a@b.example"))
                .unwrap()
                .email
                .as_deref(),
            Some("a@b.example")
        );
    }
}
