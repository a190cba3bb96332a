//! What a provider says about a user beyond who they are — preferred user name, groups,
//! roles and selected claims — read from ID-token and userinfo claims, and kept with the
//! session so route rules (`allow_groups`, `allow_roles`, `allow_claims`) can be judged
//! without I/O.
//!
//! * A [`ClaimPath`] is a dotted path into nested claims (`realm_access.roles`). A key that
//!   itself contains dots (Auth0's namespaced claims such as `https://example.com/groups`) is
//!   found as written: at each level the longest key that matches a prefix of the path wins.
//! * A claim's value becomes a list of strings ([`claim_values`]): a string is one value, an
//!   array gives each of its strings, numbers and booleans; a number or boolean is kept in its
//!   JSON spelling (`42`, `true`), so `values = ["true"]` matches the boolean `true`. `null`,
//!   objects and nested arrays give nothing.
//! * [`Attributes::read`] reads the [`AttributeSources`] from the provider's documents in
//!   order (the ID token, then userinfo): the first document holding a claim wins.
//! * A groups claim the provider moved out of the token (OpenID Connect distributed claims,
//!   `_claim_names` naming it — Microsoft Entra's "groups overage" for users in more than 200
//!   groups) is [`AttributeError::DistributedGroups`]: judging rules with a partial list would
//!   be wrong, so the sign-in is refused.
//!
//! Bounds keep the session cookie small: at most [`MAX_VALUES`] values per list, each at most
//! [`MAX_VALUE_BYTES`] bytes (longer values are dropped; so a rule never matches a value that
//! was not kept — rules fail closed).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The most values kept per list (groups, roles, one claim's values). Microsoft Entra puts
/// at most 200 groups into a token before it switches to its overage claim.
pub const MAX_VALUES: usize = 200;

/// The longest value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;

/// A dotted path into nested claims, e.g. `realm_access.roles`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(String);

/// Why a claim path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimPathError {
    /// The path is empty.
    #[error("the claim path is empty")]
    Empty,
    /// A segment is empty (`a..b`, `.a`, `a.`).
    #[error(
        "the claim path {0:?} has an empty segment (write names separated by single dots, e.g. \"realm_access.roles\")"
    )]
    EmptySegment(String),
    /// The path contains whitespace or control characters.
    #[error("the claim path {0:?} contains whitespace or control characters")]
    Whitespace(String),
}

impl ClaimPath {
    /// Parses a dotted path.
    pub fn parse(path: &str) -> Result<ClaimPath, ClaimPathError> {
        if path.is_empty() {
            return Err(ClaimPathError::Empty);
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ClaimPathError::Whitespace(path.to_owned()));
        }
        if path.split('.').any(str::is_empty) {
            return Err(ClaimPathError::EmptySegment(path.to_owned()));
        }
        Ok(ClaimPath(path.to_owned()))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value at this path in `claims`, if any.
    pub fn lookup<'v>(&self, claims: &'v Map<String, Value>) -> Option<&'v Value> {
        lookup(claims, &self.0)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The value at `path` in `claims`: the whole path as a key, else the longest key that is a
/// prefix of the path up to a dot, descended into.
fn lookup<'v>(claims: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut cut = path.len();
    while let Some(dot) = path[..cut].rfind('.') {
        cut = dot;
        if let Some(Value::Object(inner)) = claims.get(&path[..dot])
            && let Some(v) = lookup(inner, &path[dot + 1..])
        {
            return Some(v);
        }
    }
    None
}

/// A claim's value as the strings a rule compares (see the [module documentation](self)).
pub fn claim_values(value: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let values: Vec<String> = match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    };
    bounded(values)
}

/// `values` without empty or over-long ones and duplicates, at most [`MAX_VALUES`].
fn bounded(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if out.len() == MAX_VALUES {
            break;
        }
        if !v.is_empty() && v.len() <= MAX_VALUE_BYTES && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Where a provider's groups and roles are, and which other claims rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeSources {
    /// Claims holding the user's groups (their values are merged).
    pub groups: Vec<ClaimPath>,
    /// Claims holding the user's roles (their values are merged).
    pub roles: Vec<ClaimPath>,
    /// Further claims route rules name (`allow_claims`); only these are kept.
    pub claims: Vec<ClaimPath>,
}

