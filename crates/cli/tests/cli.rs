//! Runs the built `authgate` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Both secrets in the canonical example (the session secret and the client secret)
/// contain this text.
const CANONICAL_SECRET_TEXT: &str = "test-secret";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/authgate.toml")
}

/// The binary with no `AUTHGATE_*` variables inherited from the test's environment.
fn authgate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUTHGATE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> (Output, String, String) {
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

#[test]
fn check_accepts_the_canonical_example_without_printing_secrets() {
    let (out, stdout, stderr) = run(authgate().arg("check").arg("--config").arg(example()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(stdout.contains("[redacted; 36 bytes]"), "{stdout}");
    assert!(stdout.contains("/protected/**"), "{stdout}");
    assert!(
        !stdout.contains(CANONICAL_SECRET_TEXT),
        "stdout leaks a secret:\n{stdout}"
    );
    assert!(
        !stderr.contains(CANONICAL_SECRET_TEXT),
        "stderr leaks a secret:\n{stderr}"
    );
}

#[test]
fn check_takes_the_config_path_from_authgate_config() {
    let (out, stdout, _) = run(authgate().arg("check").env("AUTHGATE_CONFIG", example()));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Local OP"), "{stdout}");
}

#[test]
fn check_applies_environment_overrides() {
    let (out, stdout, _) = run(authgate()
        .arg("check")
        .arg("--config")
        .arg(example())
        .env("AUTHGATE_REFRESH__SKEW", "90s"));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("skew            = 90s"), "{stdout}");
    assert!(stdout.contains("AUTHGATE_REFRESH__SKEW"), "{stdout}");
}

#[test]
fn check_rejects_a_broken_config_with_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("skew = \"2s\"", "skew = \"15 parsecs\"");
    std::fs::write(&path, text).unwrap();

    let (out, stdout, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("refresh.skew"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("line 13"), "{stderr}");
    assert!(
        stderr.contains("invalid duration \"15 parsecs\""),
        "{stderr}"
    );
}

#[test]
fn check_rejects_a_short_secret_from_the_environment_without_echoing_it() {
    let (out, _, stderr) = run(authgate()
        .arg("check")
        .arg("--config")
        .arg(example())
        .env("AUTHGATE_SESSION__SECRET", "shh-too-short"));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("session.secret[0]"), "{stderr}");
    assert!(
        stderr.contains("environment variable AUTHGATE_SESSION__SECRET"),
        "{stderr}"
    );
    assert!(stderr.contains("must be at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("shh-too-short"), "{stderr}");
}

#[test]
fn check_rejects_a_missing_file_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let (out, _, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("absent.toml"), "{stderr}");
}

#[test]
fn secret_prints_43_base64url_chars_and_differs_each_run() {
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (out, stdout, stderr) = run(authgate().arg("secret"));
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout.ends_with('\n') && stdout.lines().count() == 1,
            "{stdout:?}"
        );
        let secret = stdout.trim_end().to_owned();
        assert_eq!(secret.len(), 43, "{secret:?}");
        assert!(
            secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{secret:?}"
        );
        seen.push(secret);
    }
    assert_ne!(seen[0], seen[1]);
}

#[test]
fn secret_hash_prints_a_service_secret_and_a_hash_that_verifies_and_configures() {
    use authgate_core::client_secret::SecretHash;
    let (out, stdout, stderr) = run(authgate().args(["secret", "--hash"]));
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout:?}");
    let secret = lines[0].strip_prefix("secret:").unwrap().trim();
    let hash = lines[1].strip_prefix("secret_hash:").unwrap().trim();
    assert_eq!(secret.len(), 43, "{secret:?}");
    assert!(hash.starts_with("$hmac-sha256$"), "{hash}");
    assert!(!hash.contains(secret));
    let parsed: SecretHash = hash.parse().unwrap();
    assert!(parsed.verify(secret.as_bytes()));
    assert!(!parsed.verify(b"some-other-secret-some-other-secret-xx"));
    assert!(stderr.contains("[[service_clients]]"), "{stderr}");

    // The hash configures a client as printed; the secret never shows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authgate.toml");
    std::fs::write(
        &path,
        format!(
            "[session]\nsecret = [\"test-secret-at-least-32-chars-long!!\"]\n\n[[service_clients]]\nid = \"next-server\"\nsecret_hash = \"{hash}\"\nallow = [\"token\"]\n"
        ),
    )
    .unwrap();
    let (out, stdout, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("[[service_clients]] next-server"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(secret) && !stdout.contains(hash),
        "{stdout}"
    );
}

