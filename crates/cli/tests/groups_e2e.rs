//! Groups, roles and claims per route, through the real gateway (`authgate serve`'s
//! configuration, an echo upstream): the built-in development provider gives a user groups
//! and roles (its login form's `groups` / `roles`, also Keycloak's nested
//! `realm_access.roles`), and plays Entra's groups overage.
//!
//! - `allow_groups`, `allow_roles`, `allow_claims` (a nested claim), each alone and together
//!   (all of across kinds, any of within one), for a generic OpenID Connect provider and the
//!   Keycloak preset (roles from `realm_access.roles`), and `groups_claim` pointing elsewhere.
//! - `X-Auth-Request-Groups` / `-Preferred-Username` reach the upstream and `/auth/verify`'s
//!   answer; a client's own copies (any spelling) never do.
//! - A user removed from a group at the provider loses access at the next refresh (JWT
//!   and database sessions).
//! - Entra's groups overage (`_claim_names`) refuses the sign-in with `GroupsOverage`.
//! - Google: the Workspace domain (`hd`) is a group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use common::*;
use serde_json::Value;
use std::time::Duration;
use url::Url;

const TENANT: &str = "0b0c9a4e-5a6f-4a1e-9d3c-2f1e0d9c8b7a";

async fn provider(base_path: &str, access_ttl: Duration) -> DevIdp {
    let mut config = DevIdpConfig::default()
        .with_client(DevClient::new("test", "test-secret").allow_any_loopback_redirect())
        .with_base_path(base_path);
    config.access_token_ttl = access_ttl;
    // Google's offline access (a refresh token at first consent), for the google preset.
    config.google_offline_access = true;
    DevIdp::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn gateway_toml(public: &Url, upstream: &Url, issuer: &str, session: &str, extra: &str) -> String {
    format!(
        r#"
[server]
public_url = "{public}"
upstream = "{upstream}"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
{session}
[refresh]
skew = "10s"
[store]
url = "{{db}}"
[[providers]]
id = "op"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
scopes = ["openid", "email", "profile", "offline_access"]
[[providers]]
id = "kc"
preset = "keycloak"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
[[providers]]
id = "custom"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
groups_claim = "realm_access.roles"
roles_claim = "nothing.here"
[[providers]]
id = "google"
preset = "google"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
{extra}
[[routes]]
path = "/corp/**"
access = "protected"
allow_groups = ["corp.example"]
[[routes]]
path = "/staff/**"
access = "protected"
allow_groups = ["staff", "contractors"]
[[routes]]
path = "/admin/**"
access = "api"
allow_roles = ["admin"]
[[routes]]
path = "/ops/**"
access = "protected"
allow_claims = [{{ claim = "realm_access.roles", values = ["ops"] }}]
[[routes]]
path = "/board/**"
access = "protected"
allow_groups = ["staff"]
allow_roles = ["admin"]
allow_domains = ["example.com"]
[[routes]]
path = "/**"
access = "public"
"#,
        public = public.as_str().trim_end_matches('/'),
        upstream = upstream.as_str().trim_end_matches('/'),
    )
}

struct Stack {
    gw: Gateway,
    idp: DevIdp,
    _upstream: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn start(idp: DevIdp, extra: &str) -> Stack {
        Self::start_with(idp, "", extra).await
    }

    /// With extra `[session]` lines (`strategy = "database"`).
    async fn start_with(idp: DevIdp, session: &str, extra: &str) -> Stack {
        let (upstream, task) = echo_upstream().await;
        let reserved = reserve().await;
        let toml = gateway_toml(&reserved.url, &upstream, idp.issuer_str(), session, extra);
        Stack {
            gw: start(reserved, &toml).await,
            idp,
            _upstream: task,
        }
    }

    fn url(&self, path: &str) -> String {
        self.gw.url.join(path).unwrap().to_string()
    }

    /// Signs in at provider `id` with these login-form fields: the browser and the
    /// callback's answer (status, `Location` or error code).
    async fn sign_in(&self, id: &str, fields: &[(&str, &str)]) -> (Browser, u16, String) {
        let mut b = Browser::new();
        let r = b
            .get(&self.url(&format!("/auth/signin/{id}?callbackUrl=/home")))
            .await;
        assert_eq!(r.status(), 302, "sign-in start");
        let callback =
            authgate_testkit::login_with_dev_provider_fields(&location(&r), fields).await;
        let r = b
            .client
            .get(&callback)
            .header(reqwest::header::COOKIE, b.cookie_header())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        b.absorb(&r);
        let status = r.status().as_u16();
        let outcome = if status == 302 {
            location(&r)
        } else {
            let body: Value = r.json().await.unwrap_or_default();
            body["error"].as_str().unwrap_or_default().to_owned()
        };
        (b, status, outcome)
    }

    async fn signed_in(&self, id: &str, fields: &[(&str, &str)]) -> Browser {
        let (b, status, outcome) = self.sign_in(id, fields).await;
        assert_eq!((status, outcome.as_str()), (302, "/home"), "{fields:?}");
        b
    }

    async fn status(&self, b: &mut Browser, path: &str) -> u16 {
        b.get(&self.url(path)).await.status().as_u16()
    }

    /// The statuses of the four restricted routes, in order: staff, admin, ops, board.
    async fn statuses(&self, b: &mut Browser) -> [u16; 4] {
        let mut out = [0; 4];
        for (i, path) in ["/staff/x", "/admin/x", "/ops/x", "/board/x"]
            .into_iter()
            .enumerate()
        {
            out[i] = self.status(b, path).await;
        }
        out
    }
}

fn user<'a>(name: &'a str, groups: &'a str, roles: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("username", name), ("groups", groups), ("roles", roles)]
}

