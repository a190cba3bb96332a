//! Judging a request: the strictest answer over every reading of its path.
//!
//! [`RouteRules::judge`] is the one call the gateway makes per request. It lists the
//! [lenient readings](crate::readings) of the normalised path and matches each of them, as
//! written and ignoring letter case, against the rules. The [`Judgement`] combines the
//! answers so that it is never more permissive than the answer for any reading:
//!
//! * a session is required when any reading requires one;
//! * a signed-in user passes only when the allow-list of **every** reading that requires a
//!   session permits them (a reading no rule matches gets the default access and no list);
//! * the error style (`protected`: a sign-in redirect for browsers, `api`: a 401 JSON error)
//!   is that of the first reading requiring a session — the path as normalised when it does.
//!
//! A path that cannot be judged that way ([`AmbiguousPath`]) is refused with 400.
//!
//! Judging allocates nothing for a path with a single reading (nearly every path).

use crate::allow::{AllowList, Permits, Subject};
use crate::path::NormalizedPath;
use crate::readings::{AmbiguousPath, Readings, readings};
use crate::rules::{Access, RouteRule, RouteRules};
use axum::http::Method;

/// The combined requirement of every reading of a request path (see the
/// [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement<'r> {
    access: Access,
    allow: AllowLists<'r>,
    /// Every reading requiring a session matched a rule with `bearer` (`None`: no
    /// such reading).
    bearer: Option<bool>,
}

/// The rules with non-empty allow-lists a user must satisfy, without allocating for zero
/// or one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowLists<'r> {
    None,
    One(&'r RouteRule),
    Several(Vec<&'r RouteRule>),
}

impl<'r> Judgement<'r> {
    fn new() -> Self {
        Judgement {
            access: Access::Public,
            allow: AllowLists::None,
            bearer: None,
        }
    }

    /// Adds the answer for one reading (`rule`: the rule it matched, if any).
    fn add(&mut self, access: Access, rule: Option<&'r RouteRule>) {
        if access == Access::Public {
            return;
        }
        if self.access == Access::Public {
            self.access = access;
        }
        self.bearer = Some(self.bearer.unwrap_or(true) && rule.is_some_and(|r| r.bearer));
        let Some(list) = rule.filter(|r| !r.allow.is_empty()) else {
            return;
        };
        self.allow = match std::mem::replace(&mut self.allow, AllowLists::None) {
            AllowLists::None => AllowLists::One(list),
            AllowLists::One(first) if std::ptr::eq(first, list) => AllowLists::One(first),
            AllowLists::One(first) => AllowLists::Several(vec![first, list]),
            AllowLists::Several(mut lists) => {
                if !lists.iter().any(|l| std::ptr::eq(*l, list)) {
                    lists.push(list);
                }
                AllowLists::Several(lists)
            }
        };
    }

    /// What the request gets: `Public` only when no reading requires a session; otherwise
    /// the kind (`Protected` or `Api`) of the first reading that requires one.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether some reading requires a session.
    pub fn requires_session(&self) -> bool {
        self.access != Access::Public
    }

    /// The allow-lists a signed-in user must all satisfy (empty lists left out).
    pub fn allow_lists(&self) -> impl Iterator<Item = &'r AllowList> + '_ {
        self.listing_rules().map(|rule| &rule.allow)
    }

    /// The rules whose allow-lists a signed-in user must all satisfy.
    fn listing_rules(&self) -> impl Iterator<Item = &'r RouteRule> + '_ {
        let (one, several): (Option<&'r RouteRule>, &[&'r RouteRule]) = match &self.allow {
            AllowLists::None => (None, &[]),
            AllowLists::One(rule) => (Some(*rule), &[]),
            AllowLists::Several(rules) => (None, rules.as_slice()),
        };
        one.into_iter().chain(several.iter().copied())
    }
}

