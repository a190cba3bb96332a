//! The Redis URLs `[cache] url` accepts, checked without connecting.
//!
//! - `redis://[user:password@]host[:port][/db]` — one server, plain TCP.
//! - `rediss://[user:password@]host[:port][/db]` — one server over TLS, the
//!   certificate verified against the system roots (or a private CA the
//!   caller supplies). Verification cannot be switched off: the
//!   `#insecure` fragment some clients accept is refused.
//! - `redis+sentinel://[user:password@]host1[:port],host2[:port]/master[/db]`
//!   — Redis Sentinel: the sentinels (port 26379 by default) name the current
//!   master of the service `master`; `rediss+sentinel://` speaks TLS to the
//!   sentinels and to the master. The user and password are the master's;
//!   `?sentinel_username=…&sentinel_password=…` authenticate to the sentinels.
//!
//! Percent-encoded user names and passwords are decoded. Nothing here prints
//! a password: [`SentinelUrl`]'s `Debug` redacts it, and the errors quote
//! only the offending part.

use std::fmt;

/// The default port of a sentinel.
pub const SENTINEL_PORT: u16 = 26379;

/// A parsed Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisUrl {
    /// `redis://` or `rediss://`: one server, connected to as written.
    Server {
        /// Whether the scheme is `rediss` (TLS).
        tls: bool,
    },
    /// `redis+sentinel://` or `rediss+sentinel://`.
    Sentinel(SentinelUrl),
}

impl RedisUrl {
    /// Whether connections use TLS.
    pub fn tls(&self) -> bool {
        match self {
            RedisUrl::Server { tls } => *tls,
            RedisUrl::Sentinel(s) => s.tls,
        }
    }
}

/// A Redis Sentinel URL, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// TLS to the sentinels and to the master (`rediss+sentinel://`).
    pub tls: bool,
    /// The sentinels, `(host, port)`, in the order written.
    pub sentinels: Vec<(String, u16)>,
    /// The monitored service's name (`sentinel monitor <name> …`).
    pub master: String,
    /// The database number on the master.
    pub db: i64,
    /// The master's user name, if any.
    pub username: Option<String>,
    /// The master's password, if any.
    pub password: Option<String>,
    /// The sentinels' user name (`?sentinel_username=`), if any.
    pub sentinel_username: Option<String>,
    /// The sentinels' password (`?sentinel_password=`), if any.
    pub sentinel_password: Option<String>,
}

impl fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |p: &Option<String>| p.as_ref().map(|_| "[redacted]");
        f.debug_struct("SentinelUrl")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("sentinel_username", &self.sentinel_username)
            .field("sentinel_password", &redact(&self.sentinel_password))
            .finish()
    }
}

/// Why a Redis URL was refused. The messages say what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisUrlError {
    /// Not one of the four schemes.
    #[error(
        "unsupported scheme {0:?}: expected redis://, rediss:// (TLS), redis+sentinel:// or rediss+sentinel://"
    )]
    Scheme(String),
    /// `#insecure` or another fragment.
    #[error(
        "a fragment ({0:?}) is not allowed: TLS certificate verification cannot be disabled; trust a private CA with cache.redis_ca_file instead"
    )]
    Fragment(String),
    /// No host.
    #[error("missing host (expected {0})")]
    MissingHost(&'static str),
    /// A host that is not a name or an address.
    #[error("invalid host {0:?}")]
    Host(String),
    /// A port that is not a number from 1 to 65535 (quoted only when it is
    /// digits: anything else may be a misplaced password).
    #[error("invalid port {0}: expected a number from 1 to 65535")]
    Port(String),
    /// An `@` after the host: a password containing `/` was not encoded.
    #[error("an '@' follows the host: write '/' in a user name or password as %2F")]
    UnencodedSlash,
    /// A database that is not a non-negative number.
    #[error("invalid database {0:?}: expected a number (e.g. /0)")]
    Database(String),
    /// Several hosts in a plain `redis://` URL.
    #[error(
        "several hosts in a redis:// URL: for Redis Sentinel write redis+sentinel://host1:26379,host2:26379/<master name>"
    )]
    SeveralHosts,
    /// A sentinel URL without the master's name.
    #[error(
        "missing master name: write redis+sentinel://host1:26379,host2:26379/<master name>[/db]"
    )]
    MissingMaster,
    /// Something after `/<master>/<db>`.
    #[error("unexpected path {0:?}: expected /<master name>[/db]")]
    Path(String),
    /// A query parameter this form does not know.
    #[error("unknown query parameter {0:?}: expected sentinel_username or sentinel_password")]
    Query(String),
    /// Percent-encoding that does not decode to UTF-8.
    #[error("the {0} is not valid percent-encoded UTF-8")]
    Encoding(&'static str),
}

