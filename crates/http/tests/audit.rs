//! Audit events through the real HTTP interface: one `authgate::audit` line
//! per sign-in (new, returning), refused sign-in, sign-out, session ended by
//! `RefreshTokenError` and route refusal, each carrying the request id the
//! response names, and none carrying token material.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_core::token::TokenSet;
use authgate_http::{Access, AllowList, RouteRule, RouteRules};
use common::{
    Browser, Options, captured_logs, location, log_in_at_provider, revoke_at_provider, sign_in,
    start, stored_tokens, user_id,
};
use serde_json::Value;

/// The audit lines logged for the request with `request_id`.
fn audit_lines(request_id: &str) -> Vec<Value> {
    let text = String::from_utf8(captured_logs().lock().unwrap().clone()).unwrap();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "authgate::audit")
        .filter(|line| line["fields"]["request_id"] == request_id)
        .map(|line| line["fields"].clone())
        .collect()
}

/// The one audit event of the request answered by `response`.
fn event_of(response: &reqwest::Response) -> Value {
    let request_id = response.headers()["x-request-id"].to_str().unwrap();
    let lines = audit_lines(request_id);
    assert_eq!(lines.len(), 1, "one audit line for {request_id}: {lines:?}");
    lines[0].clone()
}

/// Signs `user` in with `b` and returns the callback's audit event.
async fn sign_in_event(h: &common::Harness, b: &mut Browser, user: &str) -> Value {
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    let r = log_in_at_provider(h, b, &location(&r), user).await;
    assert_eq!(r.status(), 302);
    event_of(&r)
}

fn assert_no_token_material(tokens: &TokenSet) {
    let text = String::from_utf8(captured_logs().lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"authgate::audit\""))
        .collect();
    for secret in [
        Some(tokens.access_token.expose()),
        tokens.refresh_token.as_ref().map(|t| t.expose()),
        tokens.id_token.as_ref().map(|t| t.expose()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            !audit.iter().any(|l| l.contains(secret)),
            "an audit line carries token material"
        );
    }
}

#[tokio::test]
async fn sign_ins_are_audited_as_new_then_returning_with_the_request_id() {
    captured_logs();
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let first = sign_in_event(&h, &mut b, "audit-ann").await;
    let user = user_id(&mut b).await;
    assert_eq!(first["message"], "signin");
    assert_eq!(first["kind"], "new");
    assert_eq!(first["provider"], common::PROVIDER);
    assert_eq!(first["user"], user.as_str());
    let mut again = Browser::new(&h);
    let second = sign_in_event(&h, &mut again, "audit-ann").await;
    assert_eq!(second["kind"], "returning");
    assert_eq!(second["user"], user.as_str());
    assert_no_token_material(&stored_tokens(&h, &user).await.unwrap());
}

#[tokio::test]
async fn a_callback_with_a_forged_state_is_audited_as_a_refused_sign_in() {
    captured_logs();
    let h = start(Options::default()).await;
    let mut b = Browser::new(&h);
    let r = b.get("/auth/signin/dev?callbackUrl=%2Fdone").await;
    let callback = common::log_in_at_provider_until_callback(&h, &mut b, &location(&r), "eve")
        .await
        .replace("state=", "state=forged");
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 400);
    let event = event_of(&r);
    assert_eq!(event["message"], "signin_refused");
    assert_eq!(event["provider"], common::PROVIDER);
    assert_eq!(event["reason"], "InvalidState");
    // Without the browser's check cookies: the attempt is unknown.
    let r = Browser::new(&h).get(&callback).await;
    assert_eq!(event_of(&r)["reason"], "InvalidCheck");
}

#[tokio::test]
async fn a_sign_out_is_audited_with_the_user() {
    captured_logs();
    let h = start(Options::default()).await;
    let mut b = sign_in(&h, "audit-bob").await;
    let user = user_id(&mut b).await;
    let csrf = b.csrf().await;
    let r = b
        .post_form("/auth/signout", &[("csrfToken", csrf.as_str())], &[])
        .await;
    assert_eq!(r.status(), 302);
    let event = event_of(&r);
    assert_eq!(event["message"], "signout");
    assert_eq!(event["via"], "user");
    assert_eq!(event["user"], user.as_str());
}

#[tokio::test]
async fn a_grant_revoked_at_the_provider_is_audited_as_a_session_ended() {
    captured_logs();
    let h = start(Options {
        upstream: true,
        ..Options::default().always_stale()
    })
    .await;
    let mut b = sign_in(&h, "audit-cy").await;
    let user = user_id(&mut b).await;
    let stored = stored_tokens(&h, &user).await.unwrap();
    revoke_at_provider(&h, stored.refresh_token.as_ref().unwrap().expose()).await;
    let r = b.get("/api/anything").await;
    assert_eq!(r.status(), 401);
    let event = event_of(&r);
    assert_eq!(event["message"], "session_ended");
    assert_eq!(event["user"], user.as_str());
    assert_eq!(event["provider"], common::PROVIDER);
    assert_eq!(event["reason"], "RefreshTokenError");
    // The session learnt it once: its next requests add no event.
    let r = b.get("/api/anything").await;
    assert_eq!(r.status(), 401);
    let request_id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(audit_lines(request_id).is_empty());
    assert_no_token_material(&stored);
}

#[tokio::test]
async fn a_user_refused_by_a_routes_allow_list_is_audited_with_the_rule_method_and_path() {
    captured_logs();
    let staff = AllowList {
        emails: vec!["someone-else@example.com".into()],
        ..AllowList::default()
    };
    let h = start(Options {
        upstream: true,
        routes: Some(
            RouteRules::new(vec![
                RouteRule::new("/staff/**", Access::Protected).with_allow(staff),
                RouteRule::new("/**", Access::Protected),
            ])
            .unwrap(),
        ),
        ..Options::default()
    })
    .await;
    let mut b = sign_in(&h, "audit-dan").await;
    let user = user_id(&mut b).await;
    let r = b.get("/STAFF/reports?q=secret").await;
    assert_eq!(r.status(), 403);
    let event = event_of(&r);
    assert_eq!(event["message"], "access_denied");
    assert_eq!(event["user"], user.as_str());
    assert_eq!(event["rule"], "/staff/**");
    assert_eq!(event["method"], "GET");
    assert_eq!(
        event["path"], "/STAFF/reports",
        "the path as judged, without its query"
    );
    // A route the user may use: no event.
    let r = b.get("/elsewhere").await;
    let request_id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(audit_lines(request_id).is_empty());
}
