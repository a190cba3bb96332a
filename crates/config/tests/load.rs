//! Loading behaviour: the canonical config, environment overrides, and error messages
//! that name the key, its source, and what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::net::SocketAddr;
use std::time::Duration;

use authgate_config::{
    Config, ConfigError, CookieFormat, DEFAULT_SERVICE_RATE_LIMIT, Origin, ProviderPreset,
    RefreshMode, RouteAccess, ServicePermission, SessionStrategy,
};

const CANONICAL: &str = include_str!("../../../examples/authgate.toml");
const CANONICAL_NAME: &str = "examples/authgate.toml";
const SECRET: &str = "test-secret-at-least-32-chars-long!!";
const OTHER_SECRET: &str = "another-secret-that-is-32-bytes-long";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(Some(("authgate.toml", toml)), env(vars))
}

fn load_err(toml: &str, vars: &[(&str, &str)]) -> ConfigError {
    match load(toml, vars) {
        Ok(config) => panic!("expected an error, got {config:#?}"),
        Err(e) => e,
    }
}

fn file(line: usize) -> Origin {
    Origin::File {
        path: "authgate.toml".into(),
        line: Some(line),
    }
}

fn var(name: &str) -> Origin {
    Origin::Env { var: name.into() }
}

const MINIMAL: &str = r#"
[session]
secret = "test-secret-at-least-32-chars-long!!"
"#;

#[test]
fn canonical_config_parses_with_expected_values() {
    let c = Config::from_sources(Some((CANONICAL_NAME, CANONICAL)), Vec::new()).unwrap();

    assert_eq!(
        c.server.listen,
        "127.0.0.1:4180".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.server.public_url.as_str(), "http://127.0.0.1:4180/");
    assert_eq!(
        c.server.upstream.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.1:3000/")
    );
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(c.server.base_path, "/auth");

    assert_eq!(c.session.strategy, SessionStrategy::Jwt);
    assert_eq!(c.session.secret.len(), 1);
    assert_eq!(c.session.secret[0].expose(), SECRET);
    assert_eq!(c.session.max_age, Duration::from_secs(30 * 86_400));
    assert_eq!(c.session.update_age, Duration::from_secs(86_400));
    assert_eq!(c.session.cookie_format, CookieFormat::AuthJs);
    assert!(
        !c.session.secure_cookies,
        "http public_url: no Secure cookies"
    );
    assert_eq!(c.session_cookie_name(), "authjs.session-token");

    assert_eq!(c.refresh.mode, RefreshMode::Inline);
    assert_eq!(c.refresh.skew, Duration::from_secs(2));
    assert_eq!(c.refresh.retries, 3);
    assert_eq!(c.refresh.timeout, Duration::from_secs(10));
    assert_eq!(c.refresh.persist_deadline, Duration::from_secs(30));
    assert_eq!(c.refresh.circuit_breaker.failure_threshold, 5);
    assert_eq!(c.refresh.circuit_breaker.open_for, Duration::from_secs(30));

    assert_eq!(c.store.url.as_str(), "sqlite://authgate.db");
    assert!(c.store.encryption_keys.is_none());
    assert_eq!(c.cache.url.as_str(), "memory://");
    assert_eq!(c.cache.ttl, Duration::from_secs(300));

    assert_eq!(c.providers.len(), 1);
    let p = &c.providers[0];
    assert_eq!(p.id, "op");
    assert_eq!(p.name.as_deref(), Some("Local OP"));
    assert_eq!(p.preset, None);
    assert_eq!(
        p.issuer.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.1:4000/")
    );
    assert_eq!(p.client_id, "test");
    assert_eq!(p.client_secret.expose(), "test-secret");
    assert_eq!(p.scopes, ["openid", "email", "profile", "offline_access"]);
    assert_eq!(
        p.authorization_params.get("prompt").map(String::as_str),
        Some("consent")
    );

    let routes: Vec<(&str, RouteAccess)> = c
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.access))
        .collect();
    assert_eq!(
        routes,
        [
            ("/api/**", RouteAccess::Api),
            ("/protected/**", RouteAccess::Protected),
            ("/**", RouteAccess::Public),
        ]
    );
}

#[test]
fn defaults_plus_env_work_without_a_file() {
    let c = Config::from_sources(None, env(&[("AUTHGATE_SESSION__SECRET", SECRET)])).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:4180");
    assert_eq!(c.server.public_url.as_str(), "http://127.0.0.1:4180/");
    assert_eq!(c.store.url.as_str(), "sqlite://authgate.db");
    assert_eq!(c.refresh.skew, Duration::from_secs(60));
    assert!(c.providers.is_empty() && c.routes.is_empty());
}

