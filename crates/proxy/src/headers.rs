//! Header hygiene between the client and the upstream.
//!
//! Everything here is a pure function over a [`HeaderMap`]; [`crate::forward`] applies them in
//! this order, and a forward-auth or in-process integration can do the same:
//!
//! 1. **Identity headers** ([`OwnedHeaders::strip`], [`strip_identity_headers`]). The gateway
//!    *owns* the headers that tell the upstream who the user is (`X-Auth-Request-User`,
//!    `-Email`, `-Name`, `-Groups`, `X-Forwarded-Access-Token`, and `Authorization` when the
//!    gateway sends a Bearer token). Any client-sent copy is removed on every request, signed
//!    in or not. Names are compared through [`canonical_header_name`]: ASCII case is ignored
//!    and every character other than a letter or digit counts as `-`. hyper already lower-cases
//!    names, but `x_auth_request_user` is a *different* header to HTTP while CGI, WSGI, PHP,
//!    Rack and nginx (`underscores_in_headers on`) all expose it as `HTTP_X_AUTH_REQUEST_USER`,
//!    the same variable as the real header. Such variants are therefore stripped too.
//! 2. **Hop-by-hop headers** ([`remove_hop_by_hop`]): `Connection` and every header it names,
//!    `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding` and `Upgrade`. For a
//!    WebSocket upgrade that is being forwarded, `Upgrade` and `Connection: upgrade` are kept.
//! 3. **Forwarding headers** ([`set_forwarding_headers`]): `X-Forwarded-For` gets the direct
//!    peer appended to the client's list when the peer is a [trusted proxy](TrustedProxies),
//!    and is replaced by the peer's address otherwise; `X-Forwarded-Proto`,
//!    `X-Forwarded-Host` and `X-Real-IP` ([`client_ip`]) are always set by the gateway. From an
//!    untrusted peer, other client-claimable forwarding headers (`Forwarded`,
//!    `X-Forwarded-Port`, `-Prefix`, `-Ssl`, `-Scheme`, `X-Client-IP`, `True-Client-IP`) are
//!    dropped; from a trusted peer their exact spelling is kept and only variants are dropped.
//! 4. **Request id** ([`request_id`]): a valid `X-Request-Id` from a trusted proxy is kept,
//!    otherwise a fresh UUIDv4 is generated.
//!
//! [`remove_cookies`] takes chosen cookies out of the `Cookie` header(s) and leaves every other
//! cookie byte for byte; the gateway uses it to keep its own cookies from the upstream.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use ipnet::IpNet;

/// The identity headers the gateway owns by default (lower case).
///
/// Besides the headers authgate sends, this covers the spellings oauth2-proxy uses, so an
/// application migrated from it cannot be fed forged values under the old names.
/// `Authorization` is not included: add it with [`OwnedHeaders::with`] when the gateway sends
/// `Authorization: Bearer`, otherwise clients' own credentials must pass through.
pub const DEFAULT_IDENTITY_HEADERS: &[&str] = &[
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-name",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
    "x-forwarded-access-token",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
];

/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Real-IP`.
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The headers the gateway always sets itself; client copies and variants are replaced.
const GATEWAY_FORWARDING: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Forwarding headers kept only from trusted proxies.
const PROXY_CLAIMS: &[&str] = &[
    "forwarded",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-client-ip",
    "true-client-ip",
];

/// The name an upstream framework may see for `name`: ASCII lower case, with every
/// character that is not a letter or digit replaced by `-`.
///
/// ```
/// use authgate_proxy::headers::canonical_header_name;
/// assert_eq!(canonical_header_name("X_Auth_Request.User"), "x-auth-request-user");
/// ```
pub fn canonical_header_name(name: &str) -> String {
    name.chars().map(canonical_char).collect()
}

fn canonical_char(c: char) -> char {
    if c.is_ascii_alphanumeric() {
        c.to_ascii_lowercase()
    } else {
        '-'
    }
}

/// Whether `name`'s [canonical name](canonical_header_name) is `canonical` (itself a
/// canonical name), without building it: this runs for every header of every request.
fn has_canonical_name(name: &str, canonical: &str) -> bool {
    // A character becomes one ASCII character, so a canonical name has as many bytes as
    // `name` has characters: an ASCII name must be exactly as long, and a name with fewer
    // bytes has too few characters.
    match name.len().cmp(&canonical.len()) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal if name.is_ascii() => name
            .bytes()
            .zip(canonical.bytes())
            .all(|(b, c)| canonical_char(b.into()) == char::from(c)),
        _ => name.chars().map(canonical_char).eq(canonical.chars()),
    }
}

