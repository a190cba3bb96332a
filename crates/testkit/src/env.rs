//! Environment and filesystem helpers.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

/// When this variable is `1` (as in CI), a test whose service URL is missing fails instead of
/// skipping.
pub const REQUIRE_SERVICES_VAR: &str = "AUTHGATE_REQUIRE_SERVICES";

/// Reads a service URL (e.g. `AUTHGATE_TEST_POSTGRES_URL`) from the environment.
///
/// Returns `None` after printing `skipping: VAR not set` to stderr when the variable is unset or
/// empty; panics instead when `AUTHGATE_REQUIRE_SERVICES=1`, so CI never skips silently.
pub fn require_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_SERVICES_VAR).as_deref() == Ok("1") {
                panic!(
                    "{var} is not set but {REQUIRE_SERVICES_VAR}=1: this test needs that service; \
                     set {var} to its URL"
                );
            }
            eprintln!("skipping: {var} not set");
            None
        }
    }
}

/// The workspace's `interop/` directory (the npm project holding the reference peers).
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .canonicalize()
        .expect("the workspace has an interop/ directory next to crates/")
}

/// Panics with the command to run when `interop/node_modules` (with `oidc-provider`) is missing.
pub fn ensure_node_modules() {
    let dir = interop_dir();
    let marker = dir.join("node_modules/oidc-provider/package.json");
    assert!(
        marker.is_file(),
        "{} is missing: run `npm ci --prefix interop` in the workspace root first",
        marker.display()
    );
}

/// A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address").port()
}
