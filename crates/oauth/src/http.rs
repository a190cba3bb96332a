//! The one outbound HTTP client every provider call goes through.
//!
//! Connect and total timeouts are always set, redirects are never followed
//! (a token endpoint that answers `302` is broken or hijacked, and following
//! it would re-send credentials), bodies are capped, and every transport
//! failure becomes a [`ProviderError`] of kind
//! [`Transient`](ProviderErrorKind::Transient).

use authgate_core::provider_error::{ProviderError, ProviderErrorKind};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// The `User-Agent` sent with every provider request: `authgate/<version>`.
pub const USER_AGENT: &str = concat!("authgate/", env!("CARGO_PKG_VERSION"));

/// Settings of the outbound HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Longest wait for a TCP (and TLS) connection to a provider.
    pub connect_timeout: Duration,
    /// Longest wait for a whole exchange, from connecting to the last body byte.
    pub timeout: Duration,
    /// Largest response body read from a provider; longer bodies are a
    /// protocol error (no legitimate token or discovery answer comes close).
    pub max_response_bytes: usize,
}

impl Default for HttpSettings {
    /// 5 s to connect, 10 s in total, 1 MiB bodies.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// The outbound client could not be built (TLS backend initialisation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the outbound HTTP client")]
pub struct HttpClientError(#[source] reqwest::Error);

/// The shared outbound HTTP client: cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpClient {
    /// Builds the client: timeouts from `settings`, redirects disabled,
    /// `User-Agent: authgate/<version>`.
    pub fn new(settings: &HttpSettings) -> Result<Self, HttpClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(HttpClientError)?;
        Ok(Self {
            client,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// The underlying reqwest client (for building requests).
    pub(crate) fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` and reads the whole (capped) response. Transport
    /// failures become `Transient` provider errors; no HTTP status is judged
    /// here.
    pub(crate) async fn send(
        &self,
        provider: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<RawResponse, ProviderError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(provider, e))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let content_type = header_str(headers, CONTENT_TYPE.as_str());
        let retry_after = parse_retry_after(headers);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(provider, e).with_status(status))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(ProviderError::new(ProviderErrorKind::Protocol, provider)
                    .with_status(status)
                    .with_description(format!(
                        "response body exceeds {} bytes",
                        self.max_response_bytes
                    )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            content_type,
            retry_after,
            body,
        })
    }
}

/// A provider's answer, fully read.
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// `Retry-After` in delta-seconds form, if present.
    pub retry_after: Option<Duration>,
    /// The body (at most `max_response_bytes`).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` as delta-seconds. The HTTP-date form is ignored: turning it
/// into a duration would need the clock.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Maps a reqwest failure to a provider error. Anything that happened on
/// the wire (connect, timeout, reset, truncated body) is transient; a request
/// that could not even be built is our configuration's fault.
pub(crate) fn transport_error(provider: &str, error: reqwest::Error) -> ProviderError {
    let (kind, what) = if error.is_builder() {
        (ProviderErrorKind::Misconfigured, "invalid request")
    } else if error.is_timeout() {
        (
            ProviderErrorKind::Transient { retry_after: None },
            "timed out",
        )
    } else if error.is_connect() {
        (
            ProviderErrorKind::Transient { retry_after: None },
            "connection failed",
        )
    } else if error.is_body() || error.is_decode() {
        (
            ProviderErrorKind::Transient { retry_after: None },
            "response interrupted",
        )
    } else {
        (
            ProviderErrorKind::Transient { retry_after: None },
            "request failed",
        )
    };
    ProviderError::new(kind, provider)
        .with_description(what)
        .with_source(error.without_url())
}