#[tokio::test]
async fn each_rule_kind_admits_only_its_members_and_kinds_combine_as_all_of() {
    let s = Stack::start(provider("", Duration::from_secs(3600)).await, "").await;
    // Generic OpenID Connect: `groups` and `roles` claims; `realm_access.roles` by claim.
    #[rustfmt::skip]
    let table: [(&str, &str, &str, [u16; 4]); 6] = [
        //  user      groups               roles         staff admin ops  board
        ("ann",   "staff,ops-team",    "admin,ops",  [200,  200,  200, 200]),
        ("bob",   "contractors",       "",           [200,  403,  403, 403]),
        ("cid",   "",                  "admin",      [403,  200,  403, 403]),
        ("dee",   "",                  "ops",        [403,  403,  200, 403]),
        ("eve",   "Staff",             "Admin",      [403,  403,  403, 403]),
        ("fay",   "",                  "",           [403,  403,  403, 403]),
    ];
    for (name, groups, roles, expected) in table {
        let mut b = s.signed_in("op", &user(name, groups, roles)).await;
        assert_eq!(s.statuses(&mut b).await, expected, "{name}");
    }
    // All of across kinds: groups and roles, but an address outside the domain.
    let mut fields = user("gus", "staff", "admin");
    fields.push(("email", "gus@elsewhere.example"));
    let mut b = s.signed_in("op", &fields).await;
    assert_eq!(s.statuses(&mut b).await, [200, 200, 403, 403]);
}

#[tokio::test]
async fn presets_and_groups_claim_decide_where_groups_and_roles_come_from() {
    let s = Stack::start(provider("", Duration::from_secs(3600)).await, "").await;
    // Keycloak: roles from `realm_access.roles` (the devidp puts them there too).
    let mut b = s.signed_in("kc", &user("kim", "staff", "admin")).await;
    assert_eq!(s.statuses(&mut b).await, [200, 200, 403, 200]);
    // `groups_claim = "realm_access.roles"`: the roles become groups; `roles_claim`
    // points at nothing, so no role.
    let mut b = s.signed_in("custom", &user("cal", "", "staff")).await;
    assert_eq!(s.statuses(&mut b).await, [200, 403, 403, 403]);
}

#[tokio::test]
async fn google_workspace_domain_is_a_group() {
    let s = Stack::start(provider("", Duration::from_secs(3600)).await, "").await;
    let mut member = user("wanda", "", "");
    member.extend([("email", "wanda@corp.example"), ("hd", "corp.example")]);
    let mut b = s.signed_in("google", &member).await;
    assert_eq!(s.status(&mut b, "/corp/wiki").await, 200);
    let seen: Value = b.get(&s.url("/page")).await.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-auth-request-groups"],
        serde_json::json!(["corp.example"])
    );
    // A consumer account (no `hd`) is in no Workspace.
    let mut consumer = user("carl", "", "");
    consumer.push(("email", "carl@gmail.com"));
    let mut b = s.signed_in("google", &consumer).await;
    assert_eq!(s.status(&mut b, "/corp/wiki").await, 403);
}

