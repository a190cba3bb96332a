//! Who may use a route beyond having a session: e-mail and domain allow-lists.
//!
//! A route rule carries one [`AllowList`]; a [`Judgement`](crate::Judgement) carries the
//! lists of every rule that some reading of the path matched, and a user passes only when
//! each of them permits. [`Permits`] is what the gateway's access decision asks.

/// Who may use a route beyond having a session. Empty lists allow everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Allowed e-mail addresses (lower case).
    pub emails: Vec<String>,
    /// Allowed e-mail domains (lower case, without `@`).
    pub domains: Vec<String>,
}

impl AllowList {
    /// Whether the list restricts anyone (an empty list allows every signed-in user).
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.domains.is_empty()
    }

    /// Whether a user with `email` may pass.
    pub fn permits(&self, email: Option<&str>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(email) = email else {
            return false;
        };
        let allowed_address = self.emails.iter().any(|e| e.eq_ignore_ascii_case(email));
        allowed_address
            || email.rsplit_once('@').is_some_and(|(_, domain)| {
                self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            })
    }
}

/// Says whether a signed-in user with a given e-mail address may pass: one [`AllowList`], or
/// a [`Judgement`](crate::Judgement), which combines the lists of every reading of a path.
pub trait Permits {
    /// Whether a user with `email` (`None`: the provider gave none) may pass.
    fn permits(&self, email: Option<&str>) -> bool;

    /// For the audit log: the route pattern whose allow-list refuses a user with `email`,
    /// when a route rule holds it (`None` for a lone [`AllowList`], or when every list
    /// permits).
    fn refusing_rule(&self, email: Option<&str>) -> Option<&str> {
        let _ = email;
        None
    }
}

impl Permits for AllowList {
    fn permits(&self, email: Option<&str>) -> bool {
        AllowList::permits(self, email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(emails: &[&str], domains: &[&str]) -> AllowList {
        AllowList {
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn an_empty_list_permits_everyone_a_set_list_only_its_members() {
        assert!(AllowList::default().permits(None));
        assert!(AllowList::default().permits(Some("anyone@example.com")));
        let l = list(&["ann@example.com"], &["corp.example"]);
        assert!(l.permits(Some("ann@example.com")));
        assert!(l.permits(Some("ANN@Example.com")));
        assert!(l.permits(Some("bob@corp.example")));
        assert!(l.permits(Some("bob@CORP.example")));
        assert!(!l.permits(Some("bob@example.com")));
        assert!(!l.permits(Some("bob@sub.corp.example")));
        assert!(!l.permits(Some("corp.example")));
        assert!(!l.permits(None));
    }
}
