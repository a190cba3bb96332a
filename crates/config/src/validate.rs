//! Checks that need more than one value's type: lengths, uniqueness, combinations,
//! and values derived from others.

use std::collections::HashMap;

use authgate_core::attributes::ClaimPath;

use crate::error::{Origin, Problem};
use crate::tree::{Node, env_var_for};
use crate::{
    Config, MIN_SECRET_BYTES, ProviderPreset, RouteAccess, Secret, SessionStrategy, url_from_listen,
};

struct Checker<'a> {
    tree: &'a Node,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let origin = self.tree.origin_of(&key);
        self.problems.push(Problem {
            key,
            origin,
            message: message.into(),
        });
    }

    fn is_set(&self, key: &str) -> bool {
        self.tree.get(key).is_some()
    }

    fn secrets(&mut self, key: &str, secrets: &[Secret]) {
        for (i, secret) in secrets.iter().enumerate() {
            if secret.len() < MIN_SECRET_BYTES {
                self.fail(
                    format!("{key}[{i}]"),
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes, got {} (generate one with `authgate secret`)",
                        secret.len()
                    ),
                );
            }
        }
    }

    fn positive(&mut self, key: &str, value: std::time::Duration) {
        if value.is_zero() {
            self.fail(key, "must be greater than zero");
        }
    }
}

/// Validates `config` (whose values came from `tree`), normalises some values, and
/// resolves derived defaults. Returns every problem found.
pub(crate) fn validate(config: &mut Config, tree: &Node) -> Vec<Problem> {
    let mut c = Checker {
        tree,
        problems: Vec::new(),
    };
    server(&mut c, config);
    session(&mut c, config);
    refresh_store_cache(&mut c, config);
    providers(&mut c, config);
    adoption(&mut c, config);
    routes(&mut c, config);
    upstreams(&mut c, config);
    service_clients(&mut c, config);
    c.problems
}

fn server(c: &mut Checker<'_>, config: &mut Config) {
    let server = &mut config.server;
    if c.is_set("server.public_url") {
        let url = &server.public_url;
        if url.query().is_some() || url.fragment().is_some() {
            c.fail("server.public_url", "must not have a query or fragment");
        }
    } else if server.listen.ip().is_unspecified() {
        c.problems.push(Problem {
            key: "server.public_url".to_owned(),
            origin: Origin::Unset,
            message: format!(
                "required when server.listen is a wildcard address ({}): set the URL browsers use to reach authgate",
                server.listen
            ),
        });
    } else {
        match url_from_listen(server.listen) {
            Ok(url) => server.public_url = url,
            Err(e) => c.fail(
                "server.public_url",
                format!("cannot derive it from server.listen ({e}); set it explicitly"),
            ),
        }
    }
    if let Some(metrics) = server.metrics_listen
        && metrics == server.listen
        && metrics.port() != 0
    {
        c.fail(
            "server.metrics_listen",
            format!(
                "must differ from server.listen ({metrics}); leave it out to serve /metrics on server.listen"
            ),
        );
    }
    let base = &server.base_path;
    if !base.starts_with('/') || base.len() < 2 || base.ends_with('/') {
        c.fail(
            "server.base_path",
            format!("must start with `/`, not end with `/`, and not be `/` alone (got {base:?})"),
        );
    } else if base.contains(['?', '#', '*', ' ', '%', '\\'])
        || base.contains("//")
        || base.split('/').any(|seg| seg == "." || seg == "..")
    {
        c.fail(
            "server.base_path",
            format!("must be a plain path such as \"/auth\" (got {base:?})"),
        );
    }
}

