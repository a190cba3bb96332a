//! Connections to Redis: one server (`redis://`, `rediss://`) or the master a
//! set of sentinels names (`redis+sentinel://`, `rediss+sentinel://`).
//!
//! A [`RedisEndpoint`] is the parsed URL plus the TLS roots; it hands out
//! [`RedisConnection`]s (lazy, self-healing, fast-failing command
//! connections) and pub/sub connections. Through Sentinel, the master is
//! looked up when first needed, again after a connection-level failure or a
//! `READONLY` reply (a failover demoted it), and at most every
//! [`MASTER_RECHECK`] otherwise; a failover therefore costs the commands in
//! flight (which fall back, like any Redis failure) and nothing after.

use super::CacheError;
use authgate_core::redis_url::{self, RedisUrl, SentinelUrl};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a master found through Sentinel is used before asking again.
pub const MASTER_RECHECK: Duration = Duration::from_secs(5);
/// The longest a master lookup may take before the command fails over to
/// the store.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(1000);
/// After a failed lookup, commands fail at once for this long (no lookup
/// storm while every sentinel is down).
const LOOKUP_BACKOFF: Duration = Duration::from_millis(250);

/// A Redis URL ready to connect: the parsed target and the TLS trust.
#[derive(Clone)]
pub struct RedisEndpoint {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Server(Box<redis::Client>),
    Sentinel {
        url: Arc<SentinelUrl>,
        certificates: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Server(_) => f.write_str("RedisEndpoint::Server"),
            Target::Sentinel { url, .. } => f
                .debug_struct("RedisEndpoint::Sentinel")
                .field("sentinels", &url.sentinels)
                .field("master", &url.master)
                .field("tls", &url.tls)
                .finish(),
        }
    }
}

impl RedisEndpoint {
    /// Checks `url` (see [`authgate_core::redis_url`]) and, for TLS, prepares
    /// the trust: `ca_pem` (PEM certificates) replaces the system roots when
    /// given. Does not connect.
    pub fn new(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, CacheError> {
        let parsed = redis_url::parse(url).map_err(|e| CacheError::InvalidUrl(e.to_string()))?;
        if let Some(pem) = ca_pem {
            if !parsed.tls() {
                return Err(CacheError::InvalidUrl(
                    "a CA file is set but the URL does not use TLS (rediss:// or rediss+sentinel://)"
                        .to_owned(),
                ));
            }
            if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(CacheError::InvalidUrl(
                    "the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
                ));
            }
        }
        if parsed.tls() {
            install_crypto_provider();
        }
        let certificates = ca_pem.map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        });
        let target = match parsed {
            RedisUrl::Server { .. } => Target::Server(Box::new(match certificates {
                Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
                None => redis::Client::open(url)?,
            })),
            RedisUrl::Sentinel(url) => {
                let endpoint = Target::Sentinel {
                    url: Arc::new(url),
                    certificates: ca_pem.map(<[u8]>::to_vec),
                };
                // Surface a bad configuration now rather than at first use.
                sentinel_client(&endpoint)?;
                endpoint
            }
        };
        Ok(Self { target })
    }

    /// Whether this goes through Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel { .. })
    }

    /// A lazily made, self-healing command connection with `config`'s
    /// timeouts and retries. Must be called inside a Tokio runtime.
    pub fn connect(&self, config: ConnectionManagerConfig) -> Result<RedisConnection, CacheError> {
        match &self.target {
            Target::Server(client) => Ok(RedisConnection(Inner::Server(
                ConnectionManager::new_lazy_with_config((**client).clone(), config)?,
            ))),
            Target::Sentinel { url, .. } => {
                Ok(RedisConnection(Inner::Sentinel(Arc::new(SentinelMaster {
                    sentinel: tokio::sync::Mutex::new(sentinel_client(&self.target)?),
                    current: Mutex::new(Current::default()),
                    config,
                    db: url.db,
                }))))
            }
        }
    }

    /// A new pub/sub connection (through Sentinel: to the current master).
    pub async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        match &self.target {
            Target::Server(client) => client.get_async_pubsub().await,
            Target::Sentinel { .. } => {
                let mut sentinel = sentinel_client(&self.target)?;
                sentinel.async_get_client().await?.get_async_pubsub().await
            }
        }
    }
}