#[test]
fn env_overrides_file() {
    let c = load(
        CANONICAL,
        &[
            ("AUTHGATE_REFRESH__SKEW", "90s"),
            ("AUTHGATE_REFRESH__MODE", "lazy"),
            ("AUTHGATE_REFRESH__RETRIES", "7"),
            ("AUTHGATE_REFRESH__CIRCUIT_BREAKER__OPEN_FOR", "1m"),
            (
                "AUTHGATE_STORE__URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            ("AUTHGATE_SESSION__SECURE_COOKIES", "true"),
            ("AUTHGATE_SERVER__UPSTREAM", ""),
            (
                "AUTHGATE_PROVIDERS__0__CLIENT_SECRET",
                "from-the-environment",
            ),
            (
                "AUTHGATE_PROVIDERS__0__AUTHORIZATION_PARAMS__PROMPT",
                "login",
            ),
            // Not configuration keys: ignored.
            ("AUTHGATE_CONFIG", "elsewhere.toml"),
            ("AUTHGATE_REQUIRE_SERVICES", "1"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(c.refresh.skew, Duration::from_secs(90));
    assert_eq!(c.refresh.mode, RefreshMode::Lazy);
    assert_eq!(c.refresh.retries, 7);
    assert_eq!(c.refresh.circuit_breaker.open_for, Duration::from_secs(60));
    assert_eq!(
        c.store.url.as_str(),
        "postgres://postgres@127.0.0.1:5432/test"
    );
    assert!(c.session.secure_cookies);
    assert_eq!(c.session_cookie_name(), "__Secure-authjs.session-token");
    assert!(
        c.server.upstream.is_none(),
        "an empty value unsets an optional key"
    );
    assert_eq!(
        c.providers[0].client_secret.expose(),
        "from-the-environment"
    );
    assert_eq!(c.providers[0].authorization_params["prompt"], "login");
    // Untouched keys keep their file values.
    assert_eq!(c.providers[0].client_id, "test");
    assert_eq!(c.session.secret[0].expose(), SECRET);
}

#[test]
fn env_can_add_a_provider_by_index() {
    let c = load(
        CANONICAL,
        &[
            ("AUTHGATE_PROVIDERS__1__ID", "google"),
            ("AUTHGATE_PROVIDERS__1__PRESET", "google"),
            ("AUTHGATE_PROVIDERS__1__CLIENT_ID", "1234.apps.example"),
            ("AUTHGATE_PROVIDERS__1__CLIENT_SECRET", "g-secret"),
            ("AUTHGATE_PROVIDERS__1__SCOPES", r#"["openid", "email"]"#),
        ],
    )
    .unwrap();
    assert_eq!(c.providers.len(), 2);
    assert_eq!(c.providers[1].preset, Some(ProviderPreset::Google));
    assert_eq!(c.providers[1].scopes, ["openid", "email"]);
}

#[test]
fn single_string_secret_from_env_is_accepted_as_a_list() {
    let c = load(CANONICAL, &[("AUTHGATE_SESSION__SECRET", OTHER_SECRET)]).unwrap();
    assert_eq!(c.session.secret.len(), 1);
    assert_eq!(c.session.secret[0].expose(), OTHER_SECRET);

    // A list in TOML syntax gives several secrets (first encrypts, all decrypt).
    let list = format!(r#"["{OTHER_SECRET}", "{SECRET}"]"#);
    let c = load(CANONICAL, &[("AUTHGATE_SESSION__SECRET", &list)]).unwrap();
    let secrets: Vec<&str> = c.session.secret.iter().map(|s| s.expose()).collect();
    assert_eq!(secrets, [OTHER_SECRET, SECRET]);

    // A single string in the file works too.
    let c = load(MINIMAL, &[]).unwrap();
    assert_eq!(c.session.secret[0].expose(), SECRET);
}

#[test]
fn short_secret_rejected_naming_key_and_source() {
    let err = load(CANONICAL, &[("AUTHGATE_SESSION__SECRET", "too-short")]).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.secret[0]");
    assert_eq!(p.origin, var("AUTHGATE_SESSION__SECRET"));
    assert!(
        p.message.contains("must be at least 32 bytes"),
        "{}",
        p.message
    );
    let text = err.to_string();
    assert!(text.contains("session.secret[0]"), "{text}");
    assert!(
        text.contains("environment variable AUTHGATE_SESSION__SECRET"),
        "{text}"
    );
    assert!(
        !text.contains("too-short"),
        "the secret itself is not echoed: {text}"
    );

    let toml = format!("[session]\nsecret = [\"{SECRET}\",\n  \"short\"]\n");
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.secret[1]");
    assert_eq!(p.origin, file(3));
    assert!(
        err.to_string().contains("file authgate.toml, line 3"),
        "{err}"
    );
}

#[test]
fn missing_secret_rejected_with_a_hint() {
    let err = Config::from_sources(None, Vec::new()).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.secret");
    assert_eq!(p.origin, Origin::Unset);
    assert!(
        p.message.contains("AUTHGATE_SESSION__SECRET"),
        "{}",
        p.message
    );
    assert!(p.message.contains("authgate secret"), "{}", p.message);
}

#[test]
fn bad_duration_rejected_naming_key_and_source() {
    let err = load(CANONICAL, &[("AUTHGATE_REFRESH__SKEW", "15 parsecs")]).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!(p.key, "refresh.skew");
    assert_eq!(p.origin, var("AUTHGATE_REFRESH__SKEW"));
    assert!(
        p.message.contains(r#"invalid duration "15 parsecs""#),
        "{}",
        p.message
    );
    assert!(
        p.message.contains(r#"expected e.g. "90s", "15m", "30d""#),
        "{}",
        p.message
    );

    let toml = format!("{MINIMAL}\n[refresh]\ntimeout = \"soon\"\n");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "refresh.timeout");
    assert_eq!(p.origin, file(6));
}

#[test]
fn persist_deadline_comes_from_file_or_env_and_must_be_positive() {
    let toml = format!("{MINIMAL}\n[refresh]\npersist_deadline = \"2m\"\n");
    assert_eq!(
        load(&toml, &[]).unwrap().refresh.persist_deadline,
        Duration::from_secs(120)
    );
    let c = load(&toml, &[("AUTHGATE_REFRESH__PERSIST_DEADLINE", "45s")]).unwrap();
    assert_eq!(c.refresh.persist_deadline, Duration::from_secs(45));
    let p = load_err(&toml, &[("AUTHGATE_REFRESH__PERSIST_DEADLINE", "0s")]).problems()[0].clone();
    assert_eq!(p.key, "refresh.persist_deadline");
    assert_eq!(p.origin, var("AUTHGATE_REFRESH__PERSIST_DEADLINE"));
    assert!(p.message.contains("greater than zero"), "{}", p.message);
}

#[test]
fn duration_without_unit_rejected() {
    let toml = MINIMAL.replace("[session]", "[session]\nmax_age = 90");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "session.max_age");
    assert!(p.message.contains("a unit is required"), "{}", p.message);
    assert!(p.message.contains("\"90s\""), "{}", p.message);

    let p = load_err(MINIMAL, &[("AUTHGATE_CACHE__TTL", "300")]).problems()[0].clone();
    assert_eq!(p.key, "cache.ttl");
    assert_eq!(p.origin, var("AUTHGATE_CACHE__TTL"));
    assert!(p.message.contains("a unit is required"), "{}", p.message);
}

#[test]
fn unknown_key_rejected() {
    let toml = MINIMAL.replace("[session]", "[session]\nmax_agee = \"1d\"");
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.max_agee");
    assert_eq!(p.origin, file(3));
    assert!(
        p.message
            .contains("unknown key `max_agee`; did you mean `max_age`?"),
        "{}",
        p.message
    );

    let p = load_err(MINIMAL, &[("AUTHGATE_REFRESH__SKW", "5s")]).problems()[0].clone();
    assert_eq!(p.key, "refresh.skw");
    assert_eq!(p.origin, var("AUTHGATE_REFRESH__SKW"));
    assert!(p.message.contains("did you mean `skew`?"), "{}", p.message);

    let p = load_err(&format!("{MINIMAL}[dev]\nx = 1\n"), &[]).problems()[0].clone();
    assert_eq!(p.key, "dev");
    assert!(p.message.contains("unknown key `dev`"), "{}", p.message);

    let toml =
        format!("{CANONICAL}\n[[routes]]\npath = \"/x\"\naccess = \"api\"\nmethod = [\"GET\"]\n");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "routes[3].method");
    assert!(
        p.message.contains("did you mean `methods`?"),
        "{}",
        p.message
    );
}

#[test]
fn provider_without_issuer_or_preset_rejected() {
    let toml = CANONICAL.replace("issuer = \"http://127.0.0.1:4000\"", "# no issuer");
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "providers[0]");
    assert!(matches!(p.origin, Origin::File { .. }), "{:?}", p.origin);
    assert!(p.message.contains("needs `preset`"), "{}", p.message);
    assert!(p.message.contains("`issuer`"), "{}", p.message);

    let toml = CANONICAL.replace(
        "issuer = \"http://127.0.0.1:4000\"",
        "preset = \"keycloak\"",
    );
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0]");
    assert!(
        p.message.contains("\"keycloak\" needs `issuer`"),
        "{}",
        p.message
    );

    let toml = CANONICAL.replace("issuer = \"http://127.0.0.1:4000\"", "preset = \"gooogle\"");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0].preset");
    assert!(
        p.message.contains("unknown variant `gooogle`"),
        "{}",
        p.message
    );
}

#[test]
fn duplicate_provider_ids_rejected() {
    let toml = format!(
        "{CANONICAL}\n[[providers]]\nid = \"op\"\npreset = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\n"
    );
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "providers[1].id");
    assert!(matches!(p.origin, Origin::File { line: Some(_), .. }));
    assert!(
        p.message
            .contains("duplicate provider id \"op\" (also used by providers[0])"),
        "{}",
        p.message
    );
}

#[test]
fn provider_id_must_be_url_safe_and_non_empty() {
    for bad in ["", "a/b", "..", "has space"] {
        let toml = CANONICAL.replace("id = \"op\"", &format!("id = {bad:?}"));
        let p = load_err(&toml, &[]).problems()[0].clone();
        assert_eq!(p.key, "providers[0].id", "{bad:?}");
    }
}

#[test]
fn missing_required_provider_key_is_named() {
    let toml = CANONICAL.replace("client_id = \"test\"\n", "");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0].client_id");
    assert!(
        p.message.contains("required key is missing"),
        "{}",
        p.message
    );
}

