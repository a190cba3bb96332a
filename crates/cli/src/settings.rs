//! From a validated [`Config`] to the settings of each part: the one place
//! where configuration becomes behaviour. Every decision that the
//! configuration does not spell out is a named constant here, and every
//! configuration enum converts by an exhaustive `match` (a new variant breaks
//! the build here, never a string comparison at run time).

use crate::app::{AppError, HEALTH_PATH, METRICS_PATH, READY_PATH};
use authgate_config::{
    CacheConfig, Config, ProviderConfig, ProviderPreset, RouteAccess, Secret, ServicePermission,
    SignOutMode,
};
use authgate_core::cookie::CookieFormat;
use authgate_core::refresh::{RefreshSettings, RetryPolicy};
use authgate_core::token::ExpiryPolicy;
use authgate_http::{
    Access, AllowList, ClaimRule, GatewaySettings, ProxySettings, RefreshMode, RevocationCheck,
    RouteRule, RouteRules, ServiceClient, SessionStrategy, TrustedProxies,
};
use authgate_oauth::workspace::WorkspaceGroupsSettings;
use authgate_oauth::{
    BearerSettings, EndpointOverrides, HttpSettings, Preset, ProviderSettings, SignOut,
    parse_bearer_algorithm,
};
use authgate_refresh::BreakerSettings;
use authgate_store::KeyRing;
use authgate_store::cache::CacheOptions;
use axum::http::Method;
use std::sync::Arc;
use std::time::Duration;

/// How much longer than one provider call (`refresh.timeout`) a refresh
/// lease lasts: the re-read under the lease and the token write must fit in
/// it too. `lease_ttl = refresh.timeout + LEASE_MARGIN`.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How many provider calls' worth of time a whole refresh may take, waiting
/// for another holder and backing off included.
/// `deadline = refresh.timeout × DEADLINE_CALLS`.
pub const DEADLINE_CALLS: u32 = 2;

/// The Redis key prefix of the refresh hand-off (locks and published results).
pub const REDIS_SIGNAL_PREFIX: &str = "authgate:refresh:";

/// The gateway's behaviour: `[server]`, `[session]` and `[refresh]`.
pub fn gateway_settings(config: &Config) -> GatewaySettings {
    GatewaySettings {
        public_url: config.server.public_url.clone(),
        base_path: config.server.base_path.clone(),
        secure_cookies: config.session.secure_cookies,
        strategy: session_strategy(config.session.strategy),
        max_age: config.session.max_age,
        update_age: config.session.update_age,
        refresh_mode: refresh_mode(config.refresh.mode),
        revocation_check: match config.session.revocation_check {
            authgate_config::RevocationCheck::Refresh => RevocationCheck::Refresh,
            authgate_config::RevocationCheck::Request => RevocationCheck::Request,
        },
        policy: ExpiryPolicy {
            skew: config.refresh.skew,
        },
        pass_access_token: config.server.pass_access_token,
        pass_authorization_header: config.server.pass_authorization_header,
        pass_auth_cookies: config.server.pass_auth_cookies,
        trusted_proxies: TrustedProxies::new(config.server.trusted_proxies.clone()),
        adopt_guide_cookies: config.session.adopt_guide_cookies.clone(),
        cookie_domain: config.session.cookie_domain.clone(),
        redirect_hosts: config.server.allowed_redirect_hosts.clone(),
    }
}

fn session_strategy(strategy: authgate_config::SessionStrategy) -> SessionStrategy {
    match strategy {
        authgate_config::SessionStrategy::Jwt => SessionStrategy::Jwt,
        authgate_config::SessionStrategy::Database => SessionStrategy::Database,
    }
}

fn refresh_mode(mode: authgate_config::RefreshMode) -> RefreshMode {
    match mode {
        authgate_config::RefreshMode::Inline => RefreshMode::Inline,
        authgate_config::RefreshMode::Lazy => RefreshMode::Lazy,
        authgate_config::RefreshMode::Background => RefreshMode::Background,
    }
}

/// `session.cookie_format`.
pub fn cookie_format(config: &Config) -> CookieFormat {
    match config.session.cookie_format {
        authgate_config::CookieFormat::AuthJs => CookieFormat::AuthJs,
        authgate_config::CookieFormat::NextAuthV4 => CookieFormat::NextAuthV4,
    }
}

/// The session secrets (`session.secret`): the first encrypts, all decrypt.
pub fn session_secrets(config: &Config) -> Vec<Secret> {
    config.session.secret.clone()
}

/// The token encryption keys: `store.encryption_keys`, or derived from the
/// session secrets when none are configured.
pub fn key_ring(config: &Config) -> Result<KeyRing, authgate_store::CryptoError> {
    let secrets = config
        .store
        .encryption_keys
        .as_ref()
        .unwrap_or(&config.session.secret);
    KeyRing::from_secrets(secrets)
}

