//! A serde deserializer over the merged value tree that knows every value's key path
//! and origin, so that each error can name both.
//!
//! Environment values arrive as text; their type is decided by the field they fill:
//! `"true"` for a boolean, `"3"` for an integer, a single string where a list is expected
//! (a one-element list), or TOML syntax (`["a", "b"]`, `{ prompt = "consent" }`) for
//! lists and tables.

use std::collections::btree_map;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::error::{Origin, Problem};
use crate::tree::{Node, Value};

/// A deserialization error, located at a key path once it passes the node it came from.
#[derive(Debug)]
pub(crate) struct DeError {
    key: Option<String>,
    origin: Option<Origin>,
    message: String,
    missing_field: Option<String>,
}

impl DeError {
    fn msg(message: impl Into<String>) -> Self {
        DeError {
            key: None,
            origin: None,
            message: message.into(),
            missing_field: None,
        }
    }

    fn at(key: String, origin: Origin, message: impl Into<String>) -> Self {
        DeError {
            key: Some(key),
            origin: Some(origin),
            message: message.into(),
            missing_field: None,
        }
    }

    /// Attaches the innermost location: once located, outer nodes leave it alone.
    fn locate(mut self, path: &str, origin: &Origin) -> Self {
        if self.key.is_none() {
            self.key = Some(match self.missing_field.take() {
                Some(field) => join(path, &field),
                None => path.to_owned(),
            });
            self.origin = Some(origin.clone());
        }
        self
    }