fn session(c: &mut Checker<'_>, config: &mut Config) {
    let session = &mut config.session;
    if session.secret.is_empty() {
        c.fail(
            "session.secret",
            format!(
                "at least one secret is required: set `secret` in [session] or {}; generate one with `authgate secret`",
                env_var_for("session.secret")
            ),
        );
    }
    c.secrets("session.secret", &session.secret);
    c.positive("session.max_age", session.max_age);
    if !c.is_set("session.secure_cookies") {
        session.secure_cookies = config.server.public_url.scheme() == "https";
    }
    if let Some(domain) = session.cookie_domain.take() {
        match cookie_domain(&domain) {
            Err(message) => c.fail("session.cookie_domain", message),
            Ok(domain) => {
                let host = config.server.public_url.host_str().unwrap_or("");
                if !host_within(host, &domain) {
                    c.fail(
                        "session.cookie_domain",
                        format!(
                            "server.public_url's host ({host}) must be {domain:?} or a subdomain of it, or browsers drop the cookie"
                        ),
                    );
                }
                session.cookie_domain = Some(domain);
            }
        }
    }
    let hosts = std::mem::take(&mut config.server.allowed_redirect_hosts);
    for (i, host) in hosts.into_iter().enumerate() {
        match host_and_port(&host) {
            Ok(host) => config.server.allowed_redirect_hosts.push(host),
            Err(message) => c.fail(format!("server.allowed_redirect_hosts[{i}]"), message),
        }
    }
}

fn upstreams(c: &mut Checker<'_>, config: &mut Config) {
    if config.upstreams.is_empty() {
        return;
    }
    if config.server.upstream.is_some() {
        c.fail(
            "server.upstream",
            "set either server.upstream (one application for every host) or [[upstreams]] (chosen by host), not both",
        );
    }
    let server = &config.server;
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, u) in config.upstreams.iter_mut().enumerate() {
        let key = format!("upstreams[{i}]");
        match host_and_port(&u.host) {
            Ok(host) => u.host = host,
            Err(message) => c.fail(format!("{key}.host"), message),
        }
        if let Some(prefix) = &u.path_prefix {
            let plain = prefix.starts_with('/')
                && (prefix == "/" || !prefix.ends_with('/'))
                && !prefix.contains("//")
                && !prefix.contains(['?', '#', '*', '%', '\\', ';'])
                && !prefix.contains(|ch: char| ch.is_whitespace() || ch.is_control())
                && !prefix.split('/').any(|seg| seg == "." || seg == "..");
            if !plain {
                c.fail(
                    format!("{key}.path_prefix"),
                    format!("must be a plain path such as \"/admin\" (no trailing `/`, no dot segments, `%`, `;` or patterns); got {prefix:?}"),
                );
            }
        }
        if !matches!(u.url.scheme(), "http" | "https") || u.url.host_str().is_none() {
            c.fail(format!("{key}.url"), "must be an http:// or https:// URL");
        }
        for (name, own, servers) in [
            (
                "pass_access_token",
                u.pass_access_token,
                server.pass_access_token,
            ),
            (
                "pass_authorization_header",
                u.pass_authorization_header,
                server.pass_authorization_header,
            ),
        ] {
            if own == Some(true) && !servers {
                c.fail(
                    format!("{key}.{name}"),
                    format!("an upstream may only turn off what [server] turns on: set server.{name} = true and {name} = false on the upstreams that must not get the token"),
                );
            }
        }
        let prefix = u.path_prefix.clone().unwrap_or_else(|| "/".to_owned());
        if let Some(first) = seen.insert((u.host.clone(), prefix.clone()), i) {
            c.fail(
                format!("{key}.host"),
                format!(
                    "host {:?} with path_prefix {prefix:?} is already served by upstreams[{first}]",
                    u.host
                ),
            );
        }
    }
}

/// Whether `host` is `domain` or below it (label-wise: `evil-example.com`
/// is not below `example.com`).
pub(crate) fn host_within(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
}

