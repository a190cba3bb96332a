//! The session administration API through real HTTP: a service client
//! allowed `sessions` lists a user's sessions and revokes one or all; the
//! revoked browsers are signed out (at once with `revocation_check =
//! "request"`), the others keep working; everyone else is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::client_secret::SecretHash;
use authgate_http::{RevocationCheck, ServiceClient, ServicePermission};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, Options, json, sign_in, start, user_id};
use serde_json::Value;

const ADMIN_SECRET: &str = "Ad9mK2pQ7wE4rT1yU8iO3pA6sD0fG5hJ-kL_zXcVbN";

fn client(id: &str, allow: Vec<ServicePermission>) -> ServiceClient {
    ServiceClient {
        id: id.to_owned(),
        secret_hash: SecretHash::new(ADMIN_SECRET.as_bytes(), &mut rand::rngs::OsRng),
        allow,
        rate_limit: "600/min".parse().unwrap(),
    }
}

async fn gateway() -> Harness {
    start(Options {
        upstream: true,
        revocation_check: RevocationCheck::Request,
        service_clients: vec![
            client("console", vec![ServicePermission::Sessions]),
            client("app-server", vec![ServicePermission::Token]),
        ],
        ..Options::default()
    })
    .await
}

fn basic(id: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{ADMIN_SECRET}")))
}

async fn call(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.request(method, h.url.join(path).unwrap());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn as_console(h: &Harness, method: reqwest::Method, path: &str) -> reqwest::Response {
    call(h, method, path, &[("authorization", &basic("console"))]).await
}

#[tokio::test]
async fn a_console_lists_a_users_sessions_and_revokes_one_then_all() {
    let h = gateway().await;
    let mut laptop = sign_in(&h, "ada").await;
    let user = user_id(&mut laptop).await;
    let list = format!("/auth/admin/sessions?user_id={user}");
    let body = json(as_console(&h, reqwest::Method::GET, &list).await).await;
    let laptop_sid = body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mut phone = sign_in(&h, "ada").await;

    let r = as_console(&h, reqwest::Method::GET, &list).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    for s in sessions {
        assert_eq!(s["kind"], "jwt");
        assert_eq!(s["provider"], common::PROVIDER);
        assert_eq!(s["live"], true);
        assert_eq!(s["user_agent"], "authgate-http-tests");
        assert_eq!(s["revoked_at"], Value::Null);
    }
    let phone_sid = sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .find(|id| *id != laptop_sid)
        .unwrap()
        .to_owned();

    let one = format!("/auth/admin/sessions/{phone_sid}");
    let r = as_console(&h, reqwest::Method::DELETE, &one).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["revoked"], 1);
    assert_eq!(
        phone.get("/protected/page").await.status(),
        302,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get("/protected/page").await.status(),
        200,
        "the laptop is not"
    );
    let r = as_console(&h, reqwest::Method::DELETE, &one).await;
    assert_eq!(r.status(), 404);
    assert_eq!(json(r).await["error"], "SessionNotFound");

    let r = as_console(&h, reqwest::Method::DELETE, &list).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["revoked"], 1);
    assert_eq!(laptop.get("/protected/page").await.status(), 302);

    let body = json(as_console(&h, reqwest::Method::GET, &list).await).await;
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .all(|s| s["live"] == false && s["revoked_at"].is_i64())
    );
}

#[tokio::test]
async fn only_an_admitted_client_allowed_sessions_may_use_the_api() {
    let h = gateway().await;
    let mut b = sign_in(&h, "ada").await;
    let user = user_id(&mut b).await;
    let list = format!("/auth/admin/sessions?user_id={user}");
    let get = reqwest::Method::GET;

    let r = call(&h, get.clone(), &list, &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"], "invalid_client");
    // A browser's cookie is no credential.
    let cookie = b.cookie_header();
    let r = call(&h, get.clone(), &list, &[("cookie", &cookie)]).await;
    assert_eq!(r.status(), 401);
    let wrong = format!("Basic {}", STANDARD.encode("console:not-the-secret"));
    let r = call(&h, get.clone(), &list, &[("authorization", &wrong)]).await;
    assert_eq!(r.status(), 401);

    let r = call(
        &h,
        get.clone(),
        &list,
        &[("authorization", &basic("app-server"))],
    )
    .await;
    assert_eq!(
        r.status(),
        403,
        "token permission is not sessions permission"
    );
    assert_eq!(json(r).await["error"], "access_denied");
    let r = call(
        &h,
        get.clone(),
        &list,
        &[
            ("authorization", &basic("console")),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403, "browsers are refused");

    for path in [
        "/auth/admin/sessions".to_owned(),
        "/auth/admin/sessions?user_id=".to_owned(),
        "/auth/admin/sessions?user_id=%00x".to_owned(),
    ] {
        let r = as_console(&h, get.clone(), &path).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(json(r).await["error"], "invalid_request");
    }
    let r = as_console(
        &h,
        reqwest::Method::DELETE,
        "/auth/admin/sessions/no-such-session",
    )
    .await;
    assert_eq!(r.status(), 404);
    // Nothing was revoked by any of it.
    assert_eq!(b.get("/protected/page").await.status(), 200);
}