    pub(crate) fn into_problem(self) -> Problem {
        Problem {
            key: self.key.unwrap_or_default(),
            origin: self.origin.unwrap_or(Origin::Unset),
            message: self.message,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::msg(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = DeError::msg("required key is missing");
        e.missing_field = Some(field.to_owned());
        e
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Deserializes the node at `path`.
pub(crate) struct NodeDe<'a> {
    pub(crate) node: &'a Node,
    pub(crate) path: String,
}

impl NodeDe<'_> {
    fn parse_env(&self, text: &str) -> Result<Node, DeError> {
        let var = match &self.node.origin {
            Origin::Env { var } => var.as_str(),
            _ => "",
        };
        Node::parse_env_value(var, text).map_err(DeError::msg)
    }

    fn visit_table<'de, V: Visitor<'de>>(
        &self,
        node: &Node,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Value::Table(table) = &node.value else {
            return Err(DeError::msg(format!(
                "expected a table, found a {}",
                node.value.kind()
            )));
        };
        if let Some(fields) = fields {
            for (key, child) in table {
                if !fields.contains(&key.as_str()) {
                    return Err(DeError::at(
                        join(&self.path, key),
                        child.origin.clone(),
                        unknown_key_message(key, fields),
                    ));
                }
            }
        }
        visitor.visit_map(TableAccess {
            iter: table.iter(),
            pending: None,
            path: &self.path,
        })
    }
}

fn unknown_key_message(key: &str, fields: &[&str]) -> String {
    let suggestion = fields
        .iter()
        .map(|f| (edit_distance(key, f), f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4))
        .min_by_key(|(d, _)| *d);
    match suggestion {
        Some((_, f)) => format!("unknown key `{key}`; did you mean `{f}`?"),
        None => format!(
            "unknown key `{key}`; expected one of: {}",
            fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

macro_rules! env_signed {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            if let Value::Env(text) = &self.node.value {
                let parsed = text.trim().parse::<i64>().map_err(|_| {
                    DeError::msg(format!("expected an integer, found {text:?}"))
                });
                return parsed
                    .and_then(|n| visitor.visit_i64(n))
                    .map_err(|e| e.locate(&self.path, &self.node.origin));
            }
            self.deserialize_any(visitor)
        }
    )*};
}

macro_rules! env_unsigned {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            if let Value::Env(text) = &self.node.value {
                let text = text.trim();
                let result = match (text.parse::<u64>(), text.parse::<i64>()) {
                    (Ok(n), _) => visitor.visit_u64(n),
                    (_, Ok(n)) => visitor.visit_i64(n),
                    _ => Err(DeError::msg(format!("expected an integer, found {text:?}"))),
                };
                return result.map_err(|e| e.locate(&self.path, &self.node.origin));
            }
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Table(_) => self.visit_table(self.node, None, visitor),
            Value::Array(items) => visitor.visit_seq(ListAccess::new(items, &self.path)),
            Value::String(s) | Value::Env(s) | Value::Datetime(s) => visitor.visit_str(s),
            Value::Integer(n) => visitor.visit_i64(*n),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Bool(b) => visitor.visit_bool(*b),
        };
        result.map_err(|e| e.locate(&self.path, &self.node.origin))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Value::Env(text) = &self.node.value {
            let result = match text.trim() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                other => Err(DeError::msg(format!(
                    "expected true or false, found {other:?}"
                ))),
            };
            return result.map_err(|e| e.locate(&self.path, &self.node.origin));
        }
        self.deserialize_any(visitor)
    }

    env_signed!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64);
    env_unsigned!(deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Value::Env(text) = &self.node.value {
            let result = match text.trim().parse::<f64>() {
                Ok(x) => visitor.visit_f64(x),
                Err(_) => Err(DeError::msg(format!("expected a number, found {text:?}"))),
            };
            return result.map_err(|e| e.locate(&self.path, &self.node.origin));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // An empty environment value unsets an optional key.
        if matches!(&self.node.value, Value::Env(text) if text.is_empty()) {
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Array(items) => visitor.visit_seq(ListAccess::new(items, &self.path)),
            Value::Env(text) if text.trim_start().starts_with('[') => match self.parse_env(text) {
                Ok(Node {
                    value: Value::Array(items),
                    ..
                }) => visitor.visit_seq(ListAccess::new(&items, &self.path)),
                Ok(other) => Err(DeError::msg(format!(
                    "expected a list, found a {}",
                    other.value.kind()
                ))),
                Err(e) => Err(e),
            },
            // A single string where a list is expected is a one-element list.
            Value::String(_) | Value::Env(_) => {
                visitor.visit_seq(ListAccess::new(std::slice::from_ref(self.node), &self.path))
            }
            _ => return self.deserialize_any(visitor),
        };
        result.map_err(|e| e.locate(&self.path, &self.node.origin))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_table(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_table(Some(fields), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::String(s) | Value::Env(s) => {
                let access: de::value::StrDeserializer<'_, DeError> =
                    s.as_str().into_deserializer();
                visitor
                    .visit_enum(access)
                    .map_err(|e| e.locate(&self.path, &self.node.origin))
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct identifier
    }
}

impl NodeDe<'_> {
    fn deserialize_table<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Table(_) => self.visit_table(self.node, fields, visitor),
            Value::Env(text) if text.trim_start().starts_with('{') => self
                .parse_env(text)
                .and_then(|node| self.visit_table(&node, fields, visitor)),
            _ => return self.deserialize_any(visitor),
        };
        result.map_err(|e| e.locate(&self.path, &self.node.origin))
    }
}

struct TableAccess<'a> {
    iter: btree_map::Iter<'a, String, Node>,
    pending: Option<(&'a String, &'a Node)>,
    path: &'a str,
}

impl<'de> MapAccess<'de> for TableAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((key, node)) => {
                self.pending = Some((key, node));
                let key_de: de::value::StrDeserializer<'_, DeError> =
                    key.as_str().into_deserializer();
                seed.deserialize(key_de).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, node) = self
            .pending
            .take()
            .ok_or_else(|| DeError::msg("internal error: value requested before its key"))?;
        let path = join(self.path, key);
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map_err(|e| e.locate(&path, &node.origin))
    }
}

struct ListAccess<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a str,
}

impl<'a> ListAccess<'a> {
    fn new(items: &'a [Node], path: &'a str) -> Self {
        ListAccess {
            items: items.iter().enumerate(),
            path,
        }
    }
}

impl<'de> SeqAccess<'de> for ListAccess<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{index}]", self.path);
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| e.locate(&path, &node.origin))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let fields = &["strategy", "secret", "max_age"];
        assert_eq!(
            unknown_key_message("secert", fields),
            "unknown key `secert`; did you mean `secret`?"
        );
        assert!(unknown_key_message("zzz", fields).contains("expected one of: `strategy`"));
    }
}