impl Permits for Judgement<'_> {
    /// Whether every allow-list of every reading requiring a session permits `who`.
    fn permits(&self, who: &Subject<'_>) -> bool {
        self.allow_lists().all(|list| list.permits(who))
    }

    /// The pattern of the first rule whose allow-list refuses `who`.
    fn refusing_rule(&self, who: &Subject<'_>) -> Option<&str> {
        self.listing_rules()
            .find(|rule| !rule.allow.permits(who))
            .map(|rule| rule.pattern.as_str())
    }

    fn accepts_bearer(&self) -> bool {
        self.bearer == Some(true)
    }
}

impl RouteRules {
    /// Judges a request: the combined requirement of every lenient reading of `path`, or
    /// why the path is refused (answer 400). Pure; allocates nothing for a path with a
    /// single reading.
    ///
    /// ```
    /// use authgate_proxy::{Access, AllowList, Permits, RouteRule, RouteRules, Subject, normalize};
    /// use axum::http::Method;
    /// let admins = AllowList { emails: vec!["ann@example.com".into()], ..AllowList::default() };
    /// let rules = RouteRules::new(vec![
    ///     RouteRule::new("/admin/**", Access::Protected).with_allow(admins),
    ///     RouteRule::new("/**", Access::Public),
    /// ]).unwrap();
    /// let path = normalize("/ADMIN;x=1/users").unwrap();
    /// let judgement = rules.judge(&Method::GET, &path).unwrap();
    /// assert_eq!(judgement.access(), Access::Protected);
    /// assert!(judgement.permits(&Subject::with_email(Some("ann@example.com"))));
    /// assert!(!judgement.permits(&Subject::with_email(Some("bob@example.com"))));
    /// assert!(rules.judge(&Method::GET, &normalize("/admin%252fusers").unwrap()).is_err());
    /// ```
    pub fn judge(
        &self,
        method: &Method,
        path: &NormalizedPath,
    ) -> Result<Judgement<'_>, AmbiguousPath> {
        let mut judgement = Judgement::new();
        match readings(path)? {
            Readings::Only(reading) => self.judge_reading(method, reading, &mut judgement),
            Readings::Several(all) => {
                for reading in &all {
                    self.judge_reading(method, reading, &mut judgement);
                }
            }
        }
        Ok(judgement)
    }

    fn judge_reading<'r>(&'r self, method: &Method, reading: &str, into: &mut Judgement<'r>) {
        let (access, allow) = self.lookup(method, reading, false);
        into.add(access, allow);
        if self.needs_folded_match(reading) {
            let (access, allow) = self.lookup(method, reading, true);
            into.add(access, allow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize;
    use crate::rules::RouteRule;

    fn admins() -> AllowList {
        AllowList {
            emails: vec!["ann@example.com".into()],
            ..AllowList::default()
        }
    }

    fn rules(catch_all: bool) -> RouteRules {
        let mut list = vec![
            RouteRule::new("/admin/**", Access::Protected).with_allow(admins()),
            RouteRule::new("/hooks/**", Access::Public).with_methods([Method::POST]),
            RouteRule::new("/api/**", Access::Api),
            RouteRule::new("/protected/**", Access::Protected),
        ];
        if catch_all {
            list.push(RouteRule::new("/**", Access::Public));
        }
        RouteRules::new(list).unwrap_or_else(|e| panic!("{e}"))
    }

    fn judged(rules: &RouteRules, method: &str, raw: &str) -> (Access, bool, bool) {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let path = normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let j = rules
            .judge(&method, &path)
            .unwrap_or_else(|e| panic!("{raw}: {e}"));
        (
            j.access(),
            j.permits(&Subject::with_email(Some("ann@example.com"))),
            j.permits(&Subject::with_email(Some("bob@example.com"))),
        )
    }

    #[test]
    fn every_spelling_of_an_allow_listed_path_carries_its_allow_list() {
        for catch_all in [true, false] {
            let r = rules(catch_all);
            for raw in [
                "/admin/users",
                "/ADMIN/users",
                "/Admin/users",
                "/admin;x=1/users",
                "/admin%3Bx/users",
                "/admin%3bx/users",
                "/%2561dmin/users",
                "/admin./users",
                "/admin%20/users",
                "/adm%C4%B1n/users",
                "/public/..;/admin/users",
                "/public/../admin/users",
                "/admin/../public",
                "//admin/users",
            ] {
                assert_eq!(
                    judged(&r, "GET", raw),
                    (Access::Protected, true, false),
                    "{raw} (catch-all: {catch_all})"
                );
            }
        }
    }

    #[test]
    fn the_normalised_reading_sets_the_error_style_when_it_requires_a_session() {
        let r = rules(true);
        assert_eq!(judged(&r, "GET", "/api/x").0, Access::Api);
        assert_eq!(judged(&r, "GET", "/API/x").0, Access::Api);
        assert_eq!(judged(&r, "GET", "/PROTECTED/x").0, Access::Protected);
        assert_eq!(
            judged(&r, "GET", "/public/page"),
            (Access::Public, true, true)
        );
        let r = rules(false);
        assert_eq!(judged(&r, "GET", "/API/x").0, Access::Protected);
        assert_eq!(
            judged(&r, "GET", "/elsewhere"),
            (Access::Protected, true, true)
        );
    }

    #[test]
    fn method_filters_match_any_letter_case() {
        let r = rules(false);
        assert_eq!(judged(&r, "POST", "/hooks/x").0, Access::Public);
        assert_eq!(judged(&r, "post", "/hooks/x").0, Access::Public);
        assert_eq!(judged(&r, "Post", "/HOOKS/x").0, Access::Protected);
        assert_eq!(judged(&r, "GET", "/hooks/x").0, Access::Protected);
    }

    #[test]
    fn an_upper_case_literal_also_guards_lower_case_spellings() {
        let r = RouteRules::new(vec![
            RouteRule::new("/Admin/**", Access::Protected).with_allow(admins()),
            RouteRule::new("/**", Access::Public),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            judged(&r, "GET", "/admin/x"),
            (Access::Protected, true, false)
        );
        assert_eq!(
            judged(&r, "GET", "/ADMIN/x"),
            (Access::Protected, true, false)
        );
    }

    #[test]
    fn allow_lists_of_different_readings_must_all_permit() {
        let only_bob = AllowList {
            emails: vec!["bob@example.com".into()],
            ..AllowList::default()
        };
        let r = RouteRules::new(vec![
            RouteRule::new("/admin/**", Access::Protected).with_allow(admins()),
            RouteRule::new("/ADMIN/**", Access::Protected).with_allow(only_bob),
            RouteRule::new("/**", Access::Public),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let path = normalize("/ADMIN/x").unwrap_or_else(|e| panic!("{e}"));
        let j = r
            .judge(&Method::GET, &path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(j.allow_lists().count(), 2);
        assert!(!j.permits(&Subject::with_email(Some("ann@example.com"))));
        assert!(!j.permits(&Subject::with_email(Some("bob@example.com"))));
    }

    #[test]
    fn a_path_with_one_reading_needs_no_allocation_for_its_judgement() {
        let r = rules(true);
        let path = normalize("/admin/users").unwrap_or_else(|e| panic!("{e}"));
        let j = r
            .judge(&Method::GET, &path)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(j.allow, AllowLists::One(_)));
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        let r = rules(true);
        for raw in ["/admin%252fusers", "/admin%2500", "/x%255c..%255cadmin"] {
            let path = normalize(raw).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.judge(&Method::GET, &path).is_err(), "{raw}");
        }
    }

    #[test]
    fn bearer_is_accepted_only_when_every_reading_opts_in() {
        let rules = RouteRules::new(vec![
            RouteRule::new("/hooks/**", Access::Protected).with_bearer(true),
            RouteRule::new("/Hooks/**", Access::Protected),
            RouteRule::new("/**", Access::Public),
        ])
        .unwrap();
        let judge = |p: &str| {
            let path = crate::path::normalize(p).unwrap();
            rules.judge(&Method::GET, &path).unwrap().accepts_bearer()
        };
        assert!(judge("/hooks/a"));
        assert!(
            !judge("/Hooks/a"),
            "a reading matching a rule without bearer"
        );
        assert!(!judge("/other"));
    }
}
