//! The merged value tree: TOML file values and environment overrides, each node
//! remembering where it came from.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Origin, Problem};

/// Prefix of environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "AUTHGATE_";

/// Separator between key levels in environment variable names.
pub const ENV_SEPARATOR: &str = "__";

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
}

#[derive(Debug, Clone)]
pub(crate) enum Value {
    Table(BTreeMap<String, Node>),
    Array(Vec<Node>),
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    /// Raw text from an environment variable: its type is decided by the field it fills.
    Env(String),
}

impl Value {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Table(_) => "table",
            Value::Array(_) => "list",
            Value::String(_) | Value::Env(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Datetime(_) => "datetime",
        }
    }
}

/// Whether an environment variable is a configuration key: `AUTHGATE_` + at least
/// two levels (`SECTION__KEY`). Other `AUTHGATE_*` variables (`AUTHGATE_CONFIG`, test
/// settings) are not configuration keys and are ignored.
pub fn is_config_env_var(name: &str) -> bool {
    name.strip_prefix(ENV_PREFIX)
        .is_some_and(|rest| rest.contains(ENV_SEPARATOR))
}

/// The environment variable that sets a key path such as `session.secret`
/// (`AUTHGATE_SESSION__SECRET`); list indexes become levels (`providers[0].client_secret`
/// → `AUTHGATE_PROVIDERS__0__CLIENT_SECRET`).
pub fn env_var_for(key: &str) -> String {
    let path = key.replace('[', ".").replace(']', "");
    let levels: Vec<String> = path
        .split('.')
        .filter(|level| !level.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    format!("{ENV_PREFIX}{}", levels.join(ENV_SEPARATOR))
}

fn key_from_levels(levels: &[String]) -> String {
    let mut key = String::new();
    for level in levels {
        if level.parse::<usize>().is_ok() && !key.is_empty() {
            key.push_str(&format!("[{level}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(level);
        }
    }
    key
}

struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

enum OriginCtx<'a> {
    File { path: &'a str, lines: Lines },
    Env { var: &'a str },
}

impl OriginCtx<'_> {
    fn at(&self, offset: usize) -> Origin {
        match self {
            OriginCtx::File { path, lines } => Origin::File {
                path: (*path).to_owned(),
                line: Some(lines.line_of(offset)),
            },
            OriginCtx::Env { var } => Origin::Env {
                var: (*var).to_owned(),
            },
        }
    }
}

fn convert(value: &toml::Spanned<DeValue<'_>>, ctx: &OriginCtx<'_>) -> Node {
    let origin = ctx.at(value.span().start);
    let value = match value.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => Value::Integer(n),
                Err(_) => Value::String(i.to_string()),
            }
        }
        DeValue::Float(f) => Value::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|v| convert(v, ctx)).collect()),
        DeValue::Table(table) => Value::Table(convert_table(table, ctx)),
    };
    Node { value, origin }
}

fn convert_table(table: &DeTable<'_>, ctx: &OriginCtx<'_>) -> BTreeMap<String, Node> {
    table
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), convert(v, ctx)))
        .collect()
}

impl Node {
    /// An empty root table, for loading without a file.
    pub(crate) fn empty_root() -> Node {
        Node {
            value: Value::Table(BTreeMap::new()),
            origin: Origin::Unset,
        }
    }

    /// Parses TOML text; `source_name` is the file path (or another name) used in errors.
    pub(crate) fn parse_file(source_name: &str, text: &str) -> Result<Node, ConfigError> {
        let table = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let ctx = OriginCtx::File {
            path: source_name,
            lines: Lines::new(text),
        };
        Ok(Node {
            value: Value::Table(convert_table(table.get_ref(), &ctx)),
            origin: Origin::File {
                path: source_name.to_owned(),
                line: None,
            },
        })
    }

    /// Parses an environment value written in TOML syntax (an inline list `[…]` or
    /// table `{…}`).
    pub(crate) fn parse_env_value(var: &str, text: &str) -> Result<Node, String> {
        let value = DeValue::parse(text).map_err(|e| {
            let message = e.message().to_owned();
            format!("cannot parse {text:?} as a TOML value: {message}")
        })?;
        Ok(convert(&value, &OriginCtx::Env { var }))
    }

    /// Applies `AUTHGATE_*` environment overrides. Variables that are not configuration
    /// keys (see [`is_config_env_var`]) are skipped.
    pub(crate) fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<Problem> {
        let mut overrides: Vec<(Vec<String>, String, String)> = vars
            .into_iter()
            .filter(|(name, _)| is_config_env_var(name))
            .map(|(name, value)| {
                let levels = name[ENV_PREFIX.len()..]
                    .split(ENV_SEPARATOR)
                    .map(str::to_ascii_lowercase)
                    .collect();
                (levels, name, value)
            })
            .collect();
        // Parents before children, list entries in numeric order.
        overrides.sort_by(|a, b| {
            let key = |levels: &[String]| -> Vec<(bool, u64, String)> {
                levels
                    .iter()
                    .map(|l| match l.parse::<u64>() {
                        Ok(n) => (false, n, String::new()),
                        Err(_) => (true, 0, l.clone()),
                    })
                    .collect()
            };
            (a.0.len(), key(&a.0)).cmp(&(b.0.len(), key(&b.0)))
        });
        let mut problems = Vec::new();
        for (levels, var, value) in overrides {
            let origin = Origin::Env { var: var.clone() };
            let key = key_from_levels(&levels);
            if levels.iter().any(String::is_empty) {
                problems.push(Problem {
                    key,
                    origin,
                    message: "malformed variable name: empty level between `__`".to_owned(),
                });
                continue;
            }
            let leaf = Node {
                value: Value::Env(value),
                origin: origin.clone(),
            };
            if let Err(message) = self.set(&levels, leaf, String::new()) {
                problems.push(Problem {
                    key,
                    origin,
                    message,
                });
            }
        }
        problems
    }

