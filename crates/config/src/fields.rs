//! Deserializers for field types that need more than serde's defaults:
//! http(s) URLs, socket addresses, and IP networks that also accept a bare
//! address. Each error says what was expected.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use url::Url;

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL {text:?}: scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    Ok(url)
}

pub(crate) fn de_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let text = String::deserialize(d)?;
    parse_url(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => parse_url(&text).map(Some).map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "invalid address {text:?}: expected IP:port, e.g. \"127.0.0.1:4180\" or \"[::]:4180\""
        )
    })
}

pub(crate) fn de_socket_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_socket_addr(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_socket_addr<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(text) => parse_socket_addr(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

/// An IP network that also accepts a bare address (as a single-host network).
struct IpNetItem(IpNet);

impl<'de> Deserialize<'de> for IpNetItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let trimmed = text.trim();
        trimmed
            .parse::<IpNet>()
            .or_else(|_| trimmed.parse::<std::net::IpAddr>().map(IpNet::from))
            .map(IpNetItem)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "invalid IP address or CIDR range {text:?}: expected e.g. \"10.0.0.1\" or \"10.0.0.0/8\""
                ))
            })
    }
}

pub(crate) fn de_ipnets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Ok(Vec::<IpNetItem>::deserialize(d)?
        .into_iter()
        .map(|item| item.0)
        .collect())
}
