//! "An identity is only what the provider vouches for", through the real HTTP
//! interface: the built-in development provider plays each case (its login
//! form chooses `email_verified`, `hd`, `tid`, `xms_edov`), the gateway runs
//! from a TOML configuration as `authgate serve` does, and an echo upstream
//! shows what reaches the application.
//!
//! - An unverified address (`email_verified: false` or absent) passes no
//!   `allow_emails` / `allow_domains` rule, is not sent as
//!   `X-Auth-Request-Email`, and is not stored.
//! - A verified owner signs in after an unverified squatter (and takes the
//!   address from a user who holds it without verification).
//! - A verified address held by another verified user is refused, or linked
//!   when the provider says `link_by_email = true`.
//! - Google: `allow_domains` needs `hd` (a consumer account with a verified
//!   Workspace-domain address does not pass).
//! - Entra: `common` is refused unless written out; a pinned tenant refuses
//!   other `tid`s; without a pinned tenant only `xms_edov: true` vouches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authgate::app::{App, Migrations};
use authgate_config::Config;
use authgate_devidp::{DevClient, DevIdp, DevIdpConfig};
use authgate_store::NewUser;
use common::*;
use serde_json::Value;
use url::Url;

const CEO: &str = "ceo@corp.example";
const TENANT: &str = "0b0c9a4e-5a6f-4a1e-9d3c-2f1e0d9c8b7a";
const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";

/// A development provider that accepts any loopback redirect, under
/// `base_path`. Access tokens live an hour: these tests are about identity,
/// not refresh. It plays Google's offline access (a refresh token at a
/// user's first consent), as the Google preset expects.
async fn provider(base_path: &str, template: bool) -> DevIdp {
    let mut config = DevIdpConfig::default()
        .with_client(DevClient::new("test", "test-secret").allow_any_loopback_redirect())
        .with_base_path(base_path);
    config.tenant_issuer_template = template;
    config.google_offline_access = true;
    config.access_token_ttl = std::time::Duration::from_secs(3600);
    DevIdp::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// `[[providers]]` entry `id` at `issuer` with extra lines (`preset`, `tenant`, …).
fn provider_toml(id: &str, issuer: &str, extra: &str) -> String {
    format!(
        r#"
[[providers]]
id = "{id}"
issuer = "{issuer}"
client_id = "test"
client_secret = "test-secret"
{extra}
"#
    )
}

/// A gateway configuration in front of `upstream` with allow-listed routes.
fn gateway_toml(public: &Url, upstream: &Url, providers: &str) -> String {
    format!(
        r#"
[server]
public_url = "{public}"
upstream = "{upstream}"
[session]
secret = ["test-secret-at-least-32-chars-long!!"]
[store]
url = "{{db}}"
{providers}
[[routes]]
path = "/admin/**"
access = "protected"
allow_emails = ["{CEO}"]
[[routes]]
path = "/corp/**"
access = "protected"
allow_domains = ["corp.example"]
[[routes]]
path = "/gmail/**"
access = "protected"
allow_domains = ["gmail.com"]
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
    /// A gateway with one provider `op` at a development provider; `extra`
    /// goes into the provider's entry.
    async fn start(extra: &str) -> Stack {
        Self::start_at(provider("", false).await, |issuer| {
            provider_toml("op", issuer, extra)
        })
        .await
    }

    async fn start_at(idp: DevIdp, providers: impl Fn(&str) -> String) -> Stack {
        let (upstream, task) = echo_upstream().await;
        let reserved = reserve().await;
        let toml = gateway_toml(&reserved.url, &upstream, &providers(idp.issuer_str()));
        Stack {
            gw: start(reserved, &toml).await,
            idp,
            _upstream: task,
        }
    }

    fn url(&self, path: &str) -> String {
        self.gw.url.join(path).unwrap().to_string()
    }

    /// Signs in at provider `id` with these login form fields; returns the
    /// browser and the callback's answer (status, `Location` or error code).
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

    async fn session(&self, b: &mut Browser) -> Value {
        b.get(&self.url("/auth/session"))
            .await
            .json()
            .await
            .unwrap()
    }

    async fn status(&self, b: &mut Browser, path: &str) -> u16 {
        b.get(&self.url(path)).await.status().as_u16()
    }

    /// The headers the upstream received for a public page.
    async fn upstream_headers(&self, b: &mut Browser) -> Value {
        let r = b.get(&self.url("/public/page")).await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["headers"].clone()
    }
}

fn fields<'a>(user: &'a str, email: &'a str, verified: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", user),
        ("email", email),
        ("email_verified", verified),
    ]
}