#[test]
fn bad_route_access_rejected() {
    let toml = CANONICAL.replace("access = \"api\"", "access = \"private\"");
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "routes[0].access");
    assert!(matches!(p.origin, Origin::File { line: Some(_), .. }));
    assert!(
        p.message
            .contains("unknown variant `private`, expected one of `public`, `protected`, `api`"),
        "{}",
        p.message
    );
}

#[test]
fn route_lists_are_validated_and_normalised() {
    let toml = format!(
        "{MINIMAL}[[routes]]\npath = \"/admin/**\"\naccess = \"protected\"\nmethods = [\"get\", \"post\"]\nallow_emails = [\"Ann@Example.com\"]\nallow_domains = [\"Example.org\"]\n"
    );
    let c = load(&toml, &[]).unwrap();
    assert_eq!(c.routes[0].methods, ["GET", "POST"]);
    assert_eq!(c.routes[0].allow_emails, ["ann@example.com"]);
    assert_eq!(c.routes[0].allow_domains, ["example.org"]);

    let toml = format!(
        "{MINIMAL}[[routes]]\npath = \"admin\"\naccess = \"public\"\nallow_domains = [\"example.org\"]\n"
    );
    let err = load_err(&toml, &[]);
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["routes[0].path", "routes[0].access"]);
}

