//! `[session] cookie_domain` and `[server] allowed_redirect_hosts`: what is
//! accepted, how it is normalised, and the errors for the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use authgate_config::{Config, ConfigError};

fn load(toml: &str) -> Result<Config, ConfigError> {
    Config::from_sources(Some(("authgate.toml", toml)), Vec::new())
}

fn with(public_url: &str, session: &str, server: &str) -> String {
    format!(
        "[server]\npublic_url = \"{public_url}\"\n{server}\n[session]\nsecret = \"test-secret-at-least-32-chars-long!!\"\n{session}\n"
    )
}

fn problems(toml: &str) -> Vec<(String, String)> {
    match load(toml) {
        Ok(c) => panic!(
            "expected an error, got {:?} {:?}",
            c.session.cookie_domain, c.server.allowed_redirect_hosts
        ),
        Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| (p.key, p.message)).collect(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_cookie_domain_is_lower_cased_and_loses_a_leading_dot() {
    for (written, kept) in [
        ("example.com", "example.com"),
        (".Example.COM", "example.com"),
        ("sso.example.co.uk", "sso.example.co.uk"),
    ] {
        let c = load(&with(
            "https://app.sso.example.co.uk",
            &format!("cookie_domain = \"{written}\""),
            "",
        ));
        let c = match c {
            Ok(c) => c,
            Err(_) => load(&with(
                "https://app.example.com",
                &format!("cookie_domain = \"{written}\""),
                "",
            ))
            .unwrap(),
        };
        assert_eq!(c.session.cookie_domain.as_deref(), Some(kept), "{written}");
    }
    let c = load(&with(
        "https://example.com",
        "cookie_domain = \"example.com\"",
        "",
    ))
    .unwrap();
    assert_eq!(c.session.cookie_domain.as_deref(), Some("example.com"));
}

#[test]
fn a_cookie_domain_that_is_not_a_registrable_looking_name_is_refused() {
    for bad in [
        "https://example.com",
        "example.com:443",
        "example.com/",
        "example.com.",
        "..example.com",
        "com",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "::1",
        "exa mple.com",
        "-example.com",
        "exämple.com",
        "*.example.com",
        "example.123",
        "",
    ] {
        let p = problems(&with(
            "https://app.example.com",
            &format!("cookie_domain = \"{bad}\""),
            "",
        ));
        assert!(
            p.iter().any(|(k, _)| k == "session.cookie_domain"),
            "{bad:?}: {p:?}"
        );
    }
}

#[test]
fn public_url_must_be_on_the_cookie_domain_label_by_label() {
    for public in [
        "https://evil-example.com",
        "https://example.com.evil.net",
        "https://notexample.com",
        "https://127.0.0.1:4180",
    ] {
        let p = problems(&with(public, "cookie_domain = \"example.com\"", ""));
        let (_, message) = p
            .iter()
            .find(|(k, _)| k == "session.cookie_domain")
            .unwrap_or_else(|| panic!("{public}: {p:?}"));
        assert!(message.contains("public_url"), "{message}");
    }
    for public in [
        "https://example.com",
        "https://auth.example.com",
        "https://a.b.example.com:8443",
    ] {
        load(&with(public, "cookie_domain = \"example.com\"", "")).unwrap();
    }
}

#[test]
fn allowed_redirect_hosts_are_exact_hosts_with_an_optional_port() {
    let c = load(&with(
        "https://auth.example.com",
        "",
        "allowed_redirect_hosts = [\"Admin.Example.com\", \"app.example.com:8443\", \"127.0.0.1:9001\"]",
    ))
    .unwrap();
    assert_eq!(
        c.server.allowed_redirect_hosts,
        [
            "admin.example.com",
            "app.example.com:8443",
            "127.0.0.1:9001"
        ]
    );
    for bad in [
        "https://admin.example.com",
        "admin.example.com/",
        "*.example.com",
        ".example.com",
        "admin.example.com.",
        "user@admin.example.com",
        "admin%2eexample.com",
        "admin.example.com:99999",
        "exämple.com",
        "",
    ] {
        let p = problems(&with(
            "https://auth.example.com",
            "",
            &format!("allowed_redirect_hosts = [\"{bad}\"]"),
        ));
        assert!(
            p.iter()
                .any(|(k, _)| k == "server.allowed_redirect_hosts[0]"),
            "{bad:?}: {p:?}"
        );
    }
}

const UPSTREAMS: &str = r#"
[server]
public_url = "https://auth.example.com"
pass_access_token = true

[session]
secret = "test-secret-at-least-32-chars-long!!"
cookie_domain = "example.com"

[[upstreams]]
host = "App.Example.com"
url = "http://127.0.0.1:9001"

[[upstreams]]
host = "admin.example.com:8443"
path_prefix = "/console"
url = "http://127.0.0.1:9002"
pass_access_token = false
preserve_host = true

[[upstreams.routes]]
path = "/console/**"
access = "protected"
allow_domains = ["Example.com"]
"#;

#[test]
fn upstreams_are_read_with_their_own_routes_and_options() {
    let c = load(UPSTREAMS).unwrap();
    assert_eq!(c.upstreams.len(), 2);
    assert_eq!(c.upstreams[0].host, "app.example.com");
    assert!(c.upstreams[0].routes.is_empty());
    let admin = &c.upstreams[1];
    assert_eq!(admin.host, "admin.example.com:8443");
    assert_eq!(admin.path_prefix.as_deref(), Some("/console"));
    assert_eq!(admin.pass_access_token, Some(false));
    assert_eq!(admin.preserve_host, Some(true));
    assert_eq!(admin.routes[0].allow_domains, ["example.com"]);
    assert!(
        c.redacted_summary()
            .contains("[[upstreams]] admin.example.com:8443/console")
    );
}

#[test]
fn upstream_mistakes_are_named() {
    let cases = [
        (
            UPSTREAMS.replace(
                "[[upstreams]]\nhost = \"App",
                "[[upstreams]]\nhost = \"https://App",
            ),
            "upstreams[0].host",
        ),
        (
            UPSTREAMS.replace("path_prefix = \"/console\"", "path_prefix = \"/console/\""),
            "upstreams[1].path_prefix",
        ),
        (
            UPSTREAMS.replace("path_prefix = \"/console\"", "path_prefix = \"/a/../b\""),
            "upstreams[1].path_prefix",
        ),
        (
            UPSTREAMS
                .replace("pass_access_token = true\n", "")
                .replace("pass_access_token = false", "pass_access_token = true"),
            "upstreams[1].pass_access_token",
        ),
        (
            UPSTREAMS.replace(
                "pass_access_token = true\n",
                "pass_access_token = true\nupstream = \"http://127.0.0.1:9\"\n",
            ),
            "server.upstream",
        ),
        (
            UPSTREAMS
                .replace("admin.example.com:8443", "app.example.com")
                .replace("path_prefix = \"/console\"\n", ""),
            "upstreams[1].host",
        ),
        (
            UPSTREAMS.replace(
                "url = \"http://127.0.0.1:9001\"",
                "url = \"ftp://127.0.0.1:9001\"",
            ),
            "upstreams[0].url",
        ),
        (
            UPSTREAMS.replace("path = \"/console/**\"", "path = \"console\""),
            "upstreams[1].routes[0].path",
        ),
    ];
    for (toml, key) in cases {
        let p = problems(&toml);
        assert!(p.iter().any(|(k, _)| k == key), "{key}: {p:?}");
    }
}
