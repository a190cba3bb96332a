//! Secret strings that never show up in `Debug` output or logs: provider
//! credentials (access, refresh and ID tokens, client secrets) and the
//! gateway's own keys (session secrets, token encryption keys) alike.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// A string that is a credential or a key. `Debug` prints only its length
/// and `Display` prints `[redacted]`; the value is reachable only through
/// [`Secret::expose`] or [`Secret::as_bytes`], which makes every use
/// greppable. It deserializes from a string only, and a mistyped value
/// (a number, a boolean) is refused without being echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Call only where the value must leave the
    /// process (an HTTP request to a provider, an encrypted column).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret's bytes (UTF-8), e.g. as key-derivation input.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A printable stand-in: `[redacted; N bytes]`.
    pub fn redacted(&self) -> String {
        format!("[redacted; {} bytes]", self.0.len())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.redacted())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            // Deliberately no default visit_i64 etc.: serde's message would
            // echo the value, and a secret must not be echoed even mistyped.
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a number"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("expected a secret string, found a boolean"))
            }
        }
        deserializer.deserialize_str(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_reveal_the_value() {
        let s = Secret::new("rt-very-secret");
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!format!("{s}").contains("very-secret"));
        assert_eq!(format!("{s:?}"), "Secret([redacted; 14 bytes])");
        assert_eq!(s.expose(), "rt-very-secret");
    }

    #[test]
    fn a_mistyped_secret_is_refused_without_echoing_it() {
        use serde::de::IntoDeserializer;
        use serde::de::value::Error;
        let number: serde::de::value::U64Deserializer<Error> = 123_456_789u64.into_deserializer();
        let e = Secret::deserialize(number).unwrap_err();
        assert!(!e.to_string().contains("123456789"), "{e}");
        let s: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(s.as_bytes(), b"k");
    }
}