#[tokio::test]
async fn an_unverified_address_passes_no_allow_list_and_is_not_sent_upstream() {
    let s = Stack::start("").await;
    for verified in ["false", "absent"] {
        let mut b = s.signed_in("op", &fields("mallory", CEO, verified)).await;
        let session = s.session(&mut b).await;
        assert_eq!(session["user"]["name"], "mallory");
        assert!(session["user"]["email"].is_null(), "{verified}: {session}");
        assert_eq!(s.status(&mut b, "/admin/users").await, 403, "{verified}");
        assert_eq!(s.status(&mut b, "/corp/wiki").await, 403, "{verified}");
        let headers = s.upstream_headers(&mut b).await;
        assert!(
            headers.get("x-auth-request-user").is_some(),
            "still signed in: {headers}"
        );
        assert!(
            headers.get("x-auth-request-email").is_none(),
            "{verified}: nothing is sent for an unverified address: {headers}"
        );
        assert!(
            s.gw.store.find_user_by_email(CEO).await.unwrap().is_none(),
            "{verified}: the address is not stored"
        );
    }

    // The same address, vouched for, passes both rules and goes upstream.
    let mut b = s.signed_in("op", &fields("ceo", CEO, "true")).await;
    assert_eq!(s.status(&mut b, "/admin/users").await, 200);
    assert_eq!(s.status(&mut b, "/corp/wiki").await, 200);
    let headers = s.upstream_headers(&mut b).await;
    assert_eq!(headers["x-auth-request-email"][0], CEO);
    let stored = s.gw.store.find_user_by_email(CEO).await.unwrap().unwrap();
    assert!(stored.email_verified.is_some(), "stored as verified");
    assert_eq!(s.idp.stats().code_grants, 3);
}

#[tokio::test]
async fn a_verified_owner_signs_in_after_an_unverified_squatter() {
    let s = Stack::start("").await;
    // The squatter signs in first with the owner's address, unverified.
    let mut squatter = s.signed_in("op", &fields("mallory", CEO, "absent")).await;
    // The owner is not locked out (this was OAuthAccountNotLinked).
    let mut owner = s.signed_in("op", &fields("ceo", CEO, "true")).await;
    let session = s.session(&mut owner).await;
    assert_eq!(session["user"]["email"], CEO);
    assert_eq!(s.status(&mut owner, "/admin/users").await, 200);
    // The squatter got nothing from it.
    assert!(s.session(&mut squatter).await["user"]["email"].is_null());
    assert_eq!(s.status(&mut squatter, "/admin/users").await, 403);
    // Signing in again with the unverified address takes nothing away.
    let mut again = s.signed_in("op", &fields("mallory", CEO, "absent")).await;
    assert!(s.session(&mut again).await["user"]["email"].is_null());
    let holder = s.gw.store.find_user_by_email(CEO).await.unwrap().unwrap();
    assert_eq!(
        session["user"]["id"],
        holder.id.as_str(),
        "the owner holds it"
    );
}

#[tokio::test]
async fn an_address_held_without_verification_is_released_to_its_verified_owner() {
    let s = Stack::start("").await;
    // A user stored before verification was enforced (or by another app).
    let legacy =
        s.gw.store
            .create_user(NewUser {
                name: Some("Legacy".into()),
                email: Some(CEO.into()),
                email_verified: None,
                image: None,
            })
            .await
            .unwrap();
    let mut owner = s.signed_in("op", &fields("ceo", CEO, "true")).await;
    assert_eq!(s.session(&mut owner).await["user"]["email"], CEO);
    let legacy = s.gw.store.find_user(&legacy.id).await.unwrap().unwrap();
    assert_eq!(legacy.email, None, "released");
    assert_eq!(
        legacy.name.as_deref(),
        Some("Legacy"),
        "nothing else changed"
    );
}