/// `session.cookie_domain` normalised (lower case, no leading `.`), or why
/// it is refused: a registrable-looking DNS name of at least two labels,
/// without scheme, port, path, trailing dot or IP address.
pub(crate) fn cookie_domain(raw: &str) -> Result<String, String> {
    let lower = raw.trim().to_ascii_lowercase();
    let domain = lower.strip_prefix('.').unwrap_or(&lower);
    let hint = "write a domain name such as \"example.com\" (no scheme, port, path or IP address)";
    if domain.is_empty() || domain.len() > 253 {
        return Err(format!("{hint}; got {raw:?}"));
    }
    if !domain.is_ascii() {
        return Err(format!(
            "{hint}; an internationalised name must be written in its xn-- form, got {raw:?}"
        ));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() || domain.starts_with('[') {
        return Err(format!(
            "must be a domain name, not an IP address (cookies cannot be shared across IP addresses); got {raw:?}"
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return Err(format!("{hint}; got {raw:?}"));
    }
    if labels.len() < 2 {
        return Err(format!(
            "must have at least two labels (\"example.com\"): browsers refuse a cookie for a top-level name; got {raw:?}"
        ));
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "must be a domain name, not an IP address; got {raw:?}"
        ));
    }
    Ok(domain.to_owned())
}

/// A host as a `callbackUrl` or an upstream names it: `host` or
/// `host:port`, normalised as a URL parser does (lower case), or why it is
/// refused (a scheme, path, userinfo, trailing dot, non-ASCII name).
pub(crate) fn host_and_port(raw: &str) -> Result<String, String> {
    let hint = "write a host such as \"admin.example.com\" or \"admin.example.com:8443\" (no scheme, path or user)";
    if raw.is_empty()
        || !raw.is_ascii()
        || raw.ends_with('.')
        || raw.starts_with('.')
        || raw.contains("..")
        || raw.contains(['/', '\\', '@', '?', '#', '%', ' ', '*'])
        || raw.chars().any(|c| c.is_ascii_control())
    {
        return Err(format!("{hint}; got {raw:?}"));
    }
    let parsed = url::Url::parse(&format!("http://{raw}/"))
        .map_err(|e| format!("{hint}; got {raw:?} ({e})"))?;
    let host = parsed.host_str().unwrap_or("");
    let out = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    // `http://` drops `:80`; keep what was written when it is that.
    let lower = raw.to_ascii_lowercase();
    if out != lower && format!("{out}:80") != lower {
        return Err(format!("{hint}; got {raw:?}"));
    }
    Ok(lower)
}

fn adoption(c: &mut Checker<'_>, config: &Config) {
    let Some(provider) = &config.session.adopt_guide_cookies else {
        return;
    };
    if !config.providers.iter().any(|p| &p.id == provider) {
        c.fail(
            "session.adopt_guide_cookies",
            format!("names no configured provider ({provider:?} is not a [[providers]] id)"),
        );
    }
    if config.session.strategy != SessionStrategy::Jwt {
        c.fail(
            "session.adopt_guide_cookies",
            "guide cookies are JWT sessions: needs session.strategy = \"jwt\"",
        );
    }
}

fn refresh_store_cache(c: &mut Checker<'_>, config: &Config) {
    c.positive("refresh.timeout", config.refresh.timeout);
    c.positive("refresh.persist_deadline", config.refresh.persist_deadline);
    if config.refresh.circuit_breaker.failure_threshold == 0 {
        c.fail(
            "refresh.circuit_breaker.failure_threshold",
            "must be at least 1",
        );
    }
    c.positive(
        "refresh.circuit_breaker.open_for",
        config.refresh.circuit_breaker.open_for,
    );

    match config.store.url.scheme().as_deref() {
        Some("sqlite" | "postgres" | "postgresql") => {}
        _ => c.fail(
            "store.url",
            format!(
                "unsupported store URL {}: expected \"sqlite://…\" or \"postgres://…\"",
                config.store.url
            ),
        ),
    }
    if let Some(keys) = &config.store.encryption_keys {
        if keys.is_empty() {
            c.fail(
                "store.encryption_keys",
                "must not be an empty list (remove it to derive keys from the session secrets)",
            );
        }
        c.secrets("store.encryption_keys", keys);
    }

    let cache = &config.cache;
    match cache.url.scheme().as_deref() {
        Some("memory") => {
            if cache.redis_ca_file.is_some() {
                c.fail(
                    "cache.redis_ca_file",
                    "only used with a TLS Redis URL (rediss:// or rediss+sentinel://); cache.url is memory://",
                );
            }
        }
        Some("redis" | "rediss" | "redis+sentinel" | "rediss+sentinel") => {
            match authgate_core::redis_url::parse(cache.url.as_str()) {
                Err(e) => c.fail("cache.url", format!("{}: {e}", cache.url)),
                Ok(parsed) if cache.redis_ca_file.is_some() && !parsed.tls() => c.fail(
                    "cache.redis_ca_file",
                    format!(
                        "only used with a TLS Redis URL (rediss:// or rediss+sentinel://); cache.url is {}",
                        cache.url
                    ),
                ),
                Ok(_) => {}
            }
        }
        _ => c.fail(
            "cache.url",
            format!(
                "unsupported cache URL {}: expected \"memory://\", \"redis://…\", \"rediss://…\" (TLS), \"redis+sentinel://host1,host2/<master>\" or \"rediss+sentinel://…\"",
                cache.url
            ),
        ),
    }
    c.positive("cache.ttl", config.cache.ttl);
}

fn providers(c: &mut Checker<'_>, config: &Config) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, p) in config.providers.iter().enumerate() {
        let key = format!("providers[{i}]");
        if p.id.is_empty() {
            c.fail(format!("{key}.id"), "must not be empty");
        } else if !p
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.fail(
                format!("{key}.id"),
                format!(
                    "{:?} is not URL-safe: use only letters, digits, `-` and `_`",
                    p.id
                ),
            );
        } else if let Some(first) = seen.insert(&p.id, i) {
            c.fail(
                format!("{key}.id"),
                format!(
                    "duplicate provider id {:?} (also used by providers[{first}])",
                    p.id
                ),
            );
        }
        let explicit = p.endpoints.authorization.is_some() && p.endpoints.token.is_some();
        match (p.preset, &p.issuer) {
            (None, None) if explicit => {}
            (None, None) => c.fail(
                key.clone(),
                "needs `preset` (google, github, microsoft-entra-id, gitlab, keycloak, okta, auth0), `issuer` (an OpenID Connect issuer URL), or `endpoints` with `authorization` and `token`",
            ),
            (Some(preset), None) if preset.requires_issuer() => c.fail(
                key.clone(),
                format!(
                    "preset {:?} needs `issuer` (the tenant or realm URL)",
                    preset.as_str()
                ),
            ),
            _ => {}
        }
        let entra = p.preset == Some(ProviderPreset::MicrosoftEntraId);
        match (&p.tenant, entra) {
            (Some(_), false) => c.fail(
                format!("{key}.tenant"),
                "applies only to preset \"microsoft-entra-id\"",
            ),
            (Some(t), true) if t.trim().is_empty() => {
                c.fail(format!("{key}.tenant"), "must not be empty")
            }
            (None, true) if p.issuer.is_none() => c.fail(
                format!("{key}.tenant"),
                "preset \"microsoft-entra-id\" needs `tenant`: your directory (tenant) ID, or \"common\", \"organizations\" or \"consumers\" to admit users of other directories",
            ),
            _ => {}
        }
        if let Some(issuer) = &p.issuer
            && (issuer.query().is_some() || issuer.fragment().is_some())
        {
            c.fail(format!("{key}.issuer"), "must not have a query or fragment");
        }
        if p.client_id.trim().is_empty() {
            c.fail(format!("{key}.client_id"), "must not be empty");
        }
        if p.post_logout_redirect_uri.is_some() && p.signout != crate::SignOutMode::Provider {
            c.fail(
                format!("{key}.post_logout_redirect_uri"),
                "applies only with signout = \"provider\"",
            );
        }
        if p.signout == crate::SignOutMode::Provider && p.preset == Some(ProviderPreset::GitHub) {
            c.fail(
                format!("{key}.signout"),
                "\"provider\" needs an OpenID Connect provider with an end_session_endpoint; GitHub has none",
            );
        }
        if p.client_secret.is_empty() {
            c.fail(format!("{key}.client_secret"), "must not be empty");
        }
        for (name, claim) in [
            ("groups_claim", &p.groups_claim),
            ("roles_claim", &p.roles_claim),
        ] {
            if let Some(claim) = claim {
                if p.preset == Some(ProviderPreset::GitHub) {
                    c.fail(
                        format!("{key}.{name}"),
                        "GitHub has no ID token or claims; its groups are the user's organisations and teams (scope read:org)",
                    );
                } else if let Err(error) = ClaimPath::parse(claim) {
                    c.fail(format!("{key}.{name}"), error.to_string());
                }
            }
        }
        if let Some(g) = &p.google_groups {
            let gkey = format!("{key}.google_groups");
            if p.preset != Some(ProviderPreset::Google) {
                c.fail(gkey.clone(), "applies only to the google preset");
            }
            if !g.admin_email.contains('@') {
                c.fail(
                    format!("{gkey}.admin_email"),
                    "must be the address of a Workspace administrator",
                );
            }
            match std::fs::read_to_string(&g.service_account_file) {
                Err(error) => c.fail(
                    format!("{gkey}.service_account_file"),
                    format!("{}: {error}", g.service_account_file.display()),
                ),
                Ok(text) => {
                    if let Err(problem) = crate::check_service_account_key(&text) {
                        c.fail(
                            format!("{gkey}.service_account_file"),
                            format!("{}: {problem}", g.service_account_file.display()),
                        );
                    }
                }
            }
        }
        if let Some(bearer) = &p.bearer {
            let bkey = format!("{key}.bearer");
            if p.preset == Some(ProviderPreset::GitHub)
                || (p.preset.is_none() && p.issuer.is_none())
            {
                c.fail(
                    bkey.clone(),
                    "needs an OpenID Connect provider (an issuer and its JWKS) to verify tokens against",
                );
            }
            if bearer.audiences.is_empty() {
                c.fail(
                    format!("{bkey}.audiences"),
                    "must list at least one audience (the `aud` your API's tokens carry)",
                );
            }
            for (j, audience) in bearer.audiences.iter().enumerate() {
                if audience.trim().is_empty() {
                    c.fail(format!("{bkey}.audiences[{j}]"), "must not be empty");
                }
            }
            for (j, alg) in bearer.algorithms.iter().enumerate() {
                if crate::BEARER_ALGORITHMS.contains(&alg.as_str()) {
                    continue;
                }
                let why = if alg.eq_ignore_ascii_case("none") {
                    "\"none\" is never accepted: an unsigned token proves nothing".to_owned()
                } else if alg.to_ascii_uppercase().starts_with("HS") {
                    format!(
                        "{alg:?} is never accepted: HMAC needs a shared secret, and a provider's public key must never serve as one"
                    )
                } else {
                    format!(
                        "unknown algorithm {alg:?}; expected one of {}",
                        crate::BEARER_ALGORITHMS.join(", ")
                    )
                };
                c.fail(format!("{bkey}.algorithms[{j}]"), why);
            }
        }
        for (j, scope) in p.scopes.iter().enumerate() {
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                c.fail(
                    format!("{key}.scopes[{j}]"),
                    format!("{scope:?} is not a single scope (list scopes separately)"),
                );
            }
        }
    }
}

