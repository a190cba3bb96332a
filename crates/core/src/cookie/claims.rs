//! The claims a session cookie carries.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// The JWT claims of an Auth.js session token.
///
/// The named fields are the ones Auth.js's default `jwt` callback writes
/// (`name`, `email`, `picture`, `sub`) and the registered claims its `encode`
/// adds (`iat`, `exp`, `jti`). Anything else an application put in the token
/// is kept in `extra`, so a cookie round-trips without loss.
///
/// Deserialization is hand-written (one pass over the JSON object, no
/// buffering) because it sits on every request's path; `serde(flatten)` would
/// buffer the whole object first and cost about twice as much.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SessionClaims {
    /// The user's stable id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Avatar URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Issued at (epoch seconds). Set by the codec on encode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Expires at (epoch seconds). Set by the codec on encode; required on decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Not before (epoch seconds), if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id. Set by the codec on encode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Every other claim, as JSON.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'de> Deserialize<'de> for SessionClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = SessionClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SessionClaims, A::Error> {
        let mut c = SessionClaims::default();
        while let Some(ClaimName(key)) = map.next_key::<ClaimName<'de>>()? {
            let slot = match &*key {
                "sub" => &mut c.sub,
                "name" => &mut c.name,
                "email" => &mut c.email,
                "picture" => &mut c.picture,
                "jti" => &mut c.jti,
                "iat" | "exp" | "nbf" => {
                    let date = map.next_value::<Option<NumericDate>>()?.map(|n| n.0);
                    let field = match &*key {
                        "iat" => &mut c.iat,
                        "exp" => &mut c.exp,
                        _ => &mut c.nbf,
                    };
                    if field.is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                    *field = date;
                    continue;
                }
                _ => {
                    let value: Value = map.next_value()?;
                    if c.extra.insert(key.into_owned(), value).is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                    continue;
                }
            };
            let value = map.next_value::<Option<String>>()?;
            if slot.is_some() {
                return Err(de::Error::custom("duplicate claim"));
            }
            *slot = value;
        }
        Ok(c)
    }
}

/// A claim name, borrowed from the input when it has no escapes.
struct ClaimName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for ClaimName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = ClaimName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ClaimName(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ClaimName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

/// A JWT NumericDate: a JSON number of seconds, possibly fractional (`jose`
/// accepts both); fractions are truncated toward negative infinity.
struct NumericDate(i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        n.as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    // `as` saturates at the i64 range for finite floats.
                    .map(|f| f.floor() as i64)
            })
            .map(NumericDate)
            .ok_or_else(|| de::Error::custom("a NumericDate must be a finite number"))
    }
}
