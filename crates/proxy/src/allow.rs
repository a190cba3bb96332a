//! Who may use a route beyond having a session: allow-lists of e-mail addresses, domains,
//! groups, roles and claim values.
//!
//! A route rule carries one [`AllowList`]; a [`Judgement`](crate::Judgement) carries the
//! lists of every rule that some reading of the path matched, and a user passes only when
//! each of them permits. [`Permits`] is what the gateway's access decision asks, about a
//! [`Subject`]: the signed-in user's verified address and the groups, roles and claim values
//! kept with their session.
//!
//! # How the kinds combine
//!
//! An allow-list has five kinds: `emails`, `domains`, `groups`, `roles` and `claims`. An empty
//! kind says nothing; a list whose kinds are all empty permits every signed-in user.
//!
//! * **Any of within a kind**: a user satisfies a kind when *one* listed value matches — one of
//!   the `emails`, an address in one of the `domains`, one of the `groups`, one of the
//!   `roles`, or one of the `claims` entries (an entry matches when the claim at its path
//!   holds one of its values).
//! * **All of across kinds**: a user passes when they satisfy *every* kind that is not empty.
//! * `emails` and `domains` are the one exception: they are a single kind (the address), so
//!   `allow_emails = ["ann@a.example"]` with `allow_domains = ["corp.example"]` admits Ann
//!   and anyone at `corp.example`, as it always has.
//!
//! Addresses and domains compare ignoring ASCII case; groups, roles and claim values compare
//! exactly (providers' group names and ids are case-sensitive). A user the provider said
//! nothing about (no address, no groups…) satisfies no non-empty kind: rules fail closed.

use std::collections::BTreeMap;

/// One `allow_claims` entry: the claim at a dotted path must hold one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// The claim's dotted path as configured (`realm_access.roles`); it names the claim
    /// values kept with the session ([`Subject::claims`] is keyed by it).
    pub claim: String,
    /// The values that admit (exact comparison; numbers and booleans are kept in their JSON
    /// spelling, `42`, `true`).
    pub values: Vec<String>,
}

/// Who may use a route beyond having a session. Empty lists allow everyone (see the
/// [module documentation](self) for how the kinds combine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Allowed e-mail addresses (lower case).
    pub emails: Vec<String>,
    /// Allowed e-mail domains (lower case, without `@`).
    pub domains: Vec<String>,
    /// Allowed groups (any one suffices).
    pub groups: Vec<String>,
    /// Allowed roles (any one suffices).
    pub roles: Vec<String>,
    /// Allowed claim values (any one entry suffices).
    pub claims: Vec<ClaimRule>,
}

/// What an allow-list is asked about: the signed-in user's verified address and what their
/// session keeps of the provider's groups, roles and claims.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The verified e-mail address (`None`: the provider vouched for none).
    pub email: Option<&'a str>,
    /// The user's groups.
    pub groups: &'a [String],
    /// The user's roles.
    pub roles: &'a [String],
    /// Claim values kept with the session, by the dotted path rules name them with.
    pub claims: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl<'a> Subject<'a> {
    /// A user known only by their address.
    pub fn with_email(email: Option<&'a str>) -> Self {
        Subject {
            email,
            ..Subject::default()
        }
    }

    fn claim(&self, path: &str) -> &'a [String] {
        self.claims
            .and_then(|c| c.get(path))
            .map_or(&[], Vec::as_slice)
    }
}