/// Parses and checks a Redis URL.
pub fn parse(url: &str) -> Result<RedisUrl, RedisUrlError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| RedisUrlError::Scheme(String::new()))?;
    let scheme = scheme.to_ascii_lowercase();
    let (tls, sentinel) = match scheme.as_str() {
        "redis" => (false, false),
        "rediss" => (true, false),
        "redis+sentinel" => (false, true),
        "rediss+sentinel" => (true, true),
        _ => return Err(RedisUrlError::Scheme(scheme)),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    if let Some(fragment) = fragment {
        return Err(RedisUrlError::Fragment(fragment.to_owned()));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if path.contains('@') {
        return Err(RedisUrlError::UnencodedSlash);
    }
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let example = if sentinel {
        "redis+sentinel://host1:26379,host2:26379/<master name>"
    } else {
        "redis://host:6379"
    };
    if hosts.is_empty() {
        return Err(RedisUrlError::MissingHost(example));
    }
    let default_port = if sentinel { SENTINEL_PORT } else { 6379 };
    let hosts = hosts
        .split(',')
        .map(|h| host_port(h, default_port, example))
        .collect::<Result<Vec<_>, _>>()?;

    if !sentinel {
        if hosts.len() > 1 {
            return Err(RedisUrlError::SeveralHosts);
        }
        match path.trim_start_matches('/') {
            "" => {}
            db => {
                database(db)?;
            }
        }
        // The query (`?protocol=resp3`) is the client library's to read.
        return Ok(RedisUrl::Server { tls });
    }

    let mut segments = path.trim_start_matches('/').split('/');
    let master = segments.next().unwrap_or_default();
    if master.is_empty() {
        return Err(RedisUrlError::MissingMaster);
    }
    let master = decode(master, "master name")?;
    let db = match segments.next() {
        None | Some("") => 0,
        Some(db) => database(db)?,
    };
    let extra: Vec<&str> = segments.filter(|s| !s.is_empty()).collect();
    if !extra.is_empty() {
        return Err(RedisUrlError::Path(path.to_owned()));
    }
    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            let user = (!user.is_empty())
                .then(|| decode(user, "user name"))
                .transpose()?;
            let password = password.map(|p| decode(p, "password")).transpose()?;
            (user, password)
        }
    };
    let mut sentinel_username = None;
    let mut sentinel_password = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sentinel_username" => sentinel_username = Some(decode(value, "sentinel user name")?),
            "sentinel_password" => sentinel_password = Some(decode(value, "sentinel password")?),
            other => return Err(RedisUrlError::Query(other.to_owned())),
        }
    }
    Ok(RedisUrl::Sentinel(SentinelUrl {
        tls,
        sentinels: hosts,
        master,
        db,
        username,
        password,
        sentinel_username,
        sentinel_password,
    }))
}

fn host_port(
    text: &str,
    default_port: u16,
    example: &'static str,
) -> Result<(String, u16), RedisUrlError> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| RedisUrlError::Host(text.to_owned()))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(RedisUrlError::Host(text.to_owned()));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(RedisUrlError::Host(text.to_owned())),
            },
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(RedisUrlError::MissingHost(example));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if !host.chars().all(valid) {
        return Err(RedisUrlError::Host(host.to_owned()));
    }
    let port = match port {
        None => default_port,
        Some(port) => match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ if port.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(RedisUrlError::Port(format!("{port:?}")));
            }
            _ => return Err(RedisUrlError::Port("(not a number)".to_owned())),
        },
    };
    Ok((host.to_owned(), port))
}

fn database(text: &str) -> Result<i64, RedisUrlError> {
    match text.parse::<i64>() {
        Ok(db) if db >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(db),
        _ => Err(RedisUrlError::Database(text.to_owned())),
    }
}

/// Percent-decodes `text` (no `+` for space: this is not a form).
fn decode(text: &str, what: &'static str) -> Result<String, RedisUrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(RedisUrlError::Encoding(what))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RedisUrlError::Encoding(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_urls_are_servers() {
        assert_eq!(
            parse("redis://127.0.0.1:6379/"),
            Ok(RedisUrl::Server { tls: false })
        );
        assert_eq!(
            parse("rediss://:p%40ss@cache.internal:6380/2"),
            Ok(RedisUrl::Server { tls: true })
        );
        assert_eq!(parse("REDISS://cache"), Ok(RedisUrl::Server { tls: true }));
    }

    #[test]
    fn sentinel_urls_name_their_sentinels_master_and_credentials() {
        let RedisUrl::Sentinel(s) = parse(
            "rediss+sentinel://app:s%3Acret@10.0.0.1,[::1]:26380,sentinel-c:5000/mymaster/3?sentinel_password=x%26y",
        )
        .unwrap() else {
            panic!("expected a sentinel URL");
        };
        assert!(s.tls);
        assert_eq!(
            s.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26379),
                ("::1".to_owned(), 26380),
                ("sentinel-c".to_owned(), 5000)
            ]
        );
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.db, 3);
        assert_eq!(s.username.as_deref(), Some("app"));
        assert_eq!(s.password.as_deref(), Some("s:cret"));
        assert_eq!(s.sentinel_password.as_deref(), Some("x&y"));
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s:cret") && !debug.contains("x&y"),
            "{debug}"
        );
    }

    #[test]
    fn malformed_urls_are_refused_with_the_reason() {
        let cases = [
            ("memcached://x", "unsupported scheme"),
            ("rediss://cache:6380/#insecure", "cannot be disabled"),
            ("redis://", "missing host"),
            ("redis://cache:http", "invalid port"),
            ("redis://cache:0", "invalid port"),
            ("redis://cache/zero", "invalid database"),
            ("redis://a:1,b:2/0", "redis+sentinel://"),
            ("redis+sentinel://a:26379,b:26379", "missing master name"),
            ("redis+sentinel://a,b/mymaster/one", "invalid database"),
            ("redis+sentinel://a,/mymaster", "missing host"),
            ("redis+sentinel://a/mymaster/0/extra", "unexpected path"),
            ("redis+sentinel://a/m?password=x", "unknown query parameter"),
            ("redis+sentinel://u:%zz@a/m", "password is not valid"),
            ("redis://ca che", "invalid host"),
            ("redis://u:pa/ss@cache", "%2F"),
        ];
        for (url, expected) in cases {
            let err = parse(url).expect_err(url).to_string();
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains("pa/ss"), "{url}: {err}");
        }
    }
}
