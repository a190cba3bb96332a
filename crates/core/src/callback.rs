//! The query of an OAuth authorization response (RFC 6749 §4.1.2, §4.1.2.1;
//! RFC 9207 `iss`).
//!
//! [`CallbackParams::parse`] reads the parameters the sign-in callback acts
//! on — `code`, `state`, `error`, `iss` — from the raw query string, decoded
//! as `application/x-www-form-urlencoded` (`+` is a space, invalid UTF-8 is
//! replaced). RFC 6749 §3.1 says a parameter must not appear more than once;
//! a repeated one is refused ([`CallbackError::Repeated`]) rather than
//! resolved by picking the first or the last, so what the state check saw is
//! what the code exchange uses. Other parameters (`session_state`, `scope`,
//! `error_description`, …) are ignored.

/// The parameters of an authorization response that the callback reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    /// `code`: the authorization code.
    pub code: Option<String>,
    /// `state`: the value the client sent, to compare with its state cookie.
    pub state: Option<String>,
    /// `error`: the provider refused (`access_denied`, …).
    pub error: Option<String>,
    /// `iss`: the issuer that answered (RFC 9207).
    pub iss: Option<String>,
}

/// Why an authorization response's query is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// A parameter the callback reads appears more than once.
    #[error("the parameter `{0}` appears more than once")]
    Repeated(&'static str),
}

/// The parameters read, in the order of [`CallbackParams`]'s fields.
const READ: [&str; 4] = ["code", "state", "error", "iss"];

impl CallbackParams {
    /// Parses a raw query string (without the leading `?`; an empty one has
    /// no parameters). See the [module documentation](self).
    ///
    /// ```
    /// use authgate_core::callback::{CallbackError, CallbackParams};
    /// let p = CallbackParams::parse("code=c%2B1&state=s&iss=https%3A%2F%2Fidp").unwrap();
    /// assert_eq!(p.code.as_deref(), Some("c+1"));
    /// assert_eq!(p.iss.as_deref(), Some("https://idp"));
    /// assert_eq!(CallbackParams::parse("state=a&state=b"), Err(CallbackError::Repeated("state")));
    /// ```
    pub fn parse(query: &str) -> Result<Self, CallbackError> {
        let mut params = CallbackParams::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(slot) = READ.iter().position(|n| *n == name) else {
                continue;
            };
            let field = match slot {
                0 => &mut params.code,
                1 => &mut params.state,
                2 => &mut params.error,
                _ => &mut params.iss,
            };
            if field.replace(value.into_owned()).is_some() {
                return Err(CallbackError::Repeated(READ[slot]));
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_parameters_are_decoded_and_others_ignored() {
        let p = CallbackParams::parse(
            "state=s%20t&code=a+b&session_state=x&iss=https%3A%2F%2Fidp.example&scope=openid",
        );
        assert_eq!(
            p,
            Ok(CallbackParams {
                code: Some("a b".into()),
                state: Some("s t".into()),
                error: None,
                iss: Some("https://idp.example".into()),
            })
        );
        let denied = CallbackParams::parse("error=access_denied&error_description=no&state=s");
        assert_eq!(
            denied.map(|p| (p.error, p.code)),
            Ok((Some("access_denied".into()), None))
        );
    }

    #[test]
    fn an_empty_or_odd_query_has_no_parameters_but_no_error() {
        for query in ["", "&", "==", "&&=&", "%", "%zz=%zz", "code"] {
            assert!(CallbackParams::parse(query).is_ok(), "{query}");
        }
        assert_eq!(
            CallbackParams::parse("code").map(|p| p.code),
            Ok(Some(String::new()))
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused_even_under_another_spelling() {
        for (query, name) in [
            ("code=a&code=b", "code"),
            ("state=a&state=a", "state"),
            ("error=x&%65rror=y", "error"),
            ("iss=a&iss", "iss"),
        ] {
            assert_eq!(
                CallbackParams::parse(query),
                Err(CallbackError::Repeated(name)),
                "{query}"
            );
        }
    }
}