/// Whether `a` and `b` have the same [canonical name](canonical_header_name).
fn same_canonical_name(a: &str, b: &str) -> bool {
    if b.bytes()
        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == b'-')
    {
        has_canonical_name(a, b)
    } else {
        a.chars()
            .map(canonical_char)
            .eq(b.chars().map(canonical_char))
    }
}

/// The set of header names the gateway owns: client copies (and look-alike variants) are
/// always stripped before a request reaches the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedHeaders {
    canonical: Vec<String>,
}

impl Default for OwnedHeaders {
    /// [`DEFAULT_IDENTITY_HEADERS`].
    fn default() -> Self {
        OwnedHeaders::new(DEFAULT_IDENTITY_HEADERS.iter().copied())
    }
}

impl OwnedHeaders {
    /// Exactly the given names (any spelling; they are canonicalised).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned = OwnedHeaders {
            canonical: Vec::new(),
        };
        for name in names {
            owned = owned.with(name.as_ref());
        }
        owned
    }

    /// Adds one name (e.g. `"authorization"` when the gateway sends a Bearer token).
    pub fn with(mut self, name: &str) -> Self {
        let canonical = canonical_header_name(name);
        if !self.canonical.contains(&canonical) {
            self.canonical.push(canonical);
        }
        self
    }

    /// Whether `name`, or a variant of it, is owned by the gateway.
    pub fn is_owned(&self, name: &str) -> bool {
        self.canonical.iter().any(|c| has_canonical_name(name, c))
    }

    /// The canonical owned names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.canonical.iter().map(String::as_str)
    }

    /// Removes every header whose canonical name is owned; returns how many distinct header
    /// names were removed.
    pub fn strip(&self, headers: &mut HeaderMap) -> usize {
        remove_matching(headers, |name| self.is_owned(name))
    }
}

/// Removes client copies of the [default identity headers](DEFAULT_IDENTITY_HEADERS) and their
/// variants; returns how many distinct header names were removed. Use [`OwnedHeaders`] for a
/// configured set.
pub fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    OwnedHeaders::default().strip(headers)
}

/// Removes every header of `headers` whose canonical name is that of a header in `names`
/// (a client's copies and variants of headers the caller is about to set).
pub(crate) fn strip_variants_of(headers: &mut HeaderMap, names: &HeaderMap) -> usize {
    if names.is_empty() {
        return 0;
    }
    remove_matching(headers, |name| {
        names.keys().any(|n| same_canonical_name(name, n.as_str()))
    })
}