#[tokio::test]
async fn a_verified_address_of_another_user_is_refused_or_linked_when_the_provider_links() {
    let idp = provider("", false).await;
    let s = Stack::start_at(idp, |issuer| {
        provider_toml("op", issuer, "") + &provider_toml("linking", issuer, "link_by_email = true")
    })
    .await;
    let mut first = s.signed_in("op", &fields("ann", CEO, "true")).await;
    let user = s.session(&mut first).await["user"]["id"].clone();
    // Another account at a provider that does not link: refused, as before.
    let (_, status, code) = s.sign_in("op", &fields("ann-2", CEO, "true")).await;
    assert_eq!((status, code.as_str()), (409, "OAuthAccountNotLinked"));
    // At a provider that links by e-mail: the same user.
    let mut linked = s.signed_in("linking", &fields("ann-3", CEO, "true")).await;
    assert_eq!(s.session(&mut linked).await["user"]["id"], user);
    // An unverified claim to the address never links.
    let mut other = s.signed_in("linking", &fields("ann-4", CEO, "false")).await;
    let session = s.session(&mut other).await;
    assert_ne!(session["user"]["id"], user);
    assert!(session["user"]["email"].is_null());
}

#[tokio::test]
async fn google_domain_rules_need_the_hosted_domain() {
    let s = Stack::start("preset = \"google\"").await;
    // A consumer Google account registered with a Workspace-domain address:
    // verified once, but Google is not authoritative for it.
    let mut consumer = s.signed_in("op", &fields("c1", CEO, "true")).await;
    assert!(s.session(&mut consumer).await["user"]["email"].is_null());
    assert_eq!(s.status(&mut consumer, "/corp/wiki").await, 403);
    assert_eq!(s.status(&mut consumer, "/admin/users").await, 403);
    assert!(
        s.upstream_headers(&mut consumer)
            .await
            .get("x-auth-request-email")
            .is_none()
    );
    // The Workspace account of that domain (`hd` matches) passes.
    let mut workspace = fields("w1", CEO, "true");
    workspace.push(("hd", "corp.example"));
    let mut member = s.signed_in("op", &workspace).await;
    assert_eq!(s.status(&mut member, "/corp/wiki").await, 200);
    assert_eq!(s.status(&mut member, "/admin/users").await, 200);
    // Another organisation's `hd` does not vouch for this domain.
    let mut foreign = fields("f1", "x@corp.example", "true");
    foreign.push(("hd", "other.example"));
    let mut outsider = s.signed_in("op", &foreign).await;
    assert_eq!(s.status(&mut outsider, "/corp/wiki").await, 403);
    // Gmail addresses are Google's own.
    let mut gmail = s
        .signed_in("op", &fields("g1", "una@gmail.com", "true"))
        .await;
    assert_eq!(
        s.session(&mut gmail).await["user"]["email"],
        "una@gmail.com"
    );
    assert_eq!(s.status(&mut gmail, "/gmail/inbox").await, 200);
    assert_eq!(s.status(&mut gmail, "/corp/wiki").await, 403);
}

