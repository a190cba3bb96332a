//! Errors: every problem names the key, where its value came from, and what is wrong.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A TOML file (or other named TOML text).
    File {
        /// The file path or source name as given to the loader.
        path: String,
        /// 1-based line of the value, when known.
        line: Option<usize>,
    },
    /// An environment variable such as `AUTHGATE_SESSION__SECRET`.
    Env {
        /// The variable's name.
        var: String,
    },
    /// The key was set neither in the file nor in the environment.
    Unset,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "file {path}, line {line}"),
            Origin::File { path, line: None } => write!(f, "file {path}"),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Unset => f.write_str("not set in the file or the environment"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `session.secret[0]` or `providers[1].issuer`.
    pub key: String,
    /// Where the offending value came from.
    pub origin: Origin,
    /// What is wrong, e.g. `must be at least 32 bytes, got 10`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() {
            "(top level)"
        } else {
            &self.key
        };
        write!(f, "{key} ({}): {}", self.origin, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("invalid TOML in {source_name}: {message}")]
    Syntax {
        /// The file path or source name.
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The configuration is well-formed TOML but has invalid or unknown keys.
    #[error("{}", InvalidDisplay(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The individual problems (empty for read and syntax errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

struct InvalidDisplay<'a>(&'a [Problem]);

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}
