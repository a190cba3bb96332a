//! The `authgate` binary: an authentication gateway (OAuth 2.0 / OIDC sign-in,
//! rotation-safe token refresh).
//!
//! Subcommands: `serve` (run the gateway), `migrate` (apply database
//! migrations), `reencrypt` (re-encrypt stored tokens under the newest key),
//! `secret` (print a new random secret; `--hash` adds a service client's
//! `secret_hash`), `check` (validate a configuration and print a redacted
//! summary), `health` (ask a running gateway's `/healthz`, for container
//! health checks), `sessions` (list and revoke users' sessions) and `import
//! authjs` (bring an Auth.js database over).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authgate::app::{App, Listeners, Migrations};
use authgate_config::{Config, ConfigError, is_config_env_var};
use authgate_core::client_secret;
use authgate_core::time::{Clock as _, SystemClock};
use clap::{Parser, Subcommand};
use rand::{RngCore as _, SeedableRng as _};

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
    /// Run a self-contained demo: the gateway, the built-in development identity
    /// provider and a sample app, on loopback, with no configuration. Prints the URL.
    Demo {
        /// Where the gateway listens (loopback only; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:4180")]
        listen: std::net::SocketAddr,
        /// Put the gateway in front of a Next.js app (examples/nextjs) instead of
        /// the sample app: endpoints at /api/auth, the development provider on
        /// 127.0.0.1:4000, the session secret from AUTH_SECRET (shared with the app).
        #[arg(long)]
        nextjs: bool,
        /// With --nextjs: where the Next.js app listens.
        #[arg(long, default_value = "http://127.0.0.1:3000", requires = "nextjs")]
        app: String,
        /// With --nextjs: where the development provider listens (the app's OIDC_ISSUER).
        #[arg(long, default_value = "127.0.0.1:4000", requires = "nextjs")]
        provider_listen: std::net::SocketAddr,
        /// With --nextjs: run beside the app instead of in front of it — the app
        /// serves itself and rewrites /api/auth/* to the gateway, and its server
        /// asks POST /api/auth/token for access tokens (open the app's URL).
        #[arg(long, requires = "nextjs")]
        beside: bool,
    },
    /// Run the gateway with a configuration file (plus AUTHGATE_* environment).
    Serve {
        /// TOML configuration file.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Apply the database migrations of `[store] url` (SQLite or PostgreSQL).
    Migrate {
        /// TOML configuration file.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Re-encrypt every stored token under the newest `store.encryption_keys` key.
    Reencrypt {
        /// TOML configuration file.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a new random secret (32 bytes, base64url) for `session.secret`;
    /// with --hash, a service client's secret and, on a second line, the
    /// `secret_hash` to configure for it.
    Secret {
        /// Also print the secret's hash for `[[service_clients]] secret_hash`.
        #[arg(long)]
        hash: bool,
    },
    /// Load and validate a configuration (file + AUTHGATE_* environment), then print
    /// a summary with secrets redacted. Exits with 2 when the configuration is invalid.
    Check {
        /// TOML configuration file. Without one, defaults plus environment are checked.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// List or revoke users' sessions in `[store] url` (through `[cache] url`,
    /// so running instances see revocations as they see sign-outs).
    Sessions {
        /// TOML configuration file (plus AUTHGATE_* environment), as for `serve`.
        #[arg(
            long,
            short,
            env = "AUTHGATE_CONFIG",
            value_name = "FILE",
            global = true
        )]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Import users, accounts (with their tokens) and database sessions from
    /// another system's database into `[store] url`.
    Import {
        /// TOML configuration file (plus AUTHGATE_* environment), as for `serve`.
        #[arg(
            long,
            short,
            env = "AUTHGATE_CONFIG",
            value_name = "FILE",
            global = true
        )]
        config: Option<PathBuf>,
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Ask the gateway listening on `server.listen` (a wildcard address is asked
    /// on loopback) for `/healthz`: exits 0 when it answers 200, 1 otherwise. For
    /// container health checks, where the image has no shell or HTTP client.
    Health {
        /// TOML configuration file (plus AUTHGATE_* environment), as for `serve`.
        #[arg(long, short, env = "AUTHGATE_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// `authgate sessions …`.
#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// A user's sessions, newest first (live, expired and revoked ones not yet swept).
    List {
        /// The user id (the session's `sub`).
        #[arg(long)]
        user: String,
    },
    /// Revoke one session (`--session`) or every live session of a user (`--user`).
    Revoke {
        /// The user id: revoke all of the user's sessions.
        #[arg(long, conflicts_with = "session", required_unless_present = "session")]
        user: Option<String>,
        /// One session id (as `list` prints it).
        #[arg(long)]
        session: Option<String>,
    },
}

/// `authgate import …`.
#[derive(Debug, Subcommand)]
enum ImportSource {
    /// An Auth.js database in one of the standard adapter schemas (Prisma on
    /// PostgreSQL or SQLite, Drizzle's default PostgreSQL schema,
    /// @auth/pg-adapter). Idempotent: a second run changes nothing.
    Authjs {
        /// The Auth.js database: postgres://… (add
        /// `?options[search_path]=SCHEMA` for another schema) or sqlite:PATH.
        #[arg(long, value_name = "URL")]
        from: String,
        /// Print what an import would do and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Secret { hash } => secret(hash),
        Command::Demo {
            listen,
            nextjs,
            beside,
            app,
            provider_listen,
        } => run_async(demo(
            listen,
            nextjs.then_some(authgate::demo::NextjsDemo {
                app,
                provider_listen,
                secret: std::env::var("AUTH_SECRET").ok().filter(|s| !s.is_empty()),
                beside,
            }),
        )),
        Command::Check { config } => check(config),
        Command::Serve { config, log_format } => run_async(serve(config, log_format)),
        Command::Migrate { config } => run_async(migrate(config)),
        Command::Reencrypt { config } => run_async(reencrypt(config)),
        Command::Health { config } => run_async(health(config)),
        Command::Sessions { config, action } => run_async(sessions(config, action)),
        Command::Import { config, source } => run_async(import(config, source)),
    }
}

fn run_async(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(work),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout is for what a command prints (`secret`,
    // `check`'s summary).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the configuration or reports it (exit code 2).
fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|error| {
        report(&error);
        ExitCode::from(EXIT_INVALID_CONFIG)
    })
}

/// Loads the configuration and compiles its route rules (patterns, methods,
/// reserved paths), or reports what is wrong (exit code 2).
fn load_with_routes(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let config = load(path)?;
    let compiled = authgate::settings::routes(&config)
        .and_then(|_| authgate::settings::host_upstreams(&config));
    match compiled {
        Ok(_) => Ok(config),
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::from(EXIT_INVALID_CONFIG))
        }
    }
}

async fn serve(path: Option<PathBuf>, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let config = match load_with_routes(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let app = match App::build(&config, Migrations::SqliteOnly).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: server.listen: cannot listen on {}: {e}",
                config.server.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let metrics = match config.server.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(metrics_listen = %addr, "/metrics is served on its own address");
                Some(l)
            }
            Err(e) => {
                eprintln!("error: server.metrics_listen: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    tracing::info!(listen = %config.server.listen, public_url = %config.server.public_url, "authgate is serving");
    let drain = authgate::app::drain_timeout(&config);
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = Listeners {
        main: listener,
        metrics,
    };
    let serving = app.serve(listeners, async move {
        shutdown_signal().await;
        let _ = stopping.send(());
    });
    let deadline = async move {
        match stopped.await {
            Ok(()) => tokio::time::sleep(drain).await,
            // The server ended on its own; `serving` has the result.
            Err(_) => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = serving => result,
        () = deadline => {
            tracing::warn!(drain = ?drain, "shutting down: requests still in flight after the drain deadline are cut");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

/// `authgate demo`; with `nextjs`, in front of (or beside) a Next.js app.
async fn demo(
    listen: std::net::SocketAddr,
    nextjs: Option<authgate::demo::NextjsDemo>,
) -> ExitCode {
    init_logging(LogFormat::Text);
    let started = match nextjs {
        Some(nextjs) => authgate::demo::Demo::start_nextjs(listen, nextjs).await,
        None => authgate::demo::Demo::start(listen).await,
    };
    let demo = match started {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            if listen.port() != 0 {
                eprintln!("hint: pick another port with --listen 127.0.0.1:PORT");
            }
            return ExitCode::FAILURE;
        }
    };
    println!("authgate demo is running: open {}", demo.url);
    let env_words = |env: &[(&str, String)]| -> String {
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !demo.app_build_env.is_empty() {
        println!(
            "build the Next.js app with: {} examples/nextjs/build-if-changed.sh",
            env_words(&demo.app_build_env)
        );
    }
    if !demo.app_env.is_empty() {
        println!(
            "start the Next.js app with: {} npm --prefix examples/nextjs start",
            env_words(&demo.app_env)
        );
    }
    println!("sign in with any user name at the development provider; Ctrl-C stops the demo");
    match demo.serve(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn authgate_store::Store>, String> {
    let keys =
        authgate::settings::key_ring(config).map_err(|e| format!("store.encryption_keys: {e}"))?;
    authgate_store::connect(config.store.url.as_str(), keys)
        .await
        .map_err(|e| format!("store.url: {e}"))
}

async fn migrate(path: Option<PathBuf>) -> ExitCode {
    let config = match load(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match open_store(&config).await {
        Ok(store) => store.migrate().await.map_err(|e| format!("store.url: {e}")),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            println!("migrations applied: {}", config.store.url.redacted());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn reencrypt(path: Option<PathBuf>) -> ExitCode {
    let config = match load(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match open_store(&config).await {
        Ok(store) => store
            .reencrypt_all()
            .await
            .map_err(|e| format!("store.url: {e}")),
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => {
            println!("re-encrypted {n} account rows under the newest key");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn sessions(path: Option<PathBuf>, action: SessionsAction) -> ExitCode {
    use authgate::sessions;
    let config = match load(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store = match sessions::open(&config).await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = SystemClock.now();
    let result = match action {
        SessionsAction::List { user } => sessions::list(&*store, &user, now).await,
        SessionsAction::Revoke {
            session: Some(id), ..
        } => sessions::revoke_session(&*store, &id, now)
            .await
            .map(|()| format!("revoked session {id}\n")),
        SessionsAction::Revoke {
            user: Some(user), ..
        } => sessions::revoke_user(&*store, &user, now)
            .await
            .map(|n| format!("revoked {n} session(s) of user {user}\n")),
        SessionsAction::Revoke { .. } => Ok(String::new()),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import(path: Option<PathBuf>, source: ImportSource) -> ExitCode {
    let config = match load(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let ImportSource::Authjs { from, dry_run } = source;
    let options = authgate::import::Options { from, dry_run };
    match authgate::import::run(&config, &options, SystemClock.now()).await {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn secret(hash: bool) -> ExitCode {
    // A CSPRNG seeded from the operating system, so that a failing OS
    // generator is reported instead of panicking.
    let mut seed = [0u8; 32];
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut seed) {
        eprintln!("error: the operating system's random number generator failed: {e}");
        return ExitCode::FAILURE;
    }
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    let (secret, secret_hash) = client_secret::generate(&mut rng);
    let mut out = std::io::stdout().lock();
    let printed = if hash {
        eprintln!(
            "Give the secret to the service client (it is not stored anywhere); put secret_hash in its [[service_clients]] entry."
        );
        writeln!(out, "secret:      {}", secret.expose())
            .and_then(|()| writeln!(out, "secret_hash: {secret_hash}"))
    } else {
        writeln!(out, "{}", secret.expose())
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: Option<PathBuf>) -> ExitCode {
    match load_with_routes(path.as_deref()) {
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
        Err(code) => code,
    }
}

/// How long `health` waits for the gateway's answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

async fn health(path: Option<PathBuf>) -> ExitCode {
    // Exit code 2 is reserved in Docker's HEALTHCHECK: every failure here is 1.
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(error) => {
            report(&error);
            return ExitCode::FAILURE;
        }
    };
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    match tokio::time::timeout(HEALTH_TIMEOUT, healthz_status(addr)).await {
        Ok(Ok(200)) => {
            println!("healthy: http://{addr}/healthz answered 200");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            eprintln!("unhealthy: http://{addr}/healthz answered {status}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("unhealthy: http://{addr}/healthz: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "unhealthy: http://{addr}/healthz did not answer within {}s",
                HEALTH_TIMEOUT.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}

/// The status code of `GET /healthz` at `addr` (HTTP/1.1, one request).
async fn healthz_status(addr: std::net::SocketAddr) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // The status line is all that is read: "HTTP/1.1 200 OK".
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    std::str::from_utf8(&head)
        .ok()
        .and_then(|line| line.strip_prefix("HTTP/1.1 "))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the answer is not an HTTP/1.1 status line",
            )
        })
}

fn report(error: &ConfigError) {
    eprintln!("error: {error}");
    if let ConfigError::Read { .. } = error {
        eprintln!("hint: pass an existing file with --config FILE (or AUTHGATE_CONFIG)");
    }
}