/// The provider moved the user's groups out of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// `_claim_names` names the groups claim (distributed claims; Microsoft Entra's groups
    /// overage): the token does not list the user's groups.
    #[error(
        "the provider sent the user's groups as a distributed claim ({0}; Microsoft Entra does so for users in more than 200 groups); authgate does not fetch them, so the sign-in is refused — assign fewer groups to the application (Entra: \"groups assigned to the application\") or use app roles"
    )]
    DistributedGroups(String),
}

/// What the session keeps of the provider's answers for route rules and identity headers.
/// Serialised with one-letter keys (it travels in the JWT session cookie).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// The user's preferred user name (`preferred_username`; GitHub's `login`).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Groups.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Roles.
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The values of the claims rules name, by their path as written.
    #[serde(rename = "c", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Vec<String>>,
}

impl Attributes {
    /// Reads `sources` from `documents` (the ID token's claims, then userinfo's): for each
    /// path, the first document that holds it. Refuses a groups claim moved out of the
    /// token ([`AttributeError::DistributedGroups`]) unless a later document lists it.
    pub fn read(
        sources: &AttributeSources,
        documents: &[&Map<String, Value>],
    ) -> Result<Attributes, AttributeError> {
        let first = |path: &ClaimPath| documents.iter().find_map(|d| path.lookup(d));
        let merged =
            |paths: &[ClaimPath]| bounded(paths.iter().filter_map(first).flat_map(claim_values));
        for path in &sources.groups {
            if first(path).is_none() && documents.iter().any(|d| is_distributed(d, path)) {
                return Err(AttributeError::DistributedGroups(format!(
                    "_claim_names.{path}"
                )));
            }
        }
        let preferred_username = documents
            .iter()
            .find_map(|d| match d.get("preferred_username") {
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_VALUE_BYTES => {
                    Some(s.clone())
                }
                _ => None,
            });
        Ok(Attributes {
            preferred_username,
            groups: merged(&sources.groups),
            roles: merged(&sources.roles),
            claims: sources
                .claims
                .iter()
                .filter_map(|p| Some((p.as_str().to_owned(), claim_values(first(p)?))))
                .collect(),
        })
    }

    /// Adds groups from another source (GitHub's organisations and teams, Google's `hd`).
    pub fn add_groups(&mut self, groups: impl IntoIterator<Item = String>) {
        let all = std::mem::take(&mut self.groups).into_iter().chain(groups);
        self.groups = bounded(all);
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.preferred_username.is_none()
            && self.groups.is_empty()
            && self.roles.is_empty()
            && self.claims.is_empty()
    }
}