#[test]
fn group_role_and_claim_rules_are_read_and_bad_ones_are_config_errors() {
    let toml = format!(
        "{MINIMAL}[[routes]]\npath = \"/staff/**\"\naccess = \"protected\"\nallow_groups = [\"staff\"]\nallow_roles = [\"admin\", \"owner\"]\nallow_claims = [{{ claim = \"realm_access.roles\", values = [\"ops\"] }}, {{ claim = \"https://example.com/dept\", values = [\"42\"] }}]\n"
    );
    let c = load(&toml, &[]).unwrap();
    let r = &c.routes[0];
    assert_eq!(r.allow_groups, ["staff"]);
    assert_eq!(r.allow_roles, ["admin", "owner"]);
    assert_eq!(r.allow_claims.len(), 2);
    assert_eq!(r.allow_claims[0].claim, "realm_access.roles");
    assert_eq!(r.allow_claims[0].values, ["ops"]);
    assert!(
        c.redacted_summary().contains("claim realm_access.roles in"),
        "{}",
        c.redacted_summary()
    );

    let toml = format!(
        "{MINIMAL}[[routes]]\npath = \"/x/**\"\naccess = \"protected\"\nallow_groups = [\"\"]\nallow_roles = [\" admin\"]\nallow_claims = [{{ claim = \"\", values = [\"a\"] }}, {{ claim = \"realm_access..roles\", values = [] }}, {{ claim = \"a\", values = [\"\"] }}]\n[[routes]]\npath = \"/y\"\naccess = \"public\"\nallow_groups = [\"staff\"]\n"
    );
    let err = load_err(&toml, &[]);
    let problems: Vec<(&str, &str)> = err
        .problems()
        .iter()
        .map(|p| (p.key.as_str(), p.message.as_str()))
        .collect();
    let keys: Vec<&str> = problems.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "routes[0].allow_groups[0]",
            "routes[0].allow_roles[0]",
            "routes[0].allow_claims[0].claim",
            "routes[0].allow_claims[1].claim",
            "routes[0].allow_claims[1].values",
            "routes[0].allow_claims[2].values[0]",
            "routes[1].access",
        ],
        "{problems:?}"
    );
    assert!(problems[2].1.contains("empty"), "{problems:?}");
    assert!(problems[4].1.contains("at least one value"), "{problems:?}");

    let toml = format!(
        "{MINIMAL}[[routes]]\npath = \"/x\"\naccess = \"protected\"\nallow_claims = [{{ claim = \"a\", value = [\"b\"] }}]\n"
    );
    let err = load_err(&toml, &[]);
    assert_eq!(err.problems()[0].key.split('.').next(), Some("routes[0]"));
}

#[test]
fn groups_and_roles_claims_are_dotted_paths() {
    let ok = format!(
        "{MINIMAL}[[providers]]\nid = \"op\"\nissuer = \"https://op.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\ngroups_claim = \"https://example.com/groups\"\nroles_claim = \"realm_access.roles\"\n"
    );
    let c = load(&ok, &[]).unwrap();
    assert_eq!(
        c.providers[0].groups_claim.as_deref(),
        Some("https://example.com/groups")
    );
    let bad = ok.replace("realm_access.roles", "realm_access.");
    let err = load_err(&bad, &[]);
    assert_eq!(err.problems()[0].key, "providers[0].roles_claim");
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = r#"
[session]
secret = ["short", "also-short"]
max_age = "0s"
[store]
url = "mysql://db"
"#;
    let err = load_err(toml, &[]);
    let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "session.secret[0]",
            "session.secret[1]",
            "session.max_age",
            "store.url"
        ]
    );
    assert!(
        err.to_string()
            .starts_with("invalid configuration (4 problems):"),
        "{err}"
    );
}

#[test]
fn wrongly_typed_env_values_are_named() {
    let p = load_err(MINIMAL, &[("AUTHGATE_REFRESH__RETRIES", "many")]).problems()[0].clone();
    assert_eq!(p.key, "refresh.retries");
    assert_eq!(p.origin, var("AUTHGATE_REFRESH__RETRIES"));
    assert!(
        p.message.contains("expected an integer, found \"many\""),
        "{}",
        p.message
    );

    let p = load_err(MINIMAL, &[("AUTHGATE_SESSION__SECURE_COOKIES", "yes")]).problems()[0].clone();
    assert_eq!(p.key, "session.secure_cookies");
    assert!(
        p.message.contains("expected true or false"),
        "{}",
        p.message
    );

    let p = load_err(MINIMAL, &[("AUTHGATE_SESSION__SECRET__X", "y")]).problems()[0].clone();
    assert_eq!(p.key, "session.secret.x");
    assert_eq!(p.origin, var("AUTHGATE_SESSION__SECRET__X"));
}

