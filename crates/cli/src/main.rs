//! The `authgate` binary: an authentication gateway (OAuth 2.0 / OIDC sign-in,
//! rotation-safe token refresh).
//!
//! Subcommands: `secret` (print a new random secret) and `check` (validate a
//! configuration and print a redacted summary).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use authgate_config::{Config, ConfigError, is_config_env_var};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use rand::RngCore as _;

/// Exit code for an invalid configuration (also clap's code for usage errors).
const EXIT_INVALID_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "authgate",
    version,
    about = "Authentication gateway: OAuth 2.0 / OpenID Connect sign-in, sessions and rotation-safe token refresh"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new random secret (32 bytes, base64url) for `session.secret`.
    Secret,
    /// Load and validate a configuration (file + AUTHGATE_* environment), then print
    /// a summary with secrets redacted. Exits with 2 when the configuration is invalid.
    Check {
        /// TOML configuration file. Without one, defaults plus environment are checked.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Secret => secret(),
        Command::Check { config } => check(config),
    }
}

fn secret() -> ExitCode {
    let mut bytes = [0u8; 32];
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut bytes) {
        eprintln!("error: the operating system's random number generator failed: {e}");
        return ExitCode::FAILURE;
    }
    println!("{}", URL_SAFE_NO_PAD.encode(bytes));
    ExitCode::SUCCESS
}

fn check(path: Option<PathBuf>) -> ExitCode {
    match Config::load(path.as_deref()) {
        Ok(config) => {
            let mut sources: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
            let mut vars: Vec<String> = std::env::vars_os()
                .filter_map(|(name, _)| name.into_string().ok())
                .filter(|name| is_config_env_var(name))
                .collect();
            vars.sort();
            if !vars.is_empty() {
                sources.push(format!("environment ({})", vars.join(", ")));
            }
            if sources.is_empty() {
                sources.push("defaults only".to_owned());
            }
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not a configuration error.
            let _ = writeln!(out, "configuration OK: {}", sources.join(" + "));
            let _ = write!(out, "{}", config.redacted_summary());
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(&error);
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

fn report(error: &ConfigError) {
    eprintln!("error: {error}");
    if let ConfigError::Read { .. } = error {
        eprintln!("hint: pass an existing file with --config FILE (or AUTHGATE_CONFIG)");
    }
}