/// Whether `claims` says (OpenID Connect Core §5.6.2 distributed claims) that the top-level
/// claim of `path` lives elsewhere.
fn is_distributed(claims: &Map<String, Value>, path: &ClaimPath) -> bool {
    let top = path.as_str().split('.').next().unwrap_or_default();
    claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key(path.as_str()) || names.contains_key(top))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).unwrap()
    }

    #[test]
    fn paths_are_dotted_names_without_empty_segments() {
        assert_eq!(ClaimPath::parse(""), Err(ClaimPathError::Empty));
        for bad in [".a", "a.", "a..b", "."] {
            assert!(
                matches!(ClaimPath::parse(bad), Err(ClaimPathError::EmptySegment(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            ClaimPath::parse("a b"),
            Err(ClaimPathError::Whitespace(_))
        ));
        assert_eq!(path("realm_access.roles").as_str(), "realm_access.roles");
    }

    #[test]
    fn nested_and_namespaced_claims_are_found() {
        let claims = map(json!({
            "groups": ["staff", "ops"],
            "realm_access": {"roles": ["admin"]},
            "resource_access": {"app.one": {"roles": ["reader"]}},
            "https://example.com/groups": ["ns"],
            "flat.key": "flat",
        }));
        let at = |p: &str| path(p).lookup(&claims).map(claim_values);
        assert_eq!(at("groups"), Some(vec!["staff".into(), "ops".into()]));
        assert_eq!(at("realm_access.roles"), Some(vec!["admin".into()]));
        assert_eq!(
            at("resource_access.app.one.roles"),
            Some(vec!["reader".into()])
        );
        assert_eq!(at("https://example.com/groups"), Some(vec!["ns".into()]));
        assert_eq!(at("flat.key"), Some(vec!["flat".into()]));
        assert_eq!(at("realm_access.missing"), None);
        assert_eq!(at("groups.x"), None);
    }

    #[test]
    fn values_are_strings_numbers_and_booleans_in_their_json_spelling() {
        assert_eq!(claim_values(&json!("a")), vec!["a"]);
        assert_eq!(claim_values(&json!(42)), vec!["42"]);
        assert_eq!(claim_values(&json!(true)), vec!["true"]);
        assert_eq!(
            claim_values(&json!(["a", 1, false, null, {"x": 1}, ["y"], "a", ""])),
            vec!["a", "1", "false"]
        );
        assert!(claim_values(&json!(null)).is_empty());
        assert!(claim_values(&json!({"a": "b"})).is_empty());
        let many: Vec<Value> = (0..500).map(|i| json!(format!("g{i}"))).collect();
        assert_eq!(claim_values(&Value::Array(many)).len(), MAX_VALUES);
        assert!(claim_values(&json!("x".repeat(MAX_VALUE_BYTES + 1))).is_empty());
    }

    #[test]
    fn the_first_document_holding_a_claim_wins_and_lists_merge() {
        let sources = AttributeSources {
            groups: vec![path("groups")],
            roles: vec![path("roles"), path("realm_access.roles")],
            claims: vec![path("department"), path("absent")],
        };
        let id_token = map(json!({"preferred_username": "ann", "roles": ["admin"],
            "realm_access": {"roles": ["ops", "admin"]}}));
        let userinfo = map(json!({"groups": ["staff"], "department": 42, "roles": ["ignored"]}));
        let a = Attributes::read(&sources, &[&id_token, &userinfo]).unwrap();
        assert_eq!(a.preferred_username.as_deref(), Some("ann"));
        assert_eq!(a.groups, vec!["staff"]);
        assert_eq!(a.roles, vec!["admin", "ops"]);
        assert_eq!(a.claims.len(), 1);
        assert_eq!(a.claims["department"], vec!["42"]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(
            json,
            r#"{"u":"ann","g":["staff"],"r":["admin","ops"],"c":{"department":["42"]}}"#
        );
        assert_eq!(serde_json::from_str::<Attributes>(&json).unwrap(), a);
        assert_eq!(
            serde_json::from_str::<Attributes>("{}").unwrap(),
            Attributes::default()
        );
    }

    #[test]
    fn groups_moved_out_of_the_token_refuse_the_sign_in() {
        let sources = AttributeSources {
            groups: vec![path("groups")],
            ..AttributeSources::default()
        };
        let overage = map(json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}},
        }));
        assert!(matches!(
            Attributes::read(&sources, &[&overage]),
            Err(AttributeError::DistributedGroups(_))
        ));
        // A later document that lists them (userinfo) is enough.
        let userinfo = map(json!({"groups": ["a"]}));
        assert_eq!(
            Attributes::read(&sources, &[&overage, &userinfo])
                .unwrap()
                .groups,
            vec!["a"]
        );
        // Without a groups source, nothing is asked.
        assert!(Attributes::read(&AttributeSources::default(), &[&overage]).is_ok());
    }

    #[test]
    fn added_groups_are_merged_without_duplicates() {
        let mut a = Attributes {
            groups: vec!["corp.example".into()],
            ..Attributes::default()
        };
        a.add_groups(["octo-org".to_owned(), "corp.example".to_owned()]);
        assert_eq!(a.groups, vec!["corp.example", "octo-org"]);
    }
}
