//! A readable summary of a loaded configuration with every secret redacted.

use std::fmt::Write as _;

use crate::duration::format_duration;
use crate::{Config, CookieFormat, Secret, SessionStrategy};

fn secrets(list: &[Secret]) -> String {
    let shown: Vec<String> = list.iter().map(Secret::redacted).collect();
    let noun = if list.len() == 1 { "key" } else { "keys" };
    format!("{} {noun}: {}", list.len(), shown.join(", "))
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Config {
    /// The session cookie's name as derived from `cookie_format` and `secure_cookies`.
    pub fn session_cookie_name(&self) -> String {
        let base = match self.session.cookie_format {
            CookieFormat::AuthJs => "authjs.session-token",
            CookieFormat::NextAuthV4 => "next-auth.session-token",
        };
        if self.session.secure_cookies {
            format!("__Secure-{base}")
        } else {
            base.to_owned()
        }
    }

    /// A multi-line, human-readable summary (for `authgate check`). Secrets appear only
    /// as `[redacted; N bytes]`; passwords in service URLs are replaced by `[redacted]`.
    pub fn redacted_summary(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) -> std::fmt::Result {
        let s = &self.server;
        writeln!(out, "[server]")?;
        writeln!(out, "  listen          = {}", s.listen)?;
        writeln!(out, "  public_url      = {}", s.public_url)?;
        match &s.upstream {
            Some(u) => writeln!(out, "  upstream        = {u}")?,
            None => writeln!(out, "  upstream        = (none: forward-auth only)")?,
        }
        let proxies: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        if proxies.is_empty() {
            writeln!(out, "  trusted_proxies = (none)")?;
        } else {
            writeln!(out, "  trusted_proxies = {}", proxies.join(", "))?;
        }
        writeln!(out, "  base_path       = {}", s.base_path)?;
        writeln!(out, "  pass_access_token = {}", s.pass_access_token)?;
        writeln!(
            out,
            "  pass_authorization_header = {}",
            s.pass_authorization_header
        )?;
        writeln!(out, "  pass_auth_cookies = {}", s.pass_auth_cookies)?;
        writeln!(out, "  preserve_host   = {}", s.preserve_host)?;
        if !s.allowed_redirect_hosts.is_empty() {
            writeln!(
                out,
                "  allowed_redirect_hosts = {}",
                quoted_list(&s.allowed_redirect_hosts)
            )?;
        }
        match s.metrics_listen {
            Some(addr) => writeln!(out, "  metrics_listen  = {addr}")?,
            None => writeln!(out, "  metrics_listen  = (none: /metrics on listen)")?,
        }
        writeln!(
            out,
            "  upstream_timeout = {}",
            crate::format_duration(s.upstream_timeout)
        )?;

        let se = &self.session;
        writeln!(out, "[session]")?;
        let strategy = match se.strategy {
            SessionStrategy::Jwt => "jwt",
            SessionStrategy::Database => "database",
        };
        writeln!(out, "  strategy        = {strategy}")?;
        writeln!(out, "  secret          = {}", secrets(&se.secret))?;
        writeln!(out, "  max_age         = {}", format_duration(se.max_age))?;
        writeln!(
            out,
            "  update_age      = {}",
            format_duration(se.update_age)
        )?;
        let format = match se.cookie_format {
            CookieFormat::AuthJs => "authjs",
            CookieFormat::NextAuthV4 => "next-auth-v4",
        };
        writeln!(
            out,
            "  cookie_format   = {format} (cookie {})",
            self.session_cookie_name()
        )?;
        writeln!(out, "  secure_cookies  = {}", se.secure_cookies)?;
        let check = match se.revocation_check {
            crate::RevocationCheck::Refresh => "refresh",
            crate::RevocationCheck::Request => "request",
        };
        writeln!(out, "  revocation_check = {check}")?;
        match &se.cookie_domain {
            Some(domain) => writeln!(out, "  cookie_domain   = {domain} (session cookie only)")?,
            None => writeln!(out, "  cookie_domain   = (none: host-only)")?,
        }
        if let Some(provider) = &se.adopt_guide_cookies {
            writeln!(out, "  adopt_guide_cookies = {provider}")?;
        }

        let r = &self.refresh;
        writeln!(out, "[refresh]")?;
        let mode = match r.mode {
            crate::RefreshMode::Inline => "inline",
            crate::RefreshMode::Lazy => "lazy",
            crate::RefreshMode::Background => "background",
        };
        writeln!(out, "  mode            = {mode}")?;
        writeln!(out, "  skew            = {}", format_duration(r.skew))?;
        writeln!(out, "  retries         = {}", r.retries)?;
        writeln!(out, "  timeout         = {}", format_duration(r.timeout))?;
        writeln!(
            out,
            "  persist_deadline = {}",
            format_duration(r.persist_deadline)
        )?;
        writeln!(
            out,
            "  circuit_breaker = opens after {} failures, for {}",
            r.circuit_breaker.failure_threshold,
            format_duration(r.circuit_breaker.open_for)
        )?;

        writeln!(out, "[store]")?;
        writeln!(out, "  url             = {}", self.store.url)?;
        match &self.store.encryption_keys {
            Some(keys) => writeln!(out, "  encryption_keys = {}", secrets(keys))?,
            None => writeln!(out, "  encryption_keys = (derived from session secrets)")?,
        }

        writeln!(out, "[cache]")?;
        writeln!(out, "  url             = {}", self.cache.url)?;
        if let Some(ca) = &self.cache.redis_ca_file {
            writeln!(out, "  redis_ca_file   = {}", ca.display())?;
        }
        writeln!(
            out,
            "  ttl             = {}",
            format_duration(self.cache.ttl)
        )?;

        if self.providers.is_empty() {
            writeln!(out, "providers: none")?;
        }
        for p in &self.providers {
            writeln!(out, "[[providers]] {}", p.id)?;
            if let Some(name) = &p.name {
                writeln!(out, "  name            = {name}")?;
            }
            if let Some(preset) = p.preset {
                writeln!(out, "  preset          = {}", preset.as_str())?;
            }
            if let Some(issuer) = &p.issuer {
                writeln!(out, "  issuer          = {issuer}")?;
            }
            if let Some(tenant) = &p.tenant {
                writeln!(out, "  tenant          = {tenant}")?;
            }
            if p.link_by_email {
                writeln!(out, "  link_by_email   = true")?;
            }
            if p.signout == crate::SignOutMode::Provider {
                writeln!(out, "  signout         = provider")?;
            }
            if let Some(uri) = &p.post_logout_redirect_uri {
                writeln!(out, "  post_logout_redirect_uri = {uri}")?;
            }
            writeln!(out, "  client_id       = {}", p.client_id)?;
            writeln!(out, "  client_secret   = {}", p.client_secret.redacted())?;
            if p.scopes.is_empty() {
                writeln!(out, "  scopes          = (provider defaults)")?;
            } else {
                writeln!(out, "  scopes          = {}", quoted_list(&p.scopes))?;
            }
            if !p.authorization_params.is_empty() {
                let params: Vec<String> = p
                    .authorization_params
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                writeln!(out, "  authorization_params = {}", params.join(", "))?;
            }
            let e = &p.endpoints;
            for (name, url) in [
                ("authorization", &e.authorization),
                ("token", &e.token),
                ("userinfo", &e.userinfo),
                ("revocation", &e.revocation),
                ("jwks", &e.jwks),
                ("emails", &e.emails),
            ] {
                if let Some(url) = url {
                    writeln!(out, "  endpoints.{name} = {url}")?;
                }
            }
            if let Some(g) = &p.google_groups {
                // The file's path only: its content (a private key) never appears.
                writeln!(
                    out,
                    "  google_groups   = service account {} as {}{}",
                    g.service_account_file.display(),
                    g.admin_email,
                    g.directory_url
                        .as_ref()
                        .map(|u| format!(", directory {u}"))
                        .unwrap_or_default()
                )?;
            }
        }

        if self.routes.is_empty() {
            writeln!(out, "routes: none")?;
        } else {
            writeln!(out, "routes (first match wins):")?;
        }
        for route in &self.routes {
            write!(out, "  {:<24} {}", route.path, route.access.as_str())?;
            if !route.methods.is_empty() {
                write!(out, "  methods {}", route.methods.join(","))?;
            }
            if !route.allow_emails.is_empty() {
                write!(out, "  emails {}", quoted_list(&route.allow_emails))?;
            }
            if !route.allow_domains.is_empty() {
                write!(out, "  domains {}", quoted_list(&route.allow_domains))?;
            }
            if !route.allow_groups.is_empty() {
                write!(out, "  groups {}", quoted_list(&route.allow_groups))?;
            }
            if !route.allow_roles.is_empty() {
                write!(out, "  roles {}", quoted_list(&route.allow_roles))?;
            }
            for rule in &route.allow_claims {
                write!(
                    out,
                    "  claim {} in {}",
                    rule.claim,
                    quoted_list(&rule.values)
                )?;
            }
            writeln!(out)?;
        }

        for u in &self.upstreams {
            writeln!(
                out,
                "[[upstreams]] {}{} -> {}",
                u.host,
                u.path_prefix.as_deref().unwrap_or(""),
                u.url
            )?;
            if u.routes.is_empty() {
                writeln!(out, "  routes: the top-level [[routes]]")?;
            } else {
                let paths: Vec<String> = u
                    .routes
                    .iter()
                    .map(|r| format!("{} {}", r.path, r.access.as_str()))
                    .collect();
                writeln!(out, "  routes: {}", paths.join(", "))?;
            }
        }

        for client in &self.service_clients {
            let allow: Vec<&str> = client.allow.iter().map(|p| p.as_str()).collect();
            writeln!(out, "[[service_clients]] {}", client.id)?;
            writeln!(out, "  secret_hash     = [hmac-sha256 hash]")?;
            writeln!(out, "  allow           = {}", allow.join(", "))?;
            writeln!(out, "  rate_limit      = {}", client.rate_limit)?;
        }
        Ok(())
    }
}
