//! A TCP proxy in front of PostgreSQL that breaks the store's connections on demand (DESIGN.md
//! §5: our own fakes are for what peers cannot do on demand).
//!
//! [`PgFaultProxy`] listens on `127.0.0.1:0` and relays bytes to the server named by a
//! `postgres://` URL; point a store at [`PgFaultProxy::url`]. Two faults:
//!
//! - [`PgFaultProxy::down`]: every connection is reset and new ones are accepted and reset at
//!   once (a connection error, not a refusal, so a pool fails fast instead of waiting for the
//!   server to come up), until [`PgFaultProxy::up`].
//! - [`PgFaultProxy::lose_reply_to`]: the next client message that contains a marker (e.g. a
//!   bound parameter such as a lease owner id, which sqlx sends in every `Bind`) reaches the
//!   server, the server's whole answer is swallowed up to its `ReadyForQuery` — so the statement
//!   ran and its implicit transaction committed — and then the connection is reset: the client
//!   sees an error for a write that happened.
//!
//! The protocol handling is deliberately minimal: it recognises `Sync` (`S`, length 4) and
//! `ReadyForQuery` (`Z`, length 5) frames by their bytes, which is all the lost-reply fault needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// A frontend `Sync` message.
const SYNC: &[u8] = b"S\0\0\0\x04";
/// A backend `ReadyForQuery` message, without its status byte.
const READY: &[u8] = b"Z\0\0\0\x05";

struct Shared {
    upstream: SocketAddr,
    /// `true` while the proxy is "down".
    down: watch::Sender<bool>,
    lose_reply_marker: Mutex<Option<Vec<u8>>>,
    replies_lost: AtomicU64,
    connections: AtomicU64,
}

/// A fault-injecting TCP proxy in front of PostgreSQL; see the module docs. Stops (resetting every
/// connection) when dropped. Belongs to the Tokio runtime that started it.
pub struct PgFaultProxy {
    addr: SocketAddr,
    base_url: Url,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PgFaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl PgFaultProxy {
    /// A proxy in front of the server of `url` (`postgres://user@host:port/db?…`). Panics when the
    /// URL names no reachable host.
    pub async fn start(url: &str) -> Self {
        let base_url = Url::parse(url).expect("a postgres:// URL");
        let host = base_url
            .host_str()
            .expect("the URL names a host")
            .to_owned();
        let port = base_url.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve the PostgreSQL host")
            .next()
            .expect("an address for the PostgreSQL host");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the PostgreSQL proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            upstream,
            down: watch::channel(false).0,
            lose_reply_marker: Mutex::new(None),
            replies_lost: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            addr,
            base_url,
            shared,
            task,
        }
    }

    /// The URL given to [`Self::start`], pointing at the proxy instead.
    pub fn url(&self) -> Url {
        let mut url = self.base_url.clone();
        url.set_host(Some("127.0.0.1")).expect("a URL with a host");
        url.set_port(Some(self.addr.port()))
            .expect("a URL with a port");
        url
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resets every connection and every new one until [`Self::up`].
    pub fn down(&self) {
        self.shared.down.send_replace(true);
    }

    /// Relays connections again.
    pub fn up(&self) {
        self.shared.down.send_replace(false);
    }

    /// The next client message containing `marker` runs at the server, but its answer is lost:
    /// the connection is reset once the server is ready for the next query.
    pub fn lose_reply_to(&self, marker: &[u8]) {
        *self.shared.lose_reply_marker.lock().unwrap() = Some(marker.to_vec());
    }

    /// Answers swallowed so far.
    pub fn replies_lost(&self) -> u64 {
        self.shared.replies_lost.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (reset ones included).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for PgFaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    connections.spawn(relay(stream, Arc::clone(&shared)));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn relay(client: TcpStream, shared: Arc<Shared>) {
    let mut down = shared.down.subscribe();
    if *down.borrow_and_update() {
        return reset(&client);
    }
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return reset(&client);
    };
    let _ = server.set_nodelay(true);
    let (mut client, mut server) = (client, server);
    let (mut from_client, mut from_server) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    // Answers (ReadyForQuery frames) still to swallow before resetting.
    let mut swallowing: Option<usize> = None;
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let Ok(n) = read else { break };
                if n == 0 {
                    break;
                }
                let chunk = &from_client[..n];
                if swallowing.is_none() {
                    let mut armed = shared.lose_reply_marker.lock().unwrap();
                    if armed.as_deref().is_some_and(|m| find(chunk, m).is_some()) {
                        *armed = None;
                        // Every Sync sent with it gets its ReadyForQuery before the reset, so
                        // the whole pipeline (a statement prepared on the fly included) has run.
                        swallowing = Some(count(chunk, SYNC).max(1));
                    }
                }
                if server.write_all(chunk).await.is_err() {
                    break;
                }
            }
            read = server.read(&mut from_server) => {
                let Ok(n) = read else { break };
                if n == 0 {
                    break;
                }
                let chunk = &from_server[..n];
                if let Some(left) = swallowing {
                    let left = left.saturating_sub(count(chunk, READY));
                    if left == 0 {
                        shared.replies_lost.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    swallowing = Some(left);
                    continue;
                }
                if client.write_all(chunk).await.is_err() {
                    break;
                }
            }
            changed = down.changed() => {
                if changed.is_err() || *down.borrow() {
                    break;
                }
            }
        }
    }
    reset(&client);
    reset(&server);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_and_counted_by_their_bytes() {
        let two_syncs = [b"P\0\0\0\x08abcd".as_slice(), SYNC, b"B", SYNC].concat();
        assert_eq!(count(&two_syncs, SYNC), 2);
        assert_eq!(find(&two_syncs, b"abcd"), Some(5));
        assert_eq!(find(&two_syncs, b"nope"), None);
    }
}
