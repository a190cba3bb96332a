//! `authgate sessions list|revoke` against a real store: the built binary
//! lists a user's sessions and revokes one or all of them, and the store
//! agrees. (The same operations over HTTP: `crates/http/tests/admin_sessions.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use authgate_core::time::UnixTime;
use authgate_store::{KeyRing, NewSession, NewUser, SessionId, Store, UserId};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "sessions-cli-secret-at-least-32-chars";

/// The binary with no `AUTHGATE_*` variables inherited from the test's environment.
fn sessions(config: &Path, args: &[&str]) -> (Output, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authgate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUTHGATE_") {
            cmd.env_remove(name);
        }
    }
    let output = cmd
        .arg("sessions")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    (output, stdout, stderr)
}

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime::from_secs(i64::try_from(secs).unwrap())
}

async fn sign_in(store: &dyn Store, user: &UserId, agent: Option<&str>) -> SessionId {
    let now = now();
    store
        .create_jwt_session(NewSession {
            user_id: user.clone(),
            account_id: None,
            now,
            expires: now.saturating_add(Duration::from_secs(3600)),
            user_agent: agent.map(str::to_owned),
            provider_sid: None,
            attributes: Default::default(),
        })
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn the_cli_lists_a_users_sessions_and_revokes_one_then_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gateway.db");
    let config = dir.path().join("authgate.toml");
    std::fs::write(
        &config,
        format!(
            "[session]\nsecret = [\"{SECRET}\"]\n[store]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let store: Arc<dyn Store> = authgate_store::connect(
        &format!("sqlite://{}", db.display()),
        KeyRing::from_secrets(&[SECRET]).unwrap(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let user = store.create_user(NewUser::default()).await.unwrap().id;
    let laptop = sign_in(&*store, &user, Some("Firefox on a laptop")).await;
    let phone = sign_in(&*store, &user, None).await;

    let (out, stdout, stderr) = sessions(&config, &["list", "--user", user.as_str()]);
    assert!(out.status.success(), "{stderr}");
    for id in [&laptop, &phone] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("{id} missing from:\n{stdout}"));
        assert!(line.contains(" jwt "), "{line}");
        assert!(line.contains(" live "), "{line}");
    }
    assert!(stdout.contains("Firefox on a laptop"), "{stdout}");

    let (out, stdout, stderr) = sessions(&config, &["revoke", "--session", phone.as_str()]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("revoked session"), "{stdout}");
    assert!(
        store
            .find_live_session(&phone, now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_live_session(&laptop, now())
            .await
            .unwrap()
            .is_some()
    );

    let (out, _, stderr) = sessions(&config, &["revoke", "--session", phone.as_str()]);
    assert_eq!(out.status.code(), Some(1), "revoking twice is an error");
    assert!(stderr.contains("no live session"), "{stderr}");

    let (out, stdout, stderr) = sessions(&config, &["revoke", "--user", user.as_str()]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("revoked 1 session(s)"), "{stdout}");
    assert!(
        store
            .find_live_session(&laptop, now())
            .await
            .unwrap()
            .is_none()
    );

    let (_, stdout, _) = sessions(&config, &["list", "--user", user.as_str()]);
    assert_eq!(stdout.matches(" revoked ").count(), 2, "{stdout}");

    let (_, stdout, _) = sessions(&config, &["list", "--user", "nobody"]);
    assert!(stdout.contains("no sessions for user nobody"), "{stdout}");
}

#[test]
fn revoke_needs_exactly_one_of_user_or_session() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("authgate.toml");
    std::fs::write(&config, format!("[session]\nsecret = [\"{SECRET}\"]\n")).unwrap();
    let (out, _, stderr) = sessions(&config, &["revoke"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let (out, _, stderr) = sessions(&config, &["revoke", "--user", "u", "--session", "s"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
}