#[test]
fn check_names_the_key_and_source_of_a_bad_service_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clients.toml");
    std::fs::write(
        &path,
        "[session]\nsecret = [\"test-secret-at-least-32-chars-long!!\"]\n\n[[service_clients]]\nid = \"next-server\"\nsecret_hash = \"my-plain-secret\"\nallow = [\"tokens\"]\n",
    )
    .unwrap();
    let (out, _, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("service_clients[0].allow[0] (file ")
            && stderr.contains("clients.toml, line 7)"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown variant `tokens`"), "{stderr}");
    let (out, _, stderr) = run(authgate()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .env("AUTHGATE_SERVICE_CLIENTS__0__ALLOW", "token"));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("service_clients[0].secret_hash (file ")
            && stderr.contains("clients.toml, line 6)"),
        "{stderr}"
    );
    assert!(stderr.contains("authgate secret --hash"), "{stderr}");
    assert!(!stderr.contains("my-plain-secret"), "{stderr}");
}

#[test]
fn every_subcommand_is_listed_in_the_help() {
    let (out, stdout, _) = run(authgate().arg("--help"));
    assert!(out.status.success());
    for name in [
        "serve",
        "demo",
        "migrate",
        "reencrypt",
        "secret",
        "check",
        "health",
        "sessions",
    ] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
}

#[test]
fn serve_and_migrate_refuse_a_broken_config_with_exit_code_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "[session]\nsecret = [\"too-short\"]\n").unwrap();
    for cmd in ["serve", "migrate", "reencrypt"] {
        let (out, _, stderr) = run(authgate().arg(cmd).arg("--config").arg(&path));
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(stderr.contains("session.secret[0]"), "{cmd}: {stderr}");
    }
}

#[test]
fn migrate_then_reencrypt_work_on_a_fresh_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let path = dir.path().join("authgate.toml");
    std::fs::write(
        &path,
        format!(
            "[session]\nsecret = [\"test-secret-at-least-32-chars-long!!\"]\n[store]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let (out, stdout, stderr) = run(authgate().arg("migrate").arg("--config").arg(&path));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(db.exists());
    let (out, stdout, stderr) = run(authgate().arg("reencrypt").arg("--config").arg(&path));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("re-encrypted 0 account rows"), "{stdout}");
}

#[test]
fn check_and_serve_refuse_a_route_rule_naming_a_path_authgate_answers_itself() {
    let dir = tempfile::tempdir().unwrap();
    let canonical = std::fs::read_to_string(example()).unwrap();
    for (rule, reserved) in [
        ("/metrics/**", "/metrics"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/auth/**", "/auth"),
    ] {
        let path = dir.path().join("reserved.toml");
        let text = canonical.replacen(
            "[[routes]]",
            &format!("[[routes]]\npath = \"{rule}\"\naccess = \"public\"\n\n[[routes]]"),
            1,
        );
        std::fs::write(&path, &text).unwrap();
        for cmd in ["check", "serve"] {
            let (out, stdout, stderr) = run(authgate().arg(cmd).arg("--config").arg(&path));
            assert_eq!(out.status.code(), Some(2), "{cmd} {rule}: {stdout}{stderr}");
            assert!(
                stderr.contains(&format!("routes[0].path: \"{rule}\" names {reserved}")),
                "{cmd} {rule}: {stderr}"
            );
        }
    }
    // With its own listener, /metrics on server.listen is the upstream's.
    let path = dir.path().join("metrics-apart.toml");
    let text = canonical
        .replacen(
            "[server]\n",
            "[server]\nmetrics_listen = \"127.0.0.1:9090\"\n",
            1,
        )
        .replacen(
            "[[routes]]",
            "[[routes]]\npath = \"/metrics/**\"\naccess = \"protected\"\n\n[[routes]]",
            1,
        );
    std::fs::write(&path, text).unwrap();
    let (out, stdout, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("metrics_listen  = 127.0.0.1:9090"),
        "{stdout}"
    );
}

#[test]
fn check_compiles_route_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pattern.toml");
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("path = \"/protected/**\"", "path = \"/protected/*.png\"");
    std::fs::write(&path, text).unwrap();
    let (out, _, stderr) = run(authgate().arg("check").arg("--config").arg(&path));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/protected/*.png"), "{stderr}");
}
