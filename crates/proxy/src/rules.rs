//! Route rules: which [`Access`] kind and [`AllowList`] apply to a reading of a path.
//!
//! Rules come from the `[[routes]]` tables of the configuration, in order; the **first rule
//! that matches wins**. A rule matches when its method filter (if any) contains the request
//! method (in any letter case) and its glob pattern matches the path:
//!
//! * a literal segment matches the same segment (literals are canonicalised like paths, so
//!   `/%70rotected` in a pattern means `/protected`);
//! * `*` matches exactly one segment, whatever it contains (never a `/`); it also matches an
//!   empty trailing segment, so `/protected/*` matches `/protected/`;
//! * `**` matches any number of segments, including zero: `/api/**` matches `/api`,
//!   `/api/` and `/api/x/y`, but not `/apix`.
//!
//! A trailing slash on the request path never lets a request escape a rule: a path ending in
//! `/` is tried both as is and without its trailing slash, so `/admin` matches `/admin/`.
//!
//! `*` or `**` must be a whole segment (`/files/*.png` is a [`RuleError::PartialWildcard`]);
//! patterns must start with `/` and contain no `.`/`..` segments, no empty segments (other
//! than a final trailing slash), no `?` and no `#`.
//!
//! When no rule matches, the request gets [`RouteRules::DEFAULT_ACCESS`], which is
//! [`Access::Protected`] with no allow-list: forgetting a rule must fail closed (a sign-in
//! redirect) rather than expose an application. [`RouteRules::with_default`] changes the
//! fallback.
//!
//! Requests are judged with [`RouteRules::judge`] (module [`judge`](crate::judge)): every
//! [lenient reading](crate::readings) of the path is matched, exactly and ignoring letter
//! case, and the strictest answer wins.
//!
//! A method filter lists methods in any letter case, and a rule that lists `GET` also matches
//! `HEAD`: nearly every server answers `HEAD` with its `GET` handler (the same code, minus the
//! body), so a `GET`-only rule that let `HEAD` fall through to a later, laxer rule would
//! expose what the `GET` rule guards. No other method stands in for another.

use std::fmt;
use std::str::FromStr;

use axum::http::Method;
use serde::{Deserialize, Serialize};

use crate::allow::AllowList;
use crate::path::{PathError, canonical_segment_chars};
use crate::readings::fold_non_ascii;

/// What the gateway does with a request on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Proxied for everybody; identity headers are added only when signed in.
    Public,
    /// Requires a session; browsers without one are redirected to sign in.
    Protected,
    /// Requires a session; clients without one get a 401 JSON error, never a redirect.
    Api,
}

impl Access {
    /// The configuration spelling: `public`, `protected` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Protected => "protected",
            Access::Api => "api",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`Access`] from a string other than `public`/`protected`/`api`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown access kind {0:?} (expected \"public\", \"protected\" or \"api\")")]
pub struct UnknownAccess(pub String);

impl FromStr for Access {
    type Err = UnknownAccess;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Access::Public),
            "protected" => Ok(Access::Protected),
            "api" => Ok(Access::Api),
            other => Err(UnknownAccess(other.to_owned())),
        }
    }
}

/// One `[[routes]]` entry, before compilation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// Glob pattern, e.g. `/api/**` or `/protected/*`.
    pub pattern: String,
    /// What applies to matching requests.
    pub access: Access,
    /// When set, the rule matches only these methods (must not be empty); `GET` also
    /// matches `HEAD`.
    pub methods: Option<Vec<Method>>,
    /// Who may pass beyond having a session (ignored on `public` rules).
    pub allow: AllowList,
    /// A `protected` rule that also accepts API clients' bearer tokens
    /// (`api` rules always do when a provider accepts them).
    pub bearer: bool,
}

impl RouteRule {
    /// A rule for every method and every signed-in user.
    pub fn new(pattern: impl Into<String>, access: Access) -> Self {
        RouteRule {
            pattern: pattern.into(),
            access,
            methods: None,
            allow: AllowList::default(),
            bearer: false,
        }
    }