#[test]
fn server_values_are_checked_and_derived() {
    let toml = format!("{MINIMAL}[server]\nlisten = \"0.0.0.0:8080\"\n");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "server.public_url");
    assert!(p.message.contains("wildcard"), "{}", p.message);

    let toml = format!("{MINIMAL}[server]\nlisten = \"127.0.0.1:9000\"\n");
    let c = load(&toml, &[]).unwrap();
    assert_eq!(c.server.public_url.as_str(), "http://127.0.0.1:9000/");

    let toml = format!(
        "{MINIMAL}[server]\npublic_url = \"https://auth.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\", \"::1\"]\n"
    );
    let c = load(&toml, &[]).unwrap();
    assert!(
        c.session.secure_cookies,
        "https public_url: Secure cookies by default"
    );
    let proxies: Vec<String> = c
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.1/32", "::1/128"]);

    for (key, value, wanted) in [
        (
            "AUTHGATE_SERVER__LISTEN",
            "localhost",
            "invalid address \"localhost\"",
        ),
        (
            "AUTHGATE_SERVER__PUBLIC_URL",
            "ftp://x",
            "scheme must be http or https",
        ),
        (
            "AUTHGATE_SERVER__TRUSTED_PROXIES",
            "10.0.0.0/33",
            "invalid IP address or CIDR range",
        ),
        ("AUTHGATE_SERVER__BASE_PATH", "auth/", "must start with `/`"),
    ] {
        let p = load_err(MINIMAL, &[(key, value)]).problems()[0].clone();
        assert_eq!(p.origin, var(key));
        assert!(p.message.contains(wanted), "{key}: {}", p.message);
    }
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let err = load_err("[session]\nsecret = \n", &[]);
    let text = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(text.contains("authgate.toml"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

#[test]
fn loading_a_missing_file_names_it() {
    let err = Config::load(Some(std::path::Path::new("/nonexistent/authgate.toml"))).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().contains("/nonexistent/authgate.toml"),
        "{err}"
    );
}

#[test]
fn debug_and_summary_never_contain_secrets() {
    let toml = CANONICAL
        .replace(
            "sqlite://authgate.db",
            "postgres://app:db-password-123@db/auth",
        )
        .replace("memory://", "redis://:redis-password-456@cache:6379");
    let keys =
        r#"["encryption-key-that-is-32-bytes-long!", "older-encryption-key-32-bytes-long!!"]"#;
    let c = load(&toml, &[("AUTHGATE_STORE__ENCRYPTION_KEYS", keys)]).unwrap();
    let debug = format!("{c:?} {c:#?}");
    let summary = c.redacted_summary();
    for secret in [
        SECRET,
        "test-secret",
        "db-password-123",
        "redis-password-456",
        "encryption-key-that",
        "older-encryption-key",
    ] {
        assert!(!debug.contains(secret), "Debug leaks {secret:?}");
        assert!(
            !summary.contains(secret),
            "summary leaks {secret:?}:\n{summary}"
        );
    }
    assert!(
        summary.contains("secret          = 1 key: [redacted; 36 bytes]"),
        "{summary}"
    );
    assert!(
        summary.contains("client_secret   = [redacted; 11 bytes]"),
        "{summary}"
    );
    assert!(
        summary.contains("postgres://app:[redacted]@db/auth"),
        "{summary}"
    );
    assert!(summary.contains("encryption_keys = 2 keys"), "{summary}");
    assert!(summary.contains("skew            = 2s"), "{summary}");
    assert!(summary.contains("/api/**"), "{summary}");
}

#[test]
fn entra_needs_a_tenant_and_only_entra_takes_one() {
    let toml = CANONICAL.replace(
        "issuer = \"http://127.0.0.1:4000\"",
        "preset = \"microsoft-entra-id\"",
    );
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0].tenant");
    assert!(p.message.contains("needs `tenant`"), "{}", p.message);
    assert!(p.message.contains("\"common\""), "{}", p.message);

    let c = load(&toml, &[("AUTHGATE_PROVIDERS__0__TENANT", "common")]).unwrap();
    assert_eq!(c.providers[0].tenant.as_deref(), Some("common"));
    assert!(!c.providers[0].link_by_email, "linking by e-mail is opt-in");

    let toml = CANONICAL.replace(
        "issuer = \"http://127.0.0.1:4000\"",
        "issuer = \"http://127.0.0.1:4000\"\ntenant = \"common\"",
    );
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0].tenant");
    assert!(p.message.contains("only to preset"), "{}", p.message);
}

#[test]
fn link_by_email_and_the_address_list_endpoint_are_provider_keys() {
    let toml = CANONICAL.replace(
        "issuer = \"http://127.0.0.1:4000\"",
        "preset = \"github\"\nlink_by_email = true\nendpoints = { emails = \"http://127.0.0.1:5000/user/emails\" }",
    );
    let c = load(&toml, &[]).unwrap();
    let p = &c.providers[0];
    assert!(p.link_by_email);
    assert_eq!(
        p.endpoints.emails.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.1:5000/user/emails")
    );
    let summary = c.redacted_summary();
    assert!(summary.contains("link_by_email   = true"), "{summary}");
    assert!(summary.contains("endpoints.emails"), "{summary}");
}

#[test]
fn signout_is_local_unless_the_provider_is_asked_to_end_its_session_too() {
    let c = load(CANONICAL, &[]).unwrap();
    assert_eq!(c.providers[0].signout, authgate_config::SignOutMode::Local);
    assert_eq!(c.providers[0].post_logout_redirect_uri, None);

    let c = load(
        CANONICAL,
        &[
            ("AUTHGATE_PROVIDERS__0__SIGNOUT", "provider"),
            (
                "AUTHGATE_PROVIDERS__0__POST_LOGOUT_REDIRECT_URI",
                "https://app.example/bye",
            ),
        ],
    )
    .unwrap();
    let p = &c.providers[0];
    assert_eq!(p.signout, authgate_config::SignOutMode::Provider);
    assert_eq!(
        p.post_logout_redirect_uri.as_ref().map(|u| u.as_str()),
        Some("https://app.example/bye")
    );
    let summary = c.redacted_summary();
    assert!(summary.contains("signout         = provider"), "{summary}");

    let e = load_err(
        CANONICAL,
        &[(
            "AUTHGATE_PROVIDERS__0__POST_LOGOUT_REDIRECT_URI",
            "https://app.example/bye",
        )],
    );
    assert_eq!(
        e.problems()[0].key,
        "providers[0].post_logout_redirect_uri",
        "{e}"
    );
    let e = load_err(
        CANONICAL,
        &[("AUTHGATE_PROVIDERS__0__SIGNOUT", "everywhere")],
    );
    assert!(e.to_string().contains("signout"), "{e}");

    let github = CANONICAL.replace(
        "issuer = \"http://127.0.0.1:4000\"",
        "preset = \"github\"\nsignout = \"provider\"",
    );
    let p = load_err(&github, &[]).problems()[0].clone();
    assert_eq!(p.key, "providers[0].signout");
    assert!(p.message.contains("GitHub has none"), "{}", p.message);
}