/// The refresh tunables of `[refresh]` (the staleness policy comes from
/// [`gateway_settings`]; the gateway builder applies it to both).
pub fn refresh_settings(config: &Config) -> RefreshSettings {
    let timeout = config.refresh.timeout;
    RefreshSettings {
        lease_ttl: timeout + LEASE_MARGIN,
        deadline: timeout * DEADLINE_CALLS,
        retry: RetryPolicy {
            max_attempts: config.refresh.retries + 1,
            ..RetryPolicy::default()
        },
        persist_deadline: config.refresh.persist_deadline,
        ..RefreshSettings::default()
    }
}

/// `[refresh.circuit_breaker]`.
pub fn breaker_settings(config: &Config) -> BreakerSettings {
    BreakerSettings {
        failure_threshold: config.refresh.circuit_breaker.failure_threshold,
        open_for: config.refresh.circuit_breaker.open_for,
    }
}

/// The outbound HTTP client's settings: one provider call lasts at most
/// `refresh.timeout`.
pub fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        timeout: config.refresh.timeout,
        ..HttpSettings::default()
    }
}

/// `[cache]`. Reads `cache.redis_ca_file` (the one file this reads), so a
/// missing or unreadable CA stops the start with the file named.
pub fn cache_options(cache: &CacheConfig) -> Result<CacheOptions, RedisCaError> {
    let redis_ca = match &cache.redis_ca_file {
        None => None,
        Some(path) => Some(
            std::fs::read(path)
                .map(Arc::from)
                .map_err(|source| RedisCaError {
                    path: path.display().to_string(),
                    source,
                })?,
        ),
    };
    Ok(CacheOptions {
        ttl: cache.ttl,
        redis_ca,
        ..CacheOptions::default()
    })
}

/// `cache.redis_ca_file` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cache.redis_ca_file: cannot read {path}: {source}")]
pub struct RedisCaError {
    /// The configured path.
    pub path: String,
    /// What reading it said.
    #[source]
    pub source: std::io::Error,
}

/// The reverse proxy's settings (`[server]`); the gateway builder adds the
/// trusted proxies and the owned `Authorization` header.
pub fn proxy_settings(config: &Config) -> ProxySettings {
    ProxySettings {
        response_timeout: config.server.upstream_timeout,
        preserve_host: config.server.preserve_host,
        ..ProxySettings::default()
    }
}

/// The paths authgate answers itself on `server.listen`, so the upstream
/// never sees them: the base path (its endpoints), `/healthz`, `/readyz`,
/// and `/metrics` unless `server.metrics_listen` moves it.
pub fn reserved_paths(config: &Config) -> Vec<&str> {
    let mut paths = vec![config.server.base_path.as_str(), HEALTH_PATH, READY_PATH];
    if config.server.metrics_listen.is_none() {
        paths.push(METRICS_PATH);
    }
    paths
}

/// One `[[providers]]` entry (`server.public_url` + `/` is the default
/// `post_logout_redirect_uri`).
pub fn provider_settings(p: &ProviderConfig, config: &Config) -> ProviderSettings {
    let mut s = ProviderSettings::new(p.id.clone(), p.client_id.clone(), p.client_secret.expose());
    s.name = p.name.clone();
    s.preset = p.preset.map(preset);
    s.issuer = p.issuer.clone();
    s.scopes = p.scopes.clone();
    s.authorization_params = p.authorization_params.clone();
    s.endpoints = EndpointOverrides {
        authorization: p.endpoints.authorization.clone(),
        token: p.endpoints.token.clone(),
        userinfo: p.endpoints.userinfo.clone(),
        revocation: p.endpoints.revocation.clone(),
        jwks_uri: p.endpoints.jwks.clone(),
        introspection: None,
        end_session: p.endpoints.end_session.clone(),
        emails: p.endpoints.emails.clone(),
    };
    s.tenant = p.tenant.clone();
    s.link_by_email = p.link_by_email;
    s.groups_claim = p.groups_claim.clone();
    s.roles_claim = p.roles_claim.clone();
    s.bearer = p.bearer.as_ref().map(|b| BearerSettings {
        audiences: b.audiences.clone(),
        algorithms: b
            .algorithms
            .iter()
            .filter_map(|a| parse_bearer_algorithm(a).ok())
            .collect(),
        introspect: b.introspect,
    });
    s.workspace_groups = p.google_groups.as_ref().map(|g| WorkspaceGroupsSettings {
        // Validation read it already; a file gone since fails the provider's
        // resolution with a clear error.
        service_account_key: std::fs::read_to_string(&g.service_account_file)
            .unwrap_or_default()
            .into(),
        admin_email: g.admin_email.clone(),
        directory_url: g.directory_url.clone(),
    });
    s.signout = match p.signout {
        SignOutMode::Local => SignOut::Local,
        SignOutMode::Provider => SignOut::Provider {
            post_logout_redirect_uri: p.post_logout_redirect_uri.clone().unwrap_or_else(|| {
                let mut root = config.server.public_url.clone();
                let path = format!("{}/", root.path().trim_end_matches('/'));
                root.set_path(&path);
                root
            }),
        },
    };
    s
}