/// Builds a gateway from `toml`, returning the start error if any.
async fn build(toml: &str) -> Result<App, String> {
    let db = tempfile::tempdir().unwrap();
    let toml = toml.replace(
        "{db}",
        &format!("sqlite://{}", db.path().join("a.db").display()),
    );
    let config = Config::from_sources(Some(("test.toml", &toml)), std::iter::empty())
        .map_err(|e| e.to_string())?;
    App::build(&config, Migrations::Apply)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn entra_common_is_refused_unless_the_tenant_is_written_out() {
    let idp = provider("/common/v2.0", true).await;
    let (upstream, _task) = echo_upstream().await;
    let public = Url::parse("http://127.0.0.1:9").unwrap();
    let entra = |tenant: &str| {
        gateway_toml(
            &public,
            &upstream,
            &provider_toml(
                "entra",
                idp.issuer_str(),
                &format!("preset = \"microsoft-entra-id\"\n{tenant}"),
            ),
        )
    };
    let error = build(&entra("")).await.err().expect("common is refused");
    assert!(error.contains("tenant = \"common\""), "{error}");
    // Naming one tenant while pointing at `common` is a contradiction.
    let error = build(&entra(&format!("tenant = \"{TENANT}\"")))
        .await
        .err()
        .expect("tenant and issuer disagree");
    assert!(error.contains("does not match"), "{error}");
    build(&entra("tenant = \"common\""))
        .await
        .expect("explicit common starts");
}

#[tokio::test]
async fn entra_common_vouches_only_with_xms_edov() {
    let idp = provider("/common/v2.0", true).await;
    let s = Stack::start_at(idp, |issuer| {
        provider_toml(
            "entra",
            issuer,
            "preset = \"microsoft-entra-id\"\ntenant = \"common\"",
        )
    })
    .await;
    // Entra sends no email_verified; anyone's directory can set any address.
    let mut anyone = fields("m1", CEO, "absent");
    anyone.push(("tid", OTHER_TENANT));
    let mut b = s.signed_in("entra", &anyone).await;
    assert!(s.session(&mut b).await["user"]["email"].is_null());
    assert_eq!(s.status(&mut b, "/corp/wiki").await, 403);
    // The domain owner verified by the user's tenant: vouched.
    let mut owner = fields("o1", CEO, "absent");
    owner.extend([("tid", TENANT), ("xms_edov", "true")]);
    let mut b = s.signed_in("entra", &owner).await;
    assert_eq!(s.session(&mut b).await["user"]["email"], CEO);
    assert_eq!(s.status(&mut b, "/corp/wiki").await, 200);
    // Without a tid the issuer template cannot be filled: refused.
    let (_, status, code) = s.sign_in("entra", &fields("n1", CEO, "absent")).await;
    assert_eq!((status, code.as_str()), (400, "InvalidIdToken"));
}

#[tokio::test]
async fn entra_pinned_to_a_tenant_refuses_other_tids_and_its_directory_vouches() {
    let idp = provider(&format!("/{TENANT}/v2.0"), false).await;
    let s = Stack::start_at(idp, |issuer| {
        provider_toml("entra", issuer, "preset = \"microsoft-entra-id\"")
    })
    .await;
    // A token of another directory at the same issuer: refused, nothing stored.
    let mut foreign = fields("m1", CEO, "absent");
    foreign.push(("tid", OTHER_TENANT));
    let (b, status, code) = s.sign_in("entra", &foreign).await;
    assert_eq!((status, code.as_str()), (400, "InvalidIdToken"));
    assert!(!b.cookies.contains_key("authjs.session-token"));
    assert!(
        s.gw.store
            .find_account_by_provider("entra", "m1")
            .await
            .unwrap()
            .is_none()
    );
    // The pinned directory's own users: its administrators vouch.
    let mut member = fields("e1", CEO, "absent");
    member.push(("tid", TENANT));
    let mut b = s.signed_in("entra", &member).await;
    assert_eq!(s.session(&mut b).await["user"]["email"], CEO);
    assert_eq!(s.status(&mut b, "/admin/users").await, 200);
    // …unless the token says the domain owner is not verified.
    let mut unowned = fields("e2", "x@corp.example", "absent");
    unowned.extend([("tid", TENANT), ("xms_edov", "false")]);
    let mut b = s.signed_in("entra", &unowned).await;
    assert!(s.session(&mut b).await["user"]["email"].is_null());
}

#[tokio::test]
async fn a_returning_user_keeps_only_what_the_provider_still_vouches_for() {
    let s = Stack::start("").await;
    let mut b = s.signed_in("op", &fields("zoe", CEO, "true")).await;
    assert_eq!(s.status(&mut b, "/admin/users").await, 200);
    // The provider no longer vouches for the address: it goes, everywhere.
    let mut b = s.signed_in("op", &fields("zoe", CEO, "false")).await;
    assert!(s.session(&mut b).await["user"]["email"].is_null());
    assert_eq!(s.status(&mut b, "/admin/users").await, 403);
    assert!(s.gw.store.find_user_by_email(CEO).await.unwrap().is_none());
    // Vouched for again: back.
    let mut b = s.signed_in("op", &fields("zoe", CEO, "true")).await;
    assert_eq!(s.session(&mut b).await["user"]["email"], CEO);
    assert_eq!(s.status(&mut b, "/admin/users").await, 200);
}