#[test]
fn edge_keys_default_to_the_safe_choice_and_are_checked() {
    let c = load(MINIMAL, &[]).unwrap();
    assert!(!c.server.pass_auth_cookies, "authgate's cookies stay home");
    assert!(!c.server.preserve_host, "the upstream gets its own Host");
    assert_eq!(c.server.metrics_listen, None);

    let toml = format!(
        "{MINIMAL}[server]\npass_auth_cookies = true\npreserve_host = true\nmetrics_listen = \"127.0.0.1:9090\"\n"
    );
    let c = load(&toml, &[]).unwrap();
    assert!(c.server.pass_auth_cookies && c.server.preserve_host);
    assert_eq!(
        c.server.metrics_listen,
        Some("127.0.0.1:9090".parse::<SocketAddr>().unwrap())
    );
    let summary = c.redacted_summary();
    for line in [
        "pass_auth_cookies = true",
        "preserve_host   = true",
        "metrics_listen  = 127.0.0.1:9090",
    ] {
        assert!(summary.contains(line), "{summary}");
    }

    let key = "AUTHGATE_SERVER__METRICS_LISTEN";
    let p = load_err(MINIMAL, &[(key, "localhost:9090")]).problems()[0].clone();
    assert_eq!(p.origin, var(key));
    assert!(p.message.contains("invalid address"), "{}", p.message);
    let p = load_err(MINIMAL, &[(key, "127.0.0.1:4180")]).problems()[0].clone();
    assert_eq!(
        (p.key.as_str(), p.origin),
        ("server.metrics_listen", var(key))
    );
    assert!(p.message.contains("must differ"), "{}", p.message);
}

/// A well-formed `secret_hash` (16 zero bytes of salt, a zero MAC).
const HASH: &str =
    "$hmac-sha256$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn with_client(body: &str) -> String {
    format!("{MINIMAL}\n[[service_clients]]\n{body}")
}

#[test]
fn service_clients_parse_with_permissions_and_a_default_rate_limit() {
    let toml = with_client(&format!(
        "id = \"next-server\"\nsecret_hash = \"{HASH}\"\nallow = [\"token\", \"token:offline\", \"sessions\"]\n\n[[service_clients]]\nid = \"nightly.job\"\nsecret_hash = \"{HASH}\"\nallow = [\"token:offline\"]\nrate_limit = \"10/s\"\n"
    ));
    let c = load(&toml, &[]).unwrap();
    assert_eq!(c.service_clients.len(), 2);
    let next = &c.service_clients[0];
    assert_eq!(next.id, "next-server");
    assert_eq!(next.secret_hash.to_string(), HASH);
    assert_eq!(
        next.allow,
        [
            ServicePermission::Token,
            ServicePermission::TokenOffline,
            ServicePermission::Sessions
        ]
    );
    assert_eq!(next.rate_limit, DEFAULT_SERVICE_RATE_LIMIT);
    assert_eq!(next.rate_limit.to_string(), "600/min");
    assert_eq!(c.service_clients[1].rate_limit.to_string(), "10/s");

    // Every key can come from the environment, a whole client included.
    let c = load(
        MINIMAL,
        &[
            ("AUTHGATE_SERVICE_CLIENTS__0__ID", "cron"),
            ("AUTHGATE_SERVICE_CLIENTS__0__SECRET_HASH", HASH),
            ("AUTHGATE_SERVICE_CLIENTS__0__ALLOW", "token:offline"),
            ("AUTHGATE_SERVICE_CLIENTS__0__RATE_LIMIT", "5000/h"),
        ],
    )
    .unwrap();
    assert_eq!(c.service_clients[0].id, "cron");
    assert_eq!(
        c.service_clients[0].allow,
        [ServicePermission::TokenOffline]
    );
    assert_eq!(c.service_clients[0].rate_limit.to_string(), "5000/h");
}

#[test]
fn a_bad_secret_hash_is_named_with_its_source_and_never_echoed() {
    let toml = with_client(
        "id = \"next-server\"\nsecret_hash = \"plaintext-secret-by-mistake\"\nallow = [\"token\"]\n",
    );
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "service_clients[0].secret_hash");
    assert_eq!(p.origin, file(7));
    assert!(
        p.message.contains("authgate secret --hash"),
        "{}",
        p.message
    );
    assert!(!err.to_string().contains("plaintext-secret"), "{err}");

    let argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let p = load_err(
        &with_client(&format!(
            "id = \"a\"\nsecret_hash = \"{HASH}\"\nallow = [\"token\"]\n"
        )),
        &[("AUTHGATE_SERVICE_CLIENTS__0__SECRET_HASH", argon)],
    )
    .problems()[0]
        .clone();
    assert_eq!(p.key, "service_clients[0].secret_hash");
    assert_eq!(p.origin, var("AUTHGATE_SERVICE_CLIENTS__0__SECRET_HASH"));
    assert!(
        p.message
            .contains("unsupported hash algorithm \"argon2id\""),
        "{}",
        p.message
    );
}