fn remove_matching(headers: &mut HeaderMap, mut pred: impl FnMut(&str) -> bool) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| pred(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// Removes the cookies whose name `doomed` picks from the request's `Cookie` headers and
/// returns how many were removed.
///
/// A `Cookie` header is a `;`-separated list of `name=value` pairs (a cookie value cannot
/// contain `;`). Names are compared exactly (cookie names are case-sensitive) after trimming
/// white space; a piece without `=` is a nameless cookie whose name is taken to be the
/// whole piece. Every other pair is kept byte for byte. Several `Cookie` headers (HTTP/2
/// sends one per cookie) become one, joined with `"; "`, as RFC 9113 §8.2.3 asks of a hop
/// to HTTP/1.1; a header left empty is dropped. A single header from which nothing is removed
/// is left untouched.
pub fn remove_cookies(headers: &mut HeaderMap, mut doomed: impl FnMut(&[u8]) -> bool) -> usize {
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut removed = 0;
    for value in &values {
        for pair in split_bytes(value.as_bytes(), b';').map(<[u8]>::trim_ascii) {
            if pair.is_empty() {
                continue;
            }
            let name = match memchr::memchr(b'=', pair) {
                Some(end) => pair[..end].trim_ascii(),
                None => pair,
            };
            if doomed(name) {
                removed += 1;
            } else {
                kept.push(pair);
            }
        }
    }
    if removed == 0 && values.len() <= 1 {
        return 0;
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(joined) = HeaderValue::from_bytes(&kept.join(&b"; "[..]))
    {
        headers.insert(header::COOKIE, joined);
    }
    removed
}

/// `bytes` split at every `separator` (found with `memchr`: a session cookie
/// is hundreds of bytes, and this runs on every request).
fn split_bytes(bytes: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(separator, bytes)
        .chain(std::iter::once(bytes.len()))
        .map(move |end| {
            let piece = &bytes[start..end];
            start = end + 1;
            piece
        })
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether the headers ask for a WebSocket upgrade (`Connection: upgrade` and
/// `Upgrade: websocket`, any case).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = connection_tokens(headers).iter().any(|t| t == "upgrade");
    let upgrade_websocket = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("websocket"));
    connection_upgrade && upgrade_websocket
}

/// Removes hop-by-hop headers (see the [module docs](self)). With `keep_upgrade`, the
/// `Upgrade` header is kept and `Connection` is reduced to `upgrade`.
///
/// `Connection` may name arbitrary headers, but never `Host` or `Content-Length`: those are
/// kept so that a client cannot change how the upstream frames or routes the request.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names (hashing a name per lookup costs more than
    // comparing the few headers a request has).
    let named = connection_tokens(headers);
    remove_matching(headers, |name| {
        matches!(
            name,
            "connection" | "te" | "trailer" | "transfer-encoding" | "keep-alive"
        ) || name.starts_with("proxy-")
            || (!keep_upgrade && name == "upgrade")
            || (name != "host"
                && name != "content-length"
                && !(keep_upgrade && name == "upgrade")
                && named.iter().any(|t| t == name))
    });
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// CIDR ranges of proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts the given networks.
    pub fn new(nets: Vec<IpNet>) -> Self {
        TrustedProxies { nets }
    }

    /// Trusts nobody (the default).
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// Parses CIDRs (`10.0.0.0/8`) or single addresses (`127.0.0.1`, `::1`).
    pub fn parse<I, S>(items: I) -> Result<Self, ipnet::AddrParseError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            let net = match item.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => item.parse::<IpNet>()?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` (IPv4-mapped IPv6 addresses count as IPv4) is trusted.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The configured networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

fn parse_forwarded_ip(item: &str) -> Option<IpAddr> {
    let item = item.trim();
    item.parse::<IpAddr>()
        .ok()
        .or_else(|| item.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

fn xff_items(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The address of the client: the direct `peer` unless it is a trusted proxy, in which case
/// the rightmost `X-Forwarded-For` hop that is not itself trusted. An unparsable hop stops
/// the walk (the last trusted hop is returned); if every hop is trusted, the leftmost one is.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut candidate = peer.to_canonical();
    if !trusted.contains(candidate) {
        return candidate;
    }
    for item in xff_items(headers).iter().rev() {
        let Some(ip) = parse_forwarded_ip(item) else {
            break;
        };
        candidate = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    candidate
}

/// The scheme the client used to reach the gateway, for `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `http`.
    #[default]
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Removes every header whose canonical name is one of `names` (canonical names), except,
/// with `keep_exact`, a header spelt exactly as the name.
fn remove_variants(headers: &mut HeaderMap, names: &[&str], keep_exact: bool) {
    remove_matching(headers, |name| {
        names
            .iter()
            .any(|n| has_canonical_name(name, n) && !(keep_exact && *n == name))
    });
}

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` (when `host` is given) and
/// `X-Real-IP`, replacing any client copies and variants, as described in the
/// [module docs](self).
pub fn set_forwarding_headers(
    headers: &mut HeaderMap,
    peer: IpAddr,
    proto: Scheme,
    host: Option<&HeaderValue>,
    trusted: &TrustedProxies,
) {
    let peer = peer.to_canonical();
    let peer_trusted = trusted.contains(peer);
    let real_ip = client_ip(peer, headers, trusted);
    let previous = if peer_trusted {
        xff_items(headers)
    } else {
        Vec::new()
    };

    remove_variants(headers, GATEWAY_FORWARDING, false);
    remove_variants(headers, PROXY_CLAIMS, peer_trusted);

    let mut xff = previous.join(", ");
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer.to_string());
    if let Ok(value) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto.as_str()));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Ok(value) = HeaderValue::from_str(&real_ip.to_string()) {
        headers.insert(X_REAL_IP, value);
    }
}

/// Whether `value` is an acceptable request id: 1 to 128 characters from
/// `A-Z a-z 0-9 - _ . : + / =`.
pub fn is_valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// A fresh request id (a hyphenated UUIDv4).
pub fn generate_request_id() -> HeaderValue {
    // The thread's CSPRNG (no system call per request, unlike `Uuid::new_v4`).
    let bytes: [u8; 16] = rand::random();
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid-request-id"))
}

/// The request id to use: the incoming `X-Request-Id` when the direct `peer` is a trusted
/// proxy and the value [is valid](is_valid_request_id), otherwise a
/// [fresh one](generate_request_id).
pub fn request_id(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> HeaderValue {
    if trusted.contains(peer) {
        let mut values = headers.get_all(&X_REQUEST_ID).iter();
        if let (Some(value), None) = (values.next(), values.next())
            && is_valid_request_id(value)
        {
            return value.clone();
        }
    }
    generate_request_id()
}

/// Removes client-sent `X-Request-Id` headers and their variants, then sets `id`.
pub fn set_request_id(headers: &mut HeaderMap, id: HeaderValue) {
    remove_variants(headers, &["x-request-id"], false);
    headers.insert(X_REQUEST_ID, id);
}

#[cfg(test)]
mod tests;