#[tokio::test]
async fn groups_and_preferred_username_reach_the_upstream_and_verify_and_client_copies_never_do() {
    let s = Stack::start(provider("", Duration::from_secs(3600)).await, "").await;
    let forged = [
        ("X-Auth-Request-Groups", "admins"),
        ("x_auth_request_groups", "admins"),
        ("X-Auth-Request-Preferred-Username", "root"),
        ("X-Forwarded-Groups", "admins"),
    ];
    let send = |b: &Browser, path: &str| {
        let mut r = b
            .client
            .get(s.url(path))
            .header(reqwest::header::COOKIE, b.cookie_header());
        for (name, value) in forged {
            r = r.header(name, value);
        }
        r.send()
    };
    // Anonymous on a public page: nothing of the client's copies.
    let anonymous = Browser::new();
    let seen: Value = send(&anonymous, "/page")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (name, _) in forged {
        let name = name.to_ascii_lowercase();
        assert!(seen["headers"].get(&name).is_none(), "{name}: {seen}");
    }
    // Signed in: the provider's groups, comma-separated, and the preferred user name.
    let b = s
        .signed_in("op", &user("ann", "staff, ops-team, Équipe", ""))
        .await;
    let r = send(&b, "/staff/page").await.unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(
        h["x-auth-request-groups"],
        serde_json::json!(["staff,ops-team"])
    );
    assert_eq!(
        h["x-auth-request-preferred-username"],
        serde_json::json!(["ann"])
    );
    for name in ["x_auth_request_groups", "x-forwarded-groups"] {
        assert!(h.get(name).is_none(), "{name}: {seen}");
    }
    // A forged header never admits: bob has no group.
    let bob = s.signed_in("op", &user("bob", "", "")).await;
    assert_eq!(send(&bob, "/staff/page").await.unwrap().status(), 403);
    // Forward auth: the same headers in /auth/verify's answer.
    let r = b
        .client
        .get(s.url("/auth/verify"))
        .header("X-Original-URI", "/staff/page")
        .header(reqwest::header::COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-auth-request-groups"], "staff,ops-team");
    assert_eq!(r.headers()["x-auth-request-preferred-username"], "ann");
    let r = bob
        .client
        .get(s.url("/auth/verify"))
        .header("X-Original-URI", "/staff/page")
        .header(reqwest::header::COOKIE, bob.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_user_removed_from_a_group_loses_access_at_the_next_refresh() {
    removed_from_a_group("").await;
}

#[tokio::test]
async fn a_database_session_loses_a_removed_group_at_the_next_refresh_too() {
    removed_from_a_group("strategy = \"database\"").await;
}

async fn removed_from_a_group(session: &str) {
    // Access tokens live 1 s and the skew is 10 s: every request refreshes.
    let idp = provider("", Duration::from_secs(1)).await;
    let s = Stack::start_with(idp, session, "").await;
    let mut b = s.signed_in("op", &user("ann", "staff", "admin")).await;
    assert_eq!(s.status(&mut b, "/staff/x").await, 200);
    let changed = s.idp.state().set_membership("ann", &["alumni"], &[]);
    assert_eq!(changed, 1);
    // The refresh's ID token says the user is no longer staff.
    assert_eq!(s.status(&mut b, "/staff/x").await, 403);
    assert_eq!(s.status(&mut b, "/admin/x").await, 403);
    let r = b.get(&s.url("/page")).await;
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-auth-request-groups"],
        serde_json::json!(["alumni"])
    );
    // And back in: access returns at the next refresh.
    s.idp.state().set_membership("ann", &["staff"], &[]);
    assert_eq!(s.status(&mut b, "/staff/x").await, 200);
}

#[tokio::test]
async fn entra_groups_overage_refuses_the_sign_in_clearly() {
    let idp = provider(&format!("/{TENANT}/v2.0"), Duration::from_secs(3600)).await;
    let issuer = idp.issuer_str().to_owned();
    let s = Stack::start(
        idp,
        &format!(
            "[[providers]]\nid = \"entra\"\npreset = \"microsoft-entra-id\"\nissuer = \"{issuer}\"\nclient_id = \"test\"\nclient_secret = \"test-secret\"\n"
        ),
    )
    .await;
    let mut member = user("m1", "staff", "admin");
    member.push(("tid", TENANT));
    let mut b = s.signed_in("entra", &member).await;
    assert_eq!(
        s.status(&mut b, "/staff/x").await,
        200,
        "Entra's groups claim"
    );
    assert_eq!(
        s.status(&mut b, "/admin/x").await,
        200,
        "Entra's roles claim"
    );
    let mut overage = member.clone();
    overage.push(("groups_overage", "true"));
    let (_, status, code) = s.sign_in("entra", &overage).await;
    assert_eq!((status, code.as_str()), (403, "GroupsOverage"));
}
