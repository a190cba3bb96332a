//! A private `redis-server` on a free loopback port.

use crate::env::free_port;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A `redis-server` owned by one test: no persistence, its own data directory, killed on drop.
///
/// The API is synchronous (start and restart block until `PING` answers, a few milliseconds);
/// from async code that must not stall, call [`RedisInstance::restart`] via `spawn_blocking`.
pub struct RedisInstance {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisInstance {
    /// Starts `redis-server` on a free 127.0.0.1 port and waits until `PING` works.
    /// Panics (with the server's log) when `redis-server` is missing or does not come up.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("authgate-redis-")
            .tempdir()
            .expect("temporary directory for redis-server");
        let mut instance = Self {
            port: free_port(),
            dir,
            child: None,
        };
        instance.spawn();
        instance
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port (unchanged across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for the process to exit, so the port
    /// refuses connections when this returns. No-op when not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if running, then starts a new one on the same port (empty data).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let dir: &Path = self.dir.path();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `redis-server` (is it installed?): {e}"));
        self.child = Some(child);

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                panic!(
                    "redis-server on port {} did not answer PING ({}); its log:\n{}",
                    self.port,
                    exited.map_or("timed out".to_owned(), |s| format!("exited: {s}")),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `PING` over RESP; true on `+PONG`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisInstance {
    fn drop(&mut self) {
        self.kill();
    }
}