fn preset(preset: ProviderPreset) -> Preset {
    match preset {
        ProviderPreset::Google => Preset::Google,
        ProviderPreset::GitHub => Preset::GitHub,
        ProviderPreset::MicrosoftEntraId => Preset::MicrosoftEntraId,
        ProviderPreset::GitLab => Preset::GitLab,
        ProviderPreset::Keycloak => Preset::Keycloak,
        ProviderPreset::Okta => Preset::Okta,
        ProviderPreset::Auth0 => Preset::Auth0,
    }
}

fn access(access: RouteAccess) -> Access {
    match access {
        RouteAccess::Public => Access::Public,
        RouteAccess::Protected => Access::Protected,
        RouteAccess::Api => Access::Api,
    }
}

/// `[[routes]]`: the compiled rules, each with its allow-list. A rule that
/// names a [reserved path](reserved_paths) is refused: it would promise the
/// upstream requests that authgate answers itself.
pub fn routes(config: &Config) -> Result<RouteRules, AppError> {
    compile_routes(&config.routes, config)
}

/// `[[upstreams]]`: each with its own routes (`None`: the top-level
/// `[[routes]]`) and header options (the server's unless set).
pub fn host_upstreams(config: &Config) -> Result<Vec<authgate_http::HostUpstream>, AppError> {
    let server = &config.server;
    let mut out = Vec::with_capacity(config.upstreams.len());
    for (index, u) in config.upstreams.iter().enumerate() {
        let routes = if u.routes.is_empty() {
            None
        } else {
            Some(
                compile_routes(&u.routes, config).map_err(|source| AppError::UpstreamRoutes {
                    upstream: index,
                    source: Box::new(source),
                })?,
            )
        };
        out.push(authgate_http::HostUpstream {
            host: u.host.clone(),
            path_prefix: u.path_prefix.clone(),
            url: u.url.clone(),
            proxy: ProxySettings {
                preserve_host: u.preserve_host.unwrap_or(server.preserve_host),
                ..proxy_settings(config)
            },
            routes,
            pass_access_token: u.pass_access_token.unwrap_or(server.pass_access_token),
            pass_authorization_header: u
                .pass_authorization_header
                .unwrap_or(server.pass_authorization_header),
            pass_auth_cookies: u.pass_auth_cookies.unwrap_or(server.pass_auth_cookies),
        });
    }
    Ok(out)
}