    fn set(&mut self, levels: &[String], leaf: Node, walked: String) -> Result<(), String> {
        let Some((first, rest)) = levels.split_first() else {
            return Ok(());
        };
        let here = if walked.is_empty() {
            first.clone()
        } else if matches!(self.value, Value::Array(_)) {
            format!("{walked}[{first}]")
        } else {
            format!("{walked}.{first}")
        };
        let fresh_container = |next: Option<&String>, origin: &Origin| Node {
            value: if next.is_some_and(|n| n.parse::<usize>().is_ok()) {
                Value::Array(Vec::new())
            } else {
                Value::Table(BTreeMap::new())
            },
            origin: origin.clone(),
        };
        let origin = leaf.origin.clone();
        let child: &mut Node = match &mut self.value {
            Value::Table(table) => {
                if rest.is_empty() {
                    table.insert(first.clone(), leaf);
                    return Ok(());
                }
                table
                    .entry(first.clone())
                    .or_insert_with(|| fresh_container(rest.first(), &origin))
            }
            Value::Array(items) => {
                let index: usize = first.parse().map_err(|_| {
                    format!("`{walked}` is a list: expected a list index instead of `{first}`")
                })?;
                if index > items.len() {
                    return Err(format!(
                        "`{walked}` has {} entries: index {index} would leave a gap (use {} to add one)",
                        items.len(),
                        items.len()
                    ));
                }
                if rest.is_empty() {
                    if index == items.len() {
                        items.push(leaf);
                    } else {
                        items[index] = leaf;
                    }
                    return Ok(());
                }
                if index == items.len() {
                    items.push(fresh_container(rest.first(), &origin));
                }
                &mut items[index]
            }
            other => {
                return Err(format!(
                    "`{walked}` is a {} value ({}), so it has no key `{first}`",
                    other.kind(),
                    self.origin
                ));
            }
        };
        child.set(rest, leaf, here)
    }

    /// The node at a key path such as `providers[0].client_id`, if the key is set.
    /// Indexing into a single string yields that string (a string is accepted where a
    /// list is expected).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        let mut node = self;
        for part in key.split('.').filter(|p| !p.is_empty()) {
            let (name, indexes) = match part.find('[') {
                Some(i) => part.split_at(i),
                None => (part, ""),
            };
            if !name.is_empty() {
                node = match &node.value {
                    Value::Table(table) => table.get(name)?,
                    _ => return None,
                };
            }
            for index in indexes
                .split(['[', ']'])
                .filter(|s| !s.is_empty())
                .map(str::parse::<usize>)
            {
                let index = index.ok()?;
                node = match &node.value {
                    Value::Array(items) => items.get(index)?,
                    Value::String(_) | Value::Env(_) => node,
                    _ => return None,
                };
            }
        }
        Some(node)
    }

    /// Where the value at `key` came from ([`Origin::Unset`] when it was not set).
    pub(crate) fn origin_of(&self, key: &str) -> Origin {
        self.get(key)
            .map_or(Origin::Unset, |node| node.origin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn file_values_remember_their_line() {
        let root = Node::parse_file("a.toml", "[session]\n\nmax_age = \"1d\"\n").unwrap();
        assert_eq!(
            root.origin_of("session.max_age"),
            Origin::File {
                path: "a.toml".into(),
                line: Some(3)
            }
        );
        assert_eq!(root.origin_of("session.secret"), Origin::Unset);
    }

    #[test]
    fn env_overrides_index_into_lists_and_append() {
        let mut root = Node::parse_file(
            "a.toml",
            "[[providers]]\nid = \"a\"\nclient_secret = \"x\"\n",
        )
        .unwrap();
        let problems = root.apply_env(env(&[
            ("AUTHGATE_PROVIDERS__0__CLIENT_SECRET", "from-env"),
            ("AUTHGATE_PROVIDERS__1__ID", "b"),
            ("AUTHGATE_PROVIDERS__5__ID", "gap"),
            ("AUTHGATE_CONFIG", "ignored.toml"),
            ("AUTHGATE_REQUIRE_SERVICES", "1"),
            ("OTHER__X", "ignored"),
        ]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "providers[5].id");
        assert!(
            problems[0].message.contains("gap"),
            "{}",
            problems[0].message
        );
        assert!(matches!(
            &root.get("providers[0].client_secret").unwrap().value,
            Value::Env(v) if v == "from-env"
        ));
        assert_eq!(
            root.origin_of("providers[1].id"),
            Origin::Env {
                var: "AUTHGATE_PROVIDERS__1__ID".into()
            }
        );
    }

    #[test]
    fn env_var_names_follow_the_key_path() {
        assert_eq!(env_var_for("session.secret"), "AUTHGATE_SESSION__SECRET");
        assert_eq!(
            env_var_for("providers[0].client_secret"),
            "AUTHGATE_PROVIDERS__0__CLIENT_SECRET"
        );
    }
}