#[test]
fn unknown_permissions_bad_rates_and_empty_allow_lists_are_named() {
    let toml = with_client(&format!(
        "id = \"a\"\nsecret_hash = \"{HASH}\"\nallow = [\"token\", \"admin\"]\n"
    ));
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "service_clients[0].allow[1]");
    assert_eq!(p.origin, file(8));
    assert!(
        p.message.contains(
            "unknown variant `admin`, expected one of `token`, `token:offline`, `sessions`"
        ),
        "{}",
        p.message
    );

    let toml = with_client(&format!(
        "id = \"a\"\nsecret_hash = \"{HASH}\"\nallow = [\"token\"]\nrate_limit = \"lots\"\n"
    ));
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "service_clients[0].rate_limit");
    assert!(p.message.contains("e.g. \"600/min\""), "{}", p.message);

    let toml = with_client(&format!(
        "id = \"a\"\nsecret_hash = \"{HASH}\"\nallow = []\n"
    ));
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "service_clients[0].allow");
    assert!(p.message.contains("\"token:offline\""), "{}", p.message);

    let toml = with_client("id = \"a\"\nallow = [\"token\"]\n");
    let p = load_err(&toml, &[]).problems()[0].clone();
    assert_eq!(p.key, "service_clients[0].secret_hash");
    assert!(
        p.message.contains("required key is missing"),
        "{}",
        p.message
    );
}

#[test]
fn service_client_ids_are_unique_and_plain() {
    let client = |id: &str| format!("id = {id:?}\nsecret_hash = \"{HASH}\"\nallow = [\"token\"]\n");
    let toml = with_client(&format!(
        "{}\n[[service_clients]]\n{}",
        client("next-server"),
        client("next-server")
    ));
    let err = load_err(&toml, &[]);
    let p = &err.problems()[0];
    assert_eq!(p.key, "service_clients[1].id");
    assert!(matches!(p.origin, Origin::File { line: Some(_), .. }));
    assert!(
        p.message.contains(
            "duplicate service client id \"next-server\" (also used by service_clients[0])"
        ),
        "{}",
        p.message
    );
    for bad in ["", "has space", "a:b", "ünï", &"x".repeat(65)] {
        let p = load_err(&with_client(&client(bad)), &[]).problems()[0].clone();
        assert_eq!(p.key, "service_clients[0].id", "{bad:?}");
    }
}

#[test]
fn the_summary_lists_service_clients_without_their_hashes() {
    let toml = with_client(&format!(
        "id = \"next-server\"\nsecret_hash = \"{HASH}\"\nallow = [\"token\", \"token:offline\"]\n"
    ));
    let summary = load(&toml, &[]).unwrap().redacted_summary();
    assert!(
        summary.contains("[[service_clients]] next-server"),
        "{summary}"
    );
    assert!(
        summary.contains("allow           = token, token:offline"),
        "{summary}"
    );
    assert!(summary.contains("rate_limit      = 600/min"), "{summary}");
    assert!(!summary.contains("AAAAAAAAAAAAAAAAAAAAAA"), "{summary}");
}

#[test]
fn adopt_guide_cookies_names_a_configured_provider_of_a_jwt_session() {
    assert_eq!(
        load(CANONICAL, &[]).unwrap().session.adopt_guide_cookies,
        None,
        "off by default"
    );
    let c = load(
        CANONICAL,
        &[("AUTHGATE_SESSION__ADOPT_GUIDE_COOKIES", "op")],
    )
    .unwrap();
    assert_eq!(c.session.adopt_guide_cookies.as_deref(), Some("op"));

    let err = load_err(
        CANONICAL,
        &[("AUTHGATE_SESSION__ADOPT_GUIDE_COOKIES", "google")],
    );
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.adopt_guide_cookies");
    assert_eq!(p.origin, var("AUTHGATE_SESSION__ADOPT_GUIDE_COOKIES"));
    assert!(
        p.message.contains("no configured provider"),
        "{}",
        p.message
    );

    let err = load_err(
        CANONICAL,
        &[
            ("AUTHGATE_SESSION__ADOPT_GUIDE_COOKIES", "op"),
            ("AUTHGATE_SESSION__STRATEGY", "database"),
        ],
    );
    let p = &err.problems()[0];
    assert_eq!(p.key, "session.adopt_guide_cookies");
    assert!(p.message.contains("jwt"), "{}", p.message);
}