impl AllowList {
    /// Whether the list restricts anyone (an empty list allows every signed-in user).
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty()
            && self.domains.is_empty()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.claims.is_empty()
    }

    /// Whether `who` may pass: every non-empty kind has a match.
    pub fn permits(&self, who: &Subject<'_>) -> bool {
        self.address_permits(who.email)
            && any_of(&self.groups, who.groups)
            && any_of(&self.roles, who.roles)
            && (self.claims.is_empty()
                || self
                    .claims
                    .iter()
                    .any(|rule| intersects(&rule.values, who.claim(&rule.claim))))
    }

    /// The address kind (`emails` and `domains` together).
    fn address_permits(&self, email: Option<&str>) -> bool {
        if self.emails.is_empty() && self.domains.is_empty() {
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

/// An empty `allowed` kind says nothing; otherwise one of `held` must be in it.
fn any_of(allowed: &[String], held: &[String]) -> bool {
    allowed.is_empty() || intersects(allowed, held)
}

fn intersects(allowed: &[String], held: &[String]) -> bool {
    held.iter().any(|h| allowed.iter().any(|a| a == h))
}

/// Says whether a signed-in user may pass: one [`AllowList`], or a
/// [`Judgement`](crate::Judgement), which combines the lists of every reading of a path.
pub trait Permits {
    /// Whether `who` may pass.
    fn permits(&self, who: &Subject<'_>) -> bool;

    /// For the audit log: the route pattern whose allow-list refuses `who`, when a route
    /// rule holds it (`None` for a lone [`AllowList`], or when every list permits).
    fn refusing_rule(&self, who: &Subject<'_>) -> Option<&str> {
        let _ = who;
        None
    }

    /// Whether every rule requiring a session opted in to bearer tokens (a route's
    /// `bearer = true`): then a bearer token may stand in for a session beyond `api`
    /// routes. `false` for a lone [`AllowList`].
    fn accepts_bearer(&self) -> bool {
        false
    }
}

impl Permits for AllowList {
    fn permits(&self, who: &Subject<'_>) -> bool {
        AllowList::permits(self, who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn list(emails: &[&str], domains: &[&str]) -> AllowList {
        AllowList {
            emails: strings(emails),
            domains: strings(domains),
            ..AllowList::default()
        }
    }

    fn email(e: Option<&str>) -> Subject<'_> {
        Subject::with_email(e)
    }

    #[test]
    fn an_empty_list_permits_everyone_a_set_list_only_its_members() {
        assert!(AllowList::default().permits(&email(None)));
        assert!(AllowList::default().permits(&email(Some("anyone@example.com"))));
        let l = list(&["ann@example.com"], &["corp.example"]);
        assert!(l.permits(&email(Some("ann@example.com"))));
        assert!(l.permits(&email(Some("ANN@Example.com"))));
        assert!(l.permits(&email(Some("bob@corp.example"))));
        assert!(l.permits(&email(Some("bob@CORP.example"))));
        assert!(!l.permits(&email(Some("bob@example.com"))));
        assert!(!l.permits(&email(Some("bob@sub.corp.example"))));
        assert!(!l.permits(&email(Some("corp.example"))));
        assert!(!l.permits(&email(None)));
    }

    /// A user in the table below.
    struct User {
        email: Option<&'static str>,
        groups: Vec<String>,
        roles: Vec<String>,
        claims: BTreeMap<String, Vec<String>>,
    }

    impl User {
        fn subject(&self) -> Subject<'_> {
            Subject {
                email: self.email,
                groups: &self.groups,
                roles: &self.roles,
                claims: Some(&self.claims),
            }
        }
    }

    fn user(
        email: Option<&'static str>,
        groups: &[&str],
        roles: &[&str],
        claims: &[(&str, &[&str])],
    ) -> User {
        User {
            email,
            groups: strings(groups),
            roles: strings(roles),
            claims: claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), strings(v)))
                .collect(),
        }
    }

    fn claim(path: &str, values: &[&str]) -> ClaimRule {
        ClaimRule {
            claim: path.to_owned(),
            values: strings(values),
        }
    }

    #[test]
    fn any_of_within_a_kind_all_of_across_kinds() {
        let staff_or_ops = AllowList {
            groups: strings(&["staff", "ops"]),
            ..AllowList::default()
        };
        let admin_role = AllowList {
            roles: strings(&["admin"]),
            ..AllowList::default()
        };
        let staff_admins_at_corp = AllowList {
            domains: strings(&["corp.example"]),
            groups: strings(&["staff"]),
            roles: strings(&["admin", "owner"]),
            ..AllowList::default()
        };
        let realm_ops = AllowList {
            claims: vec![
                claim("realm_access.roles", &["ops"]),
                claim("department", &["42", "true"]),
            ],
            ..AllowList::default()
        };
        let everything = AllowList {
            emails: strings(&["ann@corp.example"]),
            groups: strings(&["staff"]),
            roles: strings(&["admin"]),
            claims: vec![claim("realm_access.roles", &["ops"])],
            ..AllowList::default()
        };
        let ann = user(
            Some("ann@corp.example"),
            &["staff"],
            &["admin"],
            &[("realm_access.roles", &["ops", "dev"])],
        );
        let bob = user(Some("bob@corp.example"), &["ops"], &["viewer"], &[]);
        let cid = user(
            Some("cid@else.example"),
            &["staff"],
            &["owner"],
            &[("department", &["42"])],
        );
        let dee = user(
            None,
            &["staff"],
            &["admin"],
            &[("realm_access.roles", &["ops"])],
        );
        let eve = user(
            Some("eve@corp.example"),
            &["Staff", "staff "],
            &["ADMIN"],
            &[("realm_access.roles", &["Ops"]), ("department", &["true"])],
        );
        let nobody = user(None, &[], &[], &[]);
        #[rustfmt::skip]
        let table: [(&str, &AllowList, [bool; 6]); 6] = [
            //                                           ann    bob    cid    dee    eve    nobody
            ("groups: any listed group",   &staff_or_ops,         [true,  true,  true,  true,  false, false]),
            ("roles: the one role",        &admin_role,           [true,  false, false, true,  false, false]),
            ("domain AND group AND role",  &staff_admins_at_corp, [true,  false, false, false, false, false]),
            ("claims: any entry",          &realm_ops,            [true,  false, true,  true,  true,  false]),
            ("email+group+role+claim",     &everything,           [true,  false, false, false, false, false]),
            ("no kind: everyone",          &AllowList::default(), [true,  true,  true,  true,  true,  true]),
        ];
        let users = [&ann, &bob, &cid, &dee, &eve, &nobody];
        for (name, list, expected) in table {
            for (u, want) in users.iter().zip(expected) {
                assert_eq!(
                    list.permits(&u.subject()),
                    want,
                    "{name}: {:?} {:?} {:?} {:?}",
                    u.email,
                    u.groups,
                    u.roles,
                    u.claims
                );
            }
        }
    }

    #[test]
    fn a_session_without_kept_claims_satisfies_no_claim_rule() {
        let l = AllowList {
            claims: vec![claim("a.b", &["x"])],
            ..AllowList::default()
        };
        assert!(!l.permits(&Subject::with_email(Some("ann@example.com"))));
        assert!(!l.is_empty());
    }
}