/// rustls needs a process-wide crypto provider when more than one could be
/// compiled in; authgate uses aws-lc-rs (as its HTTP client does). Installing
/// twice is harmless: the first one stays.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn sentinel_client(target: &Target) -> RedisResult<SentinelClient> {
    let Target::Sentinel { url, certificates } = target else {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "not a sentinel URL",
        )));
    };
    let scheme = if url.tls { "rediss" } else { "redis" };
    let nodes = url
        .sentinels
        .iter()
        .map(|(host, port)| {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            Ok(format!("{scheme}://{host}:{port}")
                .into_connection_info()?
                .addr()
                .clone())
        })
        .collect::<RedisResult<Vec<_>>>()?;
    let mut builder =
        SentinelClientBuilder::new(nodes, url.master.clone(), SentinelServerType::Master)?
            .set_client_to_redis_db(url.db);
    if let Some(user) = &url.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &url.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(user) = &url.sentinel_username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = &url.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if url.tls {
        builder = builder
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
        if let Some(pem) = certificates {
            let certificates = TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            };
            builder = builder
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates);
        }
    }
    builder.build()
}

/// A command connection to Redis (one server, or the current master through
/// Sentinel). Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisConnection(Inner);

#[derive(Clone)]
enum Inner {
    Server(ConnectionManager),
    Sentinel(Arc<SentinelMaster>),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Server(_) => f.write_str("RedisConnection::Server"),
            Inner::Sentinel(_) => f.write_str("RedisConnection::Sentinel"),
        }
    }
}

/// The master found through Sentinel, and when.
struct SentinelMaster {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Current>,
    config: ConnectionManagerConfig,
    db: i64,
}

#[derive(Default)]
struct Current {
    /// The master's connection and address.
    master: Option<(ConnectionManager, String)>,
    /// When the master was last confirmed; `None` forces a lookup.
    confirmed: Option<Instant>,
    /// When the last lookup failed.
    failed: Option<Instant>,
}

impl SentinelMaster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current master's connection, looking it up when unknown or due.
    async fn master(&self) -> RedisResult<ConnectionManager> {
        let stale = {
            let current = self.lock();
            match (&current.master, current.confirmed) {
                (Some((m, _)), Some(at)) if at.elapsed() < MASTER_RECHECK => return Ok(m.clone()),
                _ => {}
            }
            if current
                .failed
                .is_some_and(|at| at.elapsed() < LOOKUP_BACKOFF)
            {
                return match &current.master {
                    Some((m, _)) => Ok(m.clone()),
                    None => Err(no_master("the last master lookup failed")),
                };
            }
            current.master.as_ref().map(|(m, _)| m.clone())
        };
        // One lookup at a time; a routine re-check never makes others wait.
        let mut sentinel = match (self.sentinel.try_lock(), stale) {
            (Ok(guard), _) => guard,
            (Err(_), Some(stale)) => return Ok(stale),
            (Err(_), None) => self.sentinel.lock().await,
        };
        {
            // Someone else may have just looked.
            let current = self.lock();
            if let (Some((m, _)), Some(at)) = (&current.master, current.confirmed)
                && at.elapsed() < MASTER_RECHECK
            {
                return Ok(m.clone());
            }
        }
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, sentinel.async_get_client()).await;
        drop(sentinel);
        let mut current = self.lock();
        let client = match found {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                current.failed = Some(Instant::now());
                return Err(error);
            }
            Err(_) => {
                current.failed = Some(Instant::now());
                return Err(no_master("the sentinels did not answer in time"));
            }
        };
        current.failed = None;
        current.confirmed = Some(Instant::now());
        let address = client.get_connection_info().addr().to_string();
        if let Some((m, known)) = &current.master {
            if *known == address {
                return Ok(m.clone());
            }
            tracing::warn!(master = %address, previous = %known, "redis sentinel: the master changed");
        }
        let manager = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
        current.master = Some((manager.clone(), address));
        Ok(manager)
    }

    /// After a failed command: a dropped or refused connection, a timeout or
    /// `READONLY` (the node was demoted) mean "ask the sentinels again".
    fn failed(&self, error: &redis::RedisError) {
        if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout()
            || matches!(error.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
        {
            self.lock().confirmed = None;
        }
    }
}

fn no_master(why: &'static str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "redis sentinel: no master known",
        why.to_owned(),
    ))
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Inner::Server(manager) => manager.req_packed_command(cmd),
            Inner::Sentinel(sentinel) => {
                let sentinel = Arc::clone(sentinel);
                Box::pin(async move {
                    let mut master = sentinel.master().await?;
                    let result = master.req_packed_command(cmd).await;
                    if let Err(error) = &result {
                        sentinel.failed(error);
                    }
                    result
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Inner::Server(manager) => manager.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(sentinel) => {
                let sentinel = Arc::clone(sentinel);
                Box::pin(async move {
                    let mut master = sentinel.master().await?;
                    let result = master.req_packed_commands(pipeline, offset, count).await;
                    if let Err(error) = &result {
                        sentinel.failed(error);
                    }
                    result
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Inner::Server(manager) => manager.get_db(),
            Inner::Sentinel(sentinel) => sentinel.db,
        }
    }
}