#[test]
fn tls_and_sentinel_redis_urls_are_accepted() {
    for url in [
        "redis://cache:6379/0",
        "rediss://:pw@cache.internal:6380/1",
        "redis+sentinel://s1:26379,s2:26379,s3/mymaster",
        "rediss+sentinel://app:pw@s1,s2/mymaster/2?sentinel_password=spw",
    ] {
        let c = load(MINIMAL, &[("AUTHGATE_CACHE__URL", url)]).unwrap();
        assert_eq!(c.cache.url.as_str(), url);
    }
    let c = load(
        MINIMAL,
        &[
            ("AUTHGATE_CACHE__URL", "rediss://cache:6380"),
            (
                "AUTHGATE_CACHE__REDIS_CA_FILE",
                "/etc/authgate/redis-ca.pem",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        c.cache.redis_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/authgate/redis-ca.pem"))
    );
    assert!(
        c.redacted_summary()
            .contains("redis_ca_file   = /etc/authgate/redis-ca.pem")
    );
}

#[test]
fn malformed_redis_urls_are_rejected_with_the_reason_and_no_password() {
    let cases = [
        (
            "rediss://:pw-123@cache:6380/#insecure",
            "cannot be disabled",
        ),
        ("redis://:pw-123@cache:port", "invalid port"),
        ("redis://:pw-123@a:1,b:2", "redis+sentinel://"),
        (
            "redis+sentinel://:pw-123@s1:26379,s2:26379",
            "missing master name",
        ),
        ("redis+sentinel://s1/mymaster/x", "invalid database"),
        (
            "redis+sentinel://s1/m?sentinel_pass=pw-123",
            "unknown query parameter",
        ),
        ("redis://:pw/123@cache", "%2F"),
        ("valkey://cache", "unsupported cache URL"),
    ];
    for (url, expected) in cases {
        let p = load_err(MINIMAL, &[("AUTHGATE_CACHE__URL", url)]).problems()[0].clone();
        assert_eq!(p.key, "cache.url", "{url}");
        assert_eq!(p.origin, var("AUTHGATE_CACHE__URL"));
        assert!(p.message.contains(expected), "{url}: {}", p.message);
        assert!(!p.message.contains("pw-123"), "{url}: {}", p.message);
        assert!(!p.message.contains("pw/123"), "{url}: {}", p.message);
    }
}

#[test]
fn a_redis_ca_file_without_a_tls_url_is_rejected() {
    for url in ["memory://", "redis://cache:6379", "redis+sentinel://s1/m"] {
        let p = load_err(
            MINIMAL,
            &[
                ("AUTHGATE_CACHE__URL", url),
                ("AUTHGATE_CACHE__REDIS_CA_FILE", "/ca.pem"),
            ],
        )
        .problems()[0]
            .clone();
        assert_eq!(p.key, "cache.redis_ca_file", "{url}");
        assert!(p.message.contains("rediss://"), "{url}: {}", p.message);
    }
}

#[test]
fn the_summary_redacts_sentinel_and_tls_passwords() {
    let url = "rediss+sentinel://app:master-pw-789@s1:26379,s2:26379/mymaster/0?sentinel_password=sentinel-pw-012";
    let c = load(MINIMAL, &[("AUTHGATE_CACHE__URL", url)]).unwrap();
    let summary = c.redacted_summary();
    let debug = format!("{c:?}");
    for secret in ["master-pw-789", "sentinel-pw-012"] {
        assert!(!summary.contains(secret), "{summary}");
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(
        summary.contains("rediss+sentinel://app:[redacted]@s1:26379,s2:26379/mymaster/0?sentinel_password=[redacted]"),
        "{summary}"
    );
}

#[test]
fn bearer_needs_audiences_and_refuses_none_and_hmac() {
    let provider = "[[providers]]\nid = \"op\"\nissuer = \"https://op.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let ok = format!(
        "{MINIMAL}{provider}bearer = {{ audiences = [\"https://api.example.test\"], algorithms = [\"RS256\", \"ES256\"] }}\n"
    );
    let c = load(&ok, &[]).unwrap();
    let bearer = c.providers[0].bearer.as_ref().unwrap();
    assert_eq!(bearer.audiences, ["https://api.example.test"]);
    assert_eq!(bearer.algorithms, ["RS256", "ES256"]);

    let empty = format!("{MINIMAL}{provider}bearer = {{ audiences = [] }}\n");
    let err = load_err(&empty, &[]);
    assert_eq!(err.problems()[0].key, "providers[0].bearer.audiences");

    for (alg, says) in [
        ("none", "never accepted"),
        ("HS256", "never accepted"),
        ("RS999", "unknown algorithm"),
    ] {
        let bad = format!(
            "{MINIMAL}{provider}bearer = {{ audiences = [\"a\"], algorithms = [\"{alg}\"] }}\n"
        );
        let err = load_err(&bad, &[]);
        assert_eq!(err.problems()[0].key, "providers[0].bearer.algorithms[0]");
        assert!(
            err.problems()[0].message.contains(says),
            "{alg}: {}",
            err.problems()[0].message
        );
    }

    let github = format!(
        "{MINIMAL}[[providers]]\nid = \"gh\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\nbearer = {{ audiences = [\"a\"] }}\n"
    );
    let err = load_err(&github, &[]);
    assert_eq!(err.problems()[0].key, "providers[0].bearer");
}

#[test]
fn a_route_opts_in_to_bearer_tokens_only_with_a_bearer_provider() {
    let provider = "[[providers]]\nid = \"op\"\nissuer = \"https://op.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
    let route = "[[routes]]\npath = \"/hooks/**\"\naccess = \"protected\"\nbearer = true\n";
    let ok = format!("{MINIMAL}{provider}bearer = {{ audiences = [\"a\"] }}\n{route}");
    let c = load(&ok, &[]).unwrap();
    assert!(c.routes[0].bearer);

    let err = load_err(&format!("{MINIMAL}{provider}{route}"), &[]);
    assert_eq!(err.problems()[0].key, "routes[0].bearer");

    let public = ok.replace("\"protected\"", "\"public\"");
    let err = load_err(&public, &[]);
    assert_eq!(err.problems()[0].key, "routes[0].bearer");
}

#[test]
fn only_one_provider_may_introspect_opaque_tokens() {
    let provider = |id: &str| {
        format!(
            "[[providers]]\nid = \"{id}\"\nissuer = \"https://{id}.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\nbearer = {{ audiences = [\"a\"], introspect = true }}\n"
        )
    };
    let one = format!("{MINIMAL}{}", provider("op"));
    assert!(
        load(&one, &[]).unwrap().providers[0]
            .bearer
            .as_ref()
            .unwrap()
            .introspect
    );
    let two = format!("{MINIMAL}{}{}", provider("op"), provider("other"));
    let err = load_err(&two, &[]);
    assert_eq!(err.problems()[0].key, "providers[1].bearer.introspect");
}
