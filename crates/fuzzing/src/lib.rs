//! The entry points of authgate's fuzz targets, and the properties each one
//! asserts.
//!
//! Each function takes the fuzzer's bytes, feeds them to the code a request
//! or a configuration file reaches, and panics when a property does not hold
//! (any panic of the code under test is a finding too). `fuzz/` (cargo-fuzz,
//! nightly, outside the workspace) calls them from `fuzz_target!`s, and
//! `tests/corpus.rs` replays every committed seed and regression through them
//! with stable Rust, so CI covers the corpus without the fuzzer.
//!
//! | target | entry point | code under test |
//! |---|---|---|
//! | `session_cookie` | [`session_cookie`] | `core::cookie::chunk::read_chunks` / `write_chunks`, `SessionCodec::decode` / `encode` |
//! | `route_judge` | [`route_judge`] | `proxy::path::normalize`, `RouteRules::judge` |
//! | `forward_auth` | [`forward_auth`] | `proxy::original_request`, `client_ip`, `set_forwarding_headers`, `strip_identity_headers`, `remove_cookies` |
//! | `callback_query` | [`callback_query`] | `core::callback::CallbackParams::parse` |
//! | `config` | [`config`] | `config::Config::from_sources` |

mod headers;
mod routes;
mod session;

pub use headers::forward_auth;
pub use routes::route_judge;
pub use session::session_cookie;

use authgate_config::Config;
use authgate_core::callback::{CallbackError, CallbackParams};

/// A target's entry point: the fuzzer's bytes in, a panic when a property fails.
pub type EntryPoint = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/seeds/` and
/// `fuzz/regressions/`, and the cargo-fuzz target) and its entry point.
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("session_cookie", session_cookie),
    ("route_judge", route_judge),
    ("forward_auth", forward_auth),
    ("callback_query", callback_query),
    ("config", config),
];

/// `callback_query`: the bytes are the raw query of a sign-in callback.
///
/// Properties: parsing never panics; a refused query really repeats the
/// parameter it names; an accepted one holds each parameter's only decoded
/// value, and re-encoding what was read parses back to the same.
pub fn callback_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let count = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .filter(|(n, _)| n == name)
            .count()
    };
    match CallbackParams::parse(&query) {
        Err(CallbackError::Repeated(name)) => {
            assert!(count(name) > 1, "`{name}` refused as repeated: {query:?}");
        }
        Ok(params) => {
            let fields = [
                ("code", &params.code),
                ("state", &params.state),
                ("error", &params.error),
                ("iss", &params.iss),
            ];
            let mut again = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.into_owned())
                    .collect();
                assert_eq!(
                    values.len(),
                    usize::from(value.is_some()),
                    "{name}: {query:?}"
                );
                assert_eq!(values.first(), value.as_ref(), "{name}: {query:?}");
                if let Some(value) = value {
                    again.append_pair(name, value);
                }
            }
            let again = again.finish();
            assert_eq!(
                CallbackParams::parse(&again).as_ref(),
                Ok(&params),
                "{query:?} re-encoded as {again:?}"
            );
        }
    }
}

/// Separates the TOML text from `AUTHGATE_…` variables in a `config` input.
pub const CONFIG_ENV_MARKER: &str = "\n#--env--\n";

/// `config`: the bytes are a TOML file, optionally followed by
/// [`CONFIG_ENV_MARKER`] and `NAME=value` lines (environment overrides).
///
/// Properties: loading never panics, and neither does rendering its error;
/// a loaded configuration's `Debug` never shows a session secret or a
/// provider's client secret (one that appears once in the input and is long
/// enough not to occur by chance in another field).
pub fn config(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let (toml, env) = input.split_once(CONFIG_ENV_MARKER).unwrap_or((&input, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    match Config::from_sources(Some(("fuzz.toml", toml)), env) {
        Err(error) => {
            let _ = error.to_string();
        }
        Ok(config) => {
            let shown = format!("{config:?}");
            let secrets = config
                .session
                .secret
                .iter()
                .chain(config.providers.iter().map(|p| &p.client_secret));
            for secret in secrets {
                let value = secret.expose();
                if value.len() >= 12 && input.matches(value).count() == 1 {
                    assert!(!shown.contains(value), "a secret in Debug: {shown}");
                }
            }
        }
    }
}