    /// Restricts the rule to the users `allow` permits.
    pub fn with_allow(mut self, allow: AllowList) -> Self {
        self.allow = allow;
        self
    }

    /// Lets bearer tokens stand in for a session on this rule's requests.
    pub fn with_bearer(mut self, bearer: bool) -> Self {
        self.bearer = bearer;
        self
    }

    /// Restricts the rule to the given methods.
    pub fn with_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = Some(methods.into_iter().collect());
        self
    }
}

/// Why a rule could not be compiled. `index` is the rule's position (0-based) in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The pattern does not start with `/`.
    #[error("route {index}: pattern {pattern:?} must start with '/'")]
    NotAbsolute {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
    /// `*` used inside a segment (`/a*`, `/***`).
    #[error("route {index}: pattern {pattern:?}: '*' and '**' must be whole path segments")]
    PartialWildcard {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
    /// A `.` or `..` segment (paths are matched after dot-segment resolution, so it could
    /// never match).
    #[error("route {index}: pattern {pattern:?} contains a '.' or '..' segment")]
    DotSegment {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
    /// `//` inside the pattern (paths are matched with repeated slashes collapsed).
    #[error("route {index}: pattern {pattern:?} contains an empty segment ('//')")]
    EmptySegment {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
    /// `?` or `#` in the pattern (rules match paths only).
    #[error("route {index}: pattern {pattern:?} must not contain '?' or '#'")]
    QueryOrFragment {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
    /// A literal segment is not a valid path segment.
    #[error("route {index}: pattern {pattern:?}: {source}")]
    InvalidLiteral {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
        /// What is wrong with it.
        source: PathError,
    },
    /// `methods = []`: the rule could never match.
    #[error("route {index}: pattern {pattern:?} has an empty method list")]
    EmptyMethods {
        /// Rule position.
        index: usize,
        /// The offending pattern.
        pattern: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A literal, canonical, and case-folded (for matching ignoring case).
    Literal {
        exact: String,
        folded: String,
    },
    Star,
    DoubleStar,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    rule: RouteRule,
    segments: Vec<Segment>,
}

/// An ordered, compiled list of route rules; first match wins.
#[derive(Debug, Clone)]
pub struct RouteRules {
    rules: Vec<CompiledRule>,
    default: Access,
    /// Whether some literal differs from its case-folded form (then even a lower-case path
    /// is also matched ignoring case).
    literals_fold: bool,
}

impl RouteRules {
    /// The access of a request no rule matches, unless changed with
    /// [`with_default`](Self::with_default): `Protected` (fail closed).
    pub const DEFAULT_ACCESS: Access = Access::Protected;

    /// Compiles the rules, in order.
    pub fn new(rules: Vec<RouteRule>) -> Result<Self, RuleError> {
        let compiled = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                let segments = compile(index, &rule)?;
                Ok(CompiledRule { rule, segments })
            })
            .collect::<Result<Vec<_>, RuleError>>()?;
        let literals_fold = compiled
            .iter()
            .flat_map(|c| &c.segments)
            .any(|s| matches!(s, Segment::Literal { exact, folded } if exact != folded));
        Ok(RouteRules {
            rules: compiled,
            default: Self::DEFAULT_ACCESS,
            literals_fold,
        })
    }

    /// Replaces the access used when no rule matches.
    pub fn with_default(mut self, access: Access) -> Self {
        self.default = access;
        self
    }

    /// The access used when no rule matches.
    pub fn default_access(&self) -> Access {
        self.default
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &RouteRule> {
        self.rules.iter().map(|c| &c.rule)
    }

    /// The first rule (with its position) that names `path` — a plain path such as `/metrics`
    /// — or a path under it by its leading literal segments, letter case ignored: `/metrics`,
    /// `/metrics/**` and `/METRICS/x` name `/metrics`; `/**`, `/*/x` and `/met` do not. A
    /// server that answers `path` itself uses this to refuse rules that could never reach the
    /// upstream. `None` also when `path` is not a plain path.
    pub fn rule_naming(&self, path: &str) -> Option<(usize, &RouteRule)> {
        let named = compile(0, &RouteRule::new(path, Access::Public)).ok()?;
        let named: Vec<&str> = named
            .iter()
            .map(|s| match s {
                Segment::Literal { folded, .. } if !folded.is_empty() => Some(folded.as_str()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        self.rules.iter().enumerate().find_map(|(index, c)| {
            let mut literals = c.segments.iter().map_while(|s| match s {
                Segment::Literal { folded, .. } => Some(folded.as_str()),
                _ => None,
            });
            named
                .iter()
                .all(|n| literals.next() == Some(*n))
                .then_some((index, &c.rule))
        })
    }

    /// Whether a reading needs matching ignoring case too (it, or a literal, has letters
    /// whose case folds).
    pub(crate) fn needs_folded_match(&self, reading: &str) -> bool {
        if self.literals_fold {
            return true;
        }
        let bytes = reading.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' => i += 3,
                b if b.is_ascii_uppercase() => return true,
                _ => i += 1,
            }
        }
        false
    }

    /// The access and allow-list of one reading (a path in canonical characters, possibly
    /// with dot segments, which are then matched as literal segments): the first matching
    /// rule's, else the default with no allow-list. `folded` matches literals ignoring case.
    pub(crate) fn lookup(
        &self,
        method: &Method,
        reading: &str,
        folded: bool,
    ) -> (Access, Option<&RouteRule>) {
        let rest = reading.strip_prefix('/').unwrap_or(reading);
        let without_trailing = rest.strip_suffix('/');
        let found = self.rules.iter().find(|c| {
            if let Some(methods) = &c.rule.methods
                && !methods.iter().any(|m| method_matches(m, method))
            {
                return false;
            }
            glob_match(&c.segments, Some(rest), folded)
                || without_trailing.is_some_and(|r| glob_match(&c.segments, Some(r), folded))
        });
        match found {
            Some(c) => (c.rule.access, Some(&c.rule)),
            None => (self.default, None),
        }
    }
}

/// Whether a rule listing `listed` matches a request with `method`: the same method in any
/// letter case, or `HEAD` for a rule listing `GET` (servers answer `HEAD` with the `GET`
/// handler).
fn method_matches(listed: &Method, method: &Method) -> bool {
    let method = method.as_str();
    listed.as_str().eq_ignore_ascii_case(method)
        || (method.eq_ignore_ascii_case("HEAD") && listed.as_str().eq_ignore_ascii_case("GET"))
}

fn compile(index: usize, rule: &RouteRule) -> Result<Vec<Segment>, RuleError> {
    let pattern = rule.pattern.clone();
    if matches!(&rule.methods, Some(m) if m.is_empty()) {
        return Err(RuleError::EmptyMethods { index, pattern });
    }
    if pattern.contains(['?', '#']) {
        return Err(RuleError::QueryOrFragment { index, pattern });
    }
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(RuleError::NotAbsolute { index, pattern });
    };
    let raw: Vec<&str> = rest.split('/').collect();
    let last = raw.len().saturating_sub(1);
    let mut segments = Vec::with_capacity(raw.len());
    for (i, seg) in raw.iter().enumerate() {
        let compiled = match *seg {
            "**" => Segment::DoubleStar,
            "*" => Segment::Star,
            s if s.contains('*') => {
                return Err(RuleError::PartialWildcard { index, pattern });
            }
            "" if i != last => return Err(RuleError::EmptySegment { index, pattern }),
            s => {
                let literal =
                    canonical_segment_chars(s).map_err(|source| RuleError::InvalidLiteral {
                        index,
                        pattern: pattern.clone(),
                        source,
                    })?;
                if literal == "." || literal == ".." {
                    return Err(RuleError::DotSegment { index, pattern });
                }
                Segment::Literal {
                    folded: fold_literal(&literal),
                    exact: literal,
                }
            }
        };
        // `**/**` is the same as `**`; collapsing keeps matching linear-ish.
        if compiled == Segment::DoubleStar && segments.last() == Some(&Segment::DoubleStar) {
            continue;
        }
        segments.push(compiled);
    }
    Ok(segments)
}

/// A canonical literal with its letter case folded: non-ASCII characters spelled in UTF-8
/// escapes folded like [`fold_non_ascii`] does for paths, then ASCII letters lowered (the
/// hexadecimal digits of escapes stay upper case, as in canonical paths).
fn fold_literal(literal: &str) -> String {
    let folded = fold_non_ascii(literal);
    let text = folded.as_deref().unwrap_or(literal);
    let mut out = String::with_capacity(text.len());
    let mut hex_digits_left = 0;
    for c in text.chars() {
        if hex_digits_left > 0 {
            hex_digits_left -= 1;
            out.push(c);
        } else {
            hex_digits_left = if c == '%' { 2 } else { 0 };
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether `pattern` matches the segments of `path` (`None`: no segments; `Some(s)`: the
/// segments `s.split('/')`), without allocating.
fn glob_match(pattern: &[Segment], path: Option<&str>, folded: bool) -> bool {
    fn split(path: &str) -> (&str, Option<&str>) {
        match path.split_once('/') {
            Some((head, tail)) => (head, Some(tail)),
            None => (path, None),
        }
    }
    match pattern.split_first() {
        None => path.is_none(),
        Some((Segment::DoubleStar, rest)) => {
            let mut remaining = path;
            loop {
                if glob_match(rest, remaining, folded) {
                    return true;
                }
                match remaining {
                    None => return false,
                    Some(p) => remaining = split(p).1,
                }
            }
        }
        Some((Segment::Star, rest)) => path.is_some_and(|p| glob_match(rest, split(p).1, folded)),
        Some((
            Segment::Literal {
                exact,
                folded: lowered,
            },
            rest,
        )) => path.is_some_and(|p| {
            let (head, tail) = split(p);
            let same = if folded {
                head.eq_ignore_ascii_case(lowered)
            } else {
                head == exact
            };
            same && glob_match(rest, tail, folded)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize;

    fn rules(list: &[(&str, Access)]) -> RouteRules {
        RouteRules::new(list.iter().map(|(p, a)| RouteRule::new(*p, *a)).collect())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn access(r: &RouteRules, method: Method, path: &str) -> Access {
        let n = normalize(path).unwrap_or_else(|e| panic!("{e}"));
        r.lookup(&method, n.path(), false).0
    }

    fn single(pattern: &str, path: &str) -> bool {
        let r = rules(&[(pattern, Access::Public)]);
        access(&r, Method::GET, path) == Access::Public
    }

    #[test]
    fn canonical_config_rules() {
        let r = rules(&[
            ("/api/**", Access::Api),
            ("/protected/**", Access::Protected),
            ("/**", Access::Public),
        ]);
        assert_eq!(access(&r, Method::GET, "/api"), Access::Api);
        assert_eq!(access(&r, Method::GET, "/api/x/y"), Access::Api);
        assert_eq!(access(&r, Method::GET, "/protected/x"), Access::Protected);
        assert_eq!(
            access(&r, Method::GET, "/public/../protected/x"),
            Access::Protected
        );
        assert_eq!(access(&r, Method::GET, "/%70rotected/x"), Access::Protected);
        assert_eq!(access(&r, Method::GET, "//protected//x"), Access::Protected);
        assert_eq!(access(&r, Method::GET, "/"), Access::Public);
        assert_eq!(access(&r, Method::GET, "/apix"), Access::Public);
        assert_eq!(access(&r, Method::GET, "/%2e%2e/api/x"), Access::Api);
    }

    #[test]
    fn single_star_is_one_segment() {
        assert!(single("/protected/*", "/protected/a"));
        assert!(!single("/protected/*", "/protected/a/b"));
        assert!(!single("/protected/*", "/protected"));
        assert!(single("/protected/*", "/protected/"));
        assert!(single("/protected/*", "/protected/a/"));
        assert!(single("/a/*/c", "/a/b/c"));
        assert!(!single("/a/*/c", "/a/b/x/c"));
    }

    #[test]
    fn double_star_is_any_number_of_segments() {
        assert!(single("/api/**", "/api"));
        assert!(single("/api/**", "/api/"));
        assert!(single("/api/**", "/api/x/y"));
        assert!(!single("/api/**", "/apix"));
        assert!(!single("/api/**", "/"));
        assert!(single("/**", "/"));
        assert!(single("/**", "/anything/at/all"));
        assert!(single("/a/**/z", "/a/z"));
        assert!(single("/a/**/z", "/a/b/c/z"));
        assert!(!single("/a/**/z", "/a/b/c"));
        assert!(single("/a/**/**/z", "/a/z"));
        assert!(single("/**/x", "/x"));
        assert!(single("/**/x", "/a/b/x"));
    }

    #[test]
    fn literals_and_trailing_slash() {
        assert!(single("/", "/"));
        assert!(!single("/", "/a"));
        assert!(single("/admin", "/admin"));
        assert!(single("/admin", "/admin/"));
        assert!(!single("/admin", "/Admin"));
        assert!(!single("/admin", "/admin/x"));
        assert!(single("/admin/", "/admin/"));
        assert!(single("/%61dmin", "/admin"));
    }

    #[test]
    fn first_match_wins_and_default_is_protected() {
        let r = rules(&[("/a/**", Access::Public), ("/a/b", Access::Api)]);
        assert_eq!(access(&r, Method::GET, "/a/b"), Access::Public);
        assert_eq!(access(&r, Method::GET, "/elsewhere"), Access::Protected);
        assert_eq!(r.default_access(), RouteRules::DEFAULT_ACCESS);
        let r = r.with_default(Access::Public);
        assert_eq!(access(&r, Method::GET, "/elsewhere"), Access::Public);
        let empty = rules(&[]);
        assert_eq!(access(&empty, Method::GET, "/"), Access::Protected);
        let listed = RouteRules::new(vec![
            RouteRule::new("/x", Access::Api),
            RouteRule::new("/a/*", Access::Api).with_allow(AllowList {
                emails: vec!["ann@example.com".into()],
                ..AllowList::default()
            }),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let (access, allow) = listed.lookup(&Method::GET, "/a/b", false);
        assert_eq!(access, Access::Api);
        assert_eq!(allow.map(|r| r.allow.emails.len()), Some(1));
        assert_eq!(
            listed.lookup(&Method::GET, "/b", false),
            (Access::Protected, None)
        );
    }

    #[test]
    fn a_folded_match_ignores_letter_case_and_a_literal_match_keeps_dot_segments() {
        let r = rules(&[("/admin/**", Access::Api), ("/%C3%A9t%C3%A9", Access::Api)]);
        assert_eq!(
            r.lookup(&Method::GET, "/ADMIN/x", false).0,
            Access::Protected
        );
        assert_eq!(r.lookup(&Method::GET, "/ADMIN/x", true).0, Access::Api);
        assert_eq!(
            r.lookup(&Method::GET, "/%C3%89T%C3%89", true).0,
            Access::Protected
        );
        assert_eq!(
            r.lookup(&Method::GET, "/%C3%A9T%C3%A9", true).0,
            Access::Api
        );
        assert_eq!(r.lookup(&Method::GET, "/admin/../x", false).0, Access::Api);
        assert_eq!(
            r.lookup(&Method::GET, "//admin/x", false).0,
            Access::Protected
        );
        assert!(r.needs_folded_match("/A"));
        assert!(!r.needs_folded_match("/a/%C3%89"));
        let upper = rules(&[("/Admin", Access::Api)]);
        assert!(upper.needs_folded_match("/admin"));
    }

    #[test]
    fn method_filter() {
        let r = RouteRules::new(vec![
            RouteRule::new("/hooks/**", Access::Public).with_methods([Method::POST]),
            RouteRule::new("/**", Access::Api),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(access(&r, Method::POST, "/hooks/x"), Access::Public);
        assert_eq!(access(&r, Method::GET, "/hooks/x"), Access::Api);
    }

    #[test]
    fn a_rule_names_a_path_by_its_leading_literals() {
        let r = rules(&[
            ("/**", Access::Public),
            ("/*/metrics", Access::Public),
            ("/met", Access::Public),
            ("/api/**", Access::Api),
            ("/METRICS/x", Access::Api),
            ("/api/auth/**", Access::Protected),
        ]);
        assert_eq!(r.rule_naming("/metrics").map(|(i, _)| i), Some(4));
        assert_eq!(r.rule_naming("/api/auth").map(|(i, _)| i), Some(5));
        assert_eq!(r.rule_naming("/api").map(|(i, _)| i), Some(3));
        assert_eq!(r.rule_naming("/healthz"), None);
        assert_eq!(r.rule_naming("/"), None, "not a plain path");
        assert_eq!(r.rule_naming("/a/*"), None, "not a plain path");
    }

    #[test]
    fn a_rule_for_get_also_covers_head_and_nothing_else_stands_in() {
        let r = RouteRules::new(vec![
            RouteRule::new("/admin/**", Access::Protected).with_methods([Method::GET]),
            RouteRule::new("/feed/**", Access::Protected).with_methods([Method::HEAD]),
            RouteRule::new("/**", Access::Public),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(access(&r, Method::GET, "/admin/x"), Access::Protected);
        assert_eq!(access(&r, Method::HEAD, "/admin/x"), Access::Protected);
        let head = Method::from_bytes(b"head").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(access(&r, head, "/admin/x"), Access::Protected);
        assert_eq!(access(&r, Method::POST, "/admin/x"), Access::Public);
        assert_eq!(access(&r, Method::OPTIONS, "/admin/x"), Access::Public);
        // The other way round: a HEAD-only rule does not guard GET.
        assert_eq!(access(&r, Method::GET, "/feed/x"), Access::Public);
        assert_eq!(access(&r, Method::HEAD, "/feed/x"), Access::Protected);
    }

    #[test]
    fn pattern_errors_are_typed() {
        let err = |p: &str| RouteRules::new(vec![RouteRule::new(p, Access::Public)]).err();
        assert!(matches!(
            err("api/**"),
            Some(RuleError::NotAbsolute { index: 0, .. })
        ));
        assert!(matches!(
            err("/a*"),
            Some(RuleError::PartialWildcard { .. })
        ));
        assert!(matches!(
            err("/***"),
            Some(RuleError::PartialWildcard { .. })
        ));
        assert!(matches!(err("/a/../b"), Some(RuleError::DotSegment { .. })));
        assert!(matches!(err("/a/%2e"), Some(RuleError::DotSegment { .. })));
        assert!(matches!(err("/a//b"), Some(RuleError::EmptySegment { .. })));
        assert!(matches!(
            err("/a?b"),
            Some(RuleError::QueryOrFragment { .. })
        ));
        assert!(matches!(
            err("/a%zz"),
            Some(RuleError::InvalidLiteral { .. })
        ));
        assert!(matches!(
            err("/a b"),
            Some(RuleError::InvalidLiteral { .. })
        ));
        let empty_methods = RouteRules::new(vec![
            RouteRule::new("/ok", Access::Public),
            RouteRule::new("/x", Access::Public).with_methods([]),
        ]);
        assert!(matches!(
            empty_methods,
            Err(RuleError::EmptyMethods { index: 1, .. })
        ));
    }

    #[test]
    fn access_parsing() {
        assert_eq!("api".parse::<Access>(), Ok(Access::Api));
        assert_eq!("public".parse::<Access>(), Ok(Access::Public));
        assert_eq!("protected".parse::<Access>(), Ok(Access::Protected));
        assert!("Public".parse::<Access>().is_err());
        assert_eq!(Access::Protected.to_string(), "protected");
    }
}