fn compile_routes(
    list: &[authgate_config::RouteConfig],
    config: &Config,
) -> Result<RouteRules, AppError> {
    let mut rules = Vec::with_capacity(list.len());
    for (index, r) in list.iter().enumerate() {
        let mut rule = RouteRule::new(r.path.clone(), access(r.access)).with_bearer(r.bearer);
        if !r.methods.is_empty() {
            let methods = r
                .methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.as_bytes()).map_err(|_| AppError::Method {
                        index,
                        method: m.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rule = rule.with_methods(methods);
        }
        rules.push(
            rule.with_allow(AllowList {
                emails: r.allow_emails.clone(),
                domains: r.allow_domains.clone(),
                groups: r.allow_groups.clone(),
                roles: r.allow_roles.clone(),
                claims: r
                    .allow_claims
                    .iter()
                    .map(|c| ClaimRule {
                        claim: c.claim.clone(),
                        values: c.values.clone(),
                    })
                    .collect(),
            }),
        );
    }
    let rules = RouteRules::new(rules)?;
    for reserved in reserved_paths(config) {
        if let Some((index, rule)) = rules.rule_naming(reserved) {
            return Err(AppError::ReservedPath {
                index,
                pattern: rule.pattern.clone(),
                reserved: reserved.to_owned(),
            });
        }
    }
    Ok(rules)
}

/// `[[service_clients]]`.
pub fn service_clients(config: &Config) -> Vec<ServiceClient> {
    config
        .service_clients
        .iter()
        .map(|c| ServiceClient {
            id: c.id.clone(),
            secret_hash: c.secret_hash.clone(),
            allow: c.allow.iter().copied().map(permission).collect(),
            rate_limit: c.rate_limit,
        })
        .collect()
}

fn permission(permission: ServicePermission) -> authgate_http::ServicePermission {
    match permission {
        ServicePermission::Token => authgate_http::ServicePermission::Token,
        ServicePermission::TokenOffline => authgate_http::ServicePermission::TokenOffline,
        ServicePermission::Sessions => authgate_http::ServicePermission::Sessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn config(session: &str, rest: &str) -> Config {
        let text = format!(
            "[session]\nsecret = [\"test-secret-at-least-32-chars-long!!\"]\n{session}{rest}"
        );
        Config::from_sources(Some(("test.toml", &text)), Vec::new()).unwrap()
    }

    #[test]
    fn the_hidden_refresh_decisions_follow_the_named_constants() {
        let c = config(
            "",
            "[refresh]\ntimeout = \"7s\"\nretries = 2\nskew = \"3s\"\n",
        );
        let r = refresh_settings(&c);
        assert_eq!(r.lease_ttl, Duration::from_secs(7) + LEASE_MARGIN);
        assert_eq!(r.deadline, Duration::from_secs(14));
        assert_eq!(r.retry.max_attempts, 3);
        assert_eq!(r.persist_deadline, c.refresh.persist_deadline);
        assert_eq!(gateway_settings(&c).policy.skew, Duration::from_secs(3));
    }

    #[test]
    fn every_config_preset_is_the_oauth_preset_of_the_same_name() {
        for p in [
            ProviderPreset::Google,
            ProviderPreset::GitHub,
            ProviderPreset::MicrosoftEntraId,
            ProviderPreset::GitLab,
            ProviderPreset::Keycloak,
            ProviderPreset::Okta,
            ProviderPreset::Auth0,
        ] {
            assert_eq!(Preset::from_str(p.as_str()).ok(), Some(preset(p)), "{p:?}");
        }
    }

    #[test]
    fn a_route_rule_may_not_name_a_path_authgate_answers_itself() {
        let route = |path: &str| format!("[[routes]]\npath = \"{path}\"\naccess = \"public\"\n");
        for (server, path, reserved) in [
            ("", "/metrics", "/metrics"),
            ("", "/Metrics/**", "/metrics"),
            ("", "/healthz", "/healthz"),
            ("", "/readyz/x", "/readyz"),
            ("", "/auth/**", "/auth"),
            (
                "[server]\nbase_path = \"/api/auth\"\n",
                "/api/auth/x",
                "/api/auth",
            ),
        ] {
            let c = config("", &format!("{server}{}{}", route("/x"), route(path)));
            match routes(&c) {
                Err(AppError::ReservedPath {
                    index: 1,
                    reserved: r,
                    ..
                }) => assert_eq!(r, reserved, "{path}"),
                other => panic!("{path}: {other:?}"),
            }
        }
        for (server, path) in [
            ("", "/**"),
            ("", "/api/**"),
            ("", "/metricsx"),
            (
                "[server]\nmetrics_listen = \"127.0.0.1:9090\"\n",
                "/metrics/**",
            ),
            ("[server]\nbase_path = \"/api/auth\"\n", "/auth/**"),
        ] {
            let c = config("", &format!("{server}{}", route(path)));
            assert!(routes(&c).is_ok(), "{server} {path}");
        }
    }

    #[test]
    fn config_enums_convert_to_their_counterparts() {
        let c = config(
            "strategy = \"database\"\ncookie_format = \"next-auth-v4\"\n",
            "[refresh]\nmode = \"background\"\n",
        );
        let s = gateway_settings(&c);
        assert_eq!(s.strategy, SessionStrategy::Database);
        assert_eq!(s.refresh_mode, RefreshMode::Background);
        assert_eq!(cookie_format(&c), CookieFormat::NextAuthV4);
    }

    #[test]
    fn service_clients_convert_with_every_permission_and_their_rate() {
        let hash =
            "$hmac-sha256$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let c = config(
            "",
            &format!(
                "[[service_clients]]\nid = \"job\"\nsecret_hash = \"{hash}\"\nallow = [\"token\", \"token:offline\", \"sessions\"]\nrate_limit = \"5/s\"\n"
            ),
        );
        let clients = service_clients(&c);
        assert_eq!(clients.len(), 1);
        assert_eq!(clients[0].id, "job");
        assert_eq!(clients[0].secret_hash.to_string(), hash);
        assert_eq!(
            clients[0].allow,
            [
                authgate_http::ServicePermission::Token,
                authgate_http::ServicePermission::TokenOffline,
                authgate_http::ServicePermission::Sessions
            ]
        );
        assert_eq!(clients[0].rate_limit.to_string(), "5/s");
    }
}
