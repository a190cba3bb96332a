//! `authgate demo` as a new user runs it: start the binary, open the printed
//! URL, sign in with the development provider, see yourself on the sample page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, location};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The demo process; killed when dropped.
struct DemoProcess(tokio::process::Child);

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test]
async fn the_demo_prints_a_url_where_a_new_user_signs_in_and_sees_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = DemoProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(u) = line.split("open ").nth(1) {
                return u.trim().to_owned();
            }
        }
        panic!("the demo exited without printing a URL");
    })
    .await
    .expect("the demo prints its URL within 30 s");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let mut b = Browser::new();
    // The protected sample page sends us to sign in.
    let r = b.get(&url).await;
    assert_eq!(r.status(), 302);
    let signin = format!("{}{}", url.trim_end_matches('/'), location(&r));
    let page = b.get(&signin).await.text().await.unwrap();
    assert!(
        page.contains("Sign in with the development provider"),
        "{page}"
    );
    // The sign-in page's form: POST with its CSRF token.
    let csrf = page
        .split("name=\"csrfToken\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = b
        .post_form(
            &format!("{}auth/signin/devidp", url),
            &[("csrfToken", &csrf), ("callbackUrl", "/")],
        )
        .await;
    assert_eq!(r.status(), 302);
    let authorize = location(&r);
    let callback =
        authgate_testkit::login_with_dev_provider(&authorize, "grace", Some("Grace Hopper")).await;
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/");

    let page = b.get(&url).await.text().await.unwrap();
    assert!(page.contains("Hello, Grace Hopper"), "{page}");
    assert!(page.contains("grace@example.com"));
    let session: serde_json::Value = b
        .get(&format!("{url}auth/session"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["name"], "Grace Hopper");
    assert!(session["accessTokenExpiresAt"].as_i64().is_some());
}

#[tokio::test]
async fn the_nextjs_demo_serves_the_auth_js_client_at_api_auth_and_prints_the_apps_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _upstream) = common::echo_upstream().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["demo", "--nextjs", "--listen", "127.0.0.1:0"])
        .args(["--provider-listen", "127.0.0.1:0", "--app", app.as_str()])
        .env("AUTH_SECRET", "nextjs-demo-test-secret-at-least-32-chars")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = DemoProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    let (url, app_env) = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut url = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(u) = line.split("open ").nth(1) {
                url = Some(u.trim().to_owned());
            }
            if let Some(env) = line.strip_prefix("start the Next.js app with: ") {
                return (url.expect("the URL comes first"), env.to_owned());
            }
        }
        panic!("the demo exited without printing the app's environment");
    })
    .await
    .expect("the demo prints its URL and the app's environment within 30 s");
    assert!(
        app_env.contains("AUTH_SECRET=nextjs-demo-test-secret-at-least-32-chars "),
        "{app_env}"
    );
    assert!(
        app_env.contains("OIDC_ISSUER=http://127.0.0.1:"),
        "{app_env}"
    );

    let mut b = Browser::new();
    let providers: serde_json::Value = b
        .get(&format!("{url}api/auth/providers"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(providers["op"]["type"], "oidc");
    // next-auth/react's signIn("op"): a fetch POST that wants {"url"}.
    let csrf: serde_json::Value = b
        .get(&format!("{url}api/auth/csrf"))
        .await
        .json()
        .await
        .unwrap();
    let r = b
        .client
        .post(format!("{url}api/auth/signin/op"))
        .header("cookie", b.cookie_header())
        .header("x-auth-return-redirect", "1")
        .form(&[
            ("csrfToken", csrf["csrfToken"].as_str().unwrap()),
            ("callbackUrl", "/protected"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.absorb(&r);
    let authorize = r.json::<serde_json::Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = authgate_testkit::login_with_dev_provider(&authorize, "ada", None).await;
    let r = b.get(&callback).await;
    assert_eq!(location(&r), "/protected");
    // The app gets the identity and the access token.
    let seen: serde_json::Value = b
        .get(&format!("{url}protected"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["headers"]["x-auth-request-email"][0],
        "ada@example.com"
    );
    assert!(seen["headers"]["x-forwarded-access-token"][0].is_string());
}

#[tokio::test]
async fn the_beside_nextjs_demo_prints_the_apps_build_and_start_environment_and_answers_its_server()
{
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["demo", "--nextjs", "--beside", "--listen", "127.0.0.1:0"])
        .args(["--provider-listen", "127.0.0.1:0"])
        .args(["--app", "http://127.0.0.1:3999"])
        .env("AUTH_SECRET", "nextjs-demo-test-secret-at-least-32-chars")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = DemoProcess(child);
    let mut lines = BufReader::new(stdout).lines();
    let (url, build_env, start_env) =
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let (mut url, mut build_env) = (None, None);
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(u) = line.split("open ").nth(1) {
                    url = Some(u.trim().to_owned());
                }
                if let Some(env) = line.strip_prefix("build the Next.js app with: ") {
                    build_env = Some(env.to_owned());
                }
                if let Some(env) = line.strip_prefix("start the Next.js app with: ") {
                    return (url.unwrap(), build_env.unwrap(), env.to_owned());
                }
            }
            panic!("the demo exited without printing the app's environment");
        })
        .await
        .expect("the demo prints its URL and the app's environment within 30 s");
    // The browser opens the app (by the name Next.js uses for loopback).
    assert_eq!(url, "http://localhost:3999/");
    let word = |env: &str, key: &str| -> String {
        env.split(' ')
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from {env}"))
            .to_owned()
    };
    let gateway = word(&build_env, "AUTHGATE_URL");
    assert_eq!(word(&build_env, "NEXT_DIST_DIR"), ".next-beside");
    assert_eq!(word(&start_env, "AUTHGATE_URL"), gateway);
    assert_eq!(word(&start_env, "AUTHGATE_CLIENT_ID"), "next-server");
    let server_secret = word(&start_env, "AUTHGATE_CLIENT_SECRET");

    // The gateway answers the app's rewritten paths and its server's token
    // requests: with the printed credentials and no session, "sign in".
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let providers: serde_json::Value = client
        .get(format!("{gateway}/api/auth/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        providers["op"]["callbackUrl"],
        "http://localhost:3999/api/auth/callback/op"
    );
    for (secret, status, error) in [
        (server_secret.as_str(), 401, "SessionRequired"),
        ("wrong", 401, "invalid_client"),
    ] {
        let r = client
            .post(format!("{gateway}/api/auth/token"))
            .basic_auth("next-server", Some(secret))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], error);
    }
}
