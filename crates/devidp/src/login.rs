//! The login form: who signs in, as typed into the development provider's form.

use serde::Deserialize;

use crate::grants::Identity;

#[derive(Default, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    pub(crate) request: String,
    #[serde(default)]
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) email: String,
    #[serde(default)]
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
    Ok(Identity {
        sub: username.to_owned(),
        name: Some(if name.is_empty() { username } else { name }.to_owned()),
        email,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

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