fn is_http_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch))
}

fn routes(c: &mut Checker<'_>, config: &mut Config) {
    let any_bearer = config.providers.iter().any(|p| p.bearer.is_some());
    let introspecting: Vec<usize> = config
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.bearer.as_ref().is_some_and(|b| b.introspect))
        .map(|(i, _)| i)
        .collect();
    if let [_, second, ..] = introspecting.as_slice() {
        c.fail(
            format!("providers[{second}].bearer.introspect"),
            "only one provider may introspect opaque tokens: an opaque token names no issuer",
        );
    }
    route_list(c, "routes", &mut config.routes, any_bearer);
    for (u, upstream) in config.upstreams.iter_mut().enumerate() {
        route_list(
            c,
            &format!("upstreams[{u}].routes"),
            &mut upstream.routes,
            any_bearer,
        );
    }
}

fn route_list(
    c: &mut Checker<'_>,
    list: &str,
    routes: &mut [crate::RouteConfig],
    any_bearer: bool,
) {
    for (i, route) in routes.iter_mut().enumerate() {
        let key = format!("{list}[{i}]");
        let path = &route.path;
        if !path.starts_with('/') || path.contains(['?', '#']) || path.contains(char::is_whitespace)
        {
            c.fail(
                format!("{key}.path"),
                format!("{path:?} must be a path pattern starting with `/`, e.g. \"/api/**\""),
            );
        }
        for (j, method) in route.methods.iter_mut().enumerate() {
            if is_http_token(method) {
                *method = method.to_ascii_uppercase();
            } else {
                c.fail(
                    format!("{key}.methods[{j}]"),
                    format!("{method:?} is not an HTTP method"),
                );
            }
        }
        for (j, email) in route.allow_emails.iter_mut().enumerate() {
            let valid = match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty() && !domain.is_empty() && !domain.contains('@')
                }
                None => false,
            };
            if valid && !email.contains(char::is_whitespace) {
                *email = email.to_lowercase();
            } else {
                c.fail(
                    format!("{key}.allow_emails[{j}]"),
                    format!("{email:?} is not an e-mail address"),
                );
            }
        }
        for (j, domain) in route.allow_domains.iter_mut().enumerate() {
            if domain.is_empty()
                || domain.contains(['@', '/', ':'])
                || domain.contains(char::is_whitespace)
            {
                c.fail(
                    format!("{key}.allow_domains[{j}]"),
                    format!("{domain:?} is not a domain name (write \"example.com\")"),
                );
            } else {
                *domain = domain.to_lowercase();
            }
        }
        for (kind, names) in [
            ("allow_groups", &route.allow_groups),
            ("allow_roles", &route.allow_roles),
        ] {
            for (j, name) in names.iter().enumerate() {
                if name.trim().is_empty() || name.trim() != name {
                    c.fail(
                        format!("{key}.{kind}[{j}]"),
                        format!("{name:?} is empty or has leading or trailing whitespace"),
                    );
                }
            }
        }
        for (j, rule) in route.allow_claims.iter().enumerate() {
            if let Err(error) = ClaimPath::parse(&rule.claim) {
                c.fail(format!("{key}.allow_claims[{j}].claim"), error.to_string());
            }
            if rule.values.is_empty() {
                c.fail(
                    format!("{key}.allow_claims[{j}].values"),
                    "must list at least one value (an empty list would admit nobody)",
                );
            }
            for (k, value) in rule.values.iter().enumerate() {
                if value.is_empty() {
                    c.fail(
                        format!("{key}.allow_claims[{j}].values[{k}]"),
                        "is empty (an empty value never matches)",
                    );
                }
            }
        }
        let restricted = !route.allow_emails.is_empty()
            || !route.allow_domains.is_empty()
            || !route.allow_groups.is_empty()
            || !route.allow_roles.is_empty()
            || !route.allow_claims.is_empty();
        if route.bearer && route.access == RouteAccess::Public {
            c.fail(
                format!("{key}.bearer"),
                "a public route admits everyone; bearer tokens apply to \"protected\" and \"api\" routes",
            );
        } else if route.bearer && !any_bearer {
            c.fail(
                format!("{key}.bearer"),
                "no provider accepts bearer tokens; give one `bearer = { audiences = [...] }`",
            );
        }
        if route.access == RouteAccess::Public && restricted {
            c.fail(
                format!("{key}.access"),
                "a public route admits everyone, so allow_emails / allow_domains / allow_groups / allow_roles / allow_claims would have no effect; use \"protected\" or \"api\"",
            );
        }
    }
}

/// The most characters of a service client id (it becomes a metric label).
const MAX_CLIENT_ID: usize = 64;

fn service_clients(c: &mut Checker<'_>, config: &Config) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, client) in config.service_clients.iter().enumerate() {
        let key = format!("service_clients[{i}]");
        let id = &client.id;
        if id.is_empty() || id.len() > MAX_CLIENT_ID {
            c.fail(
                format!("{key}.id"),
                format!("must be 1 to {MAX_CLIENT_ID} characters"),
            );
        } else if !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            c.fail(
                format!("{key}.id"),
                format!("{id:?} may contain only letters, digits, `.`, `-` and `_`"),
            );
        } else if let Some(first) = seen.insert(id, i) {
            c.fail(
                format!("{key}.id"),
                format!(
                    "duplicate service client id {id:?} (also used by service_clients[{first}])"
                ),
            );
        }
        if client.allow.is_empty() {
            c.fail(
                format!("{key}.allow"),
                "must name what the client may do: \"token\", \"token:offline\", \"sessions\"",
            );
        }
    }
}
