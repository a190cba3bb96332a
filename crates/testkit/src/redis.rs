//! Private `redis-server`s on free loopback ports: plain, TLS-only (with a
//! CA made at test time by the `openssl` CLI), replicas, and sentinels.

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
    /// TLS only: the files made by [`TestCa`] (the port then speaks TLS only).
    tls: Option<TestCa>,
    /// `--replicaof 127.0.0.1 <port>`.
    replica_of: Option<u16>,
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
            tls: None,
            replica_of: None,
        };
        instance.spawn();
        instance
    }

    /// Starts a `redis-server` that speaks TLS only (`--port 0 --tls-port PORT`), its
    /// certificate (for `localhost` and `127.0.0.1`) issued by a CA generated now.
    /// Panics when `openssl` or a TLS-capable `redis-server` is missing.
    pub fn start_tls() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("authgate-redis-tls-")
            .tempdir()
            .expect("temporary directory for redis-server");
        let tls = TestCa::generate();
        let mut instance = Self {
            port: free_port(),
            dir,
            child: None,
            tls: Some(tls),
            replica_of: None,
        };
        instance.spawn();
        instance
    }

    /// Starts a plain `redis-server` replicating the one on `master_port`.
    pub fn start_replica_of(master_port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("authgate-redis-replica-")
            .tempdir()
            .expect("temporary directory for redis-server");
        let mut instance = Self {
            port: free_port(),
            dir,
            child: None,
            tls: None,
            replica_of: Some(master_port),
        };
        instance.spawn();
        instance
    }

    /// `redis://127.0.0.1:PORT/`, or `rediss://localhost:PORT/` for a TLS instance.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// A TLS instance's certificate files ([`TestCa`]).
    pub fn tls(&self) -> Option<&TestCa> {
        self.tls.as_ref()
    }

    /// The CA that issued a TLS instance's certificate (PEM).
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().map(TestCa::ca_pem)
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
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => {
                command.args(["--port", &self.port.to_string()]);
            }
            Some(tls) => {
                command
                    .args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(tls.dir.path().join("server.crt"))
                    .arg("--tls-key-file")
                    .arg(tls.dir.path().join("server.key"))
                    .arg("--tls-ca-cert-file")
                    .arg(tls.dir.path().join("ca.crt"))
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        if let Some(master) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
        }
        let child = command
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
            let up = match self.tls {
                // A TLS port cannot be pinged in clear: the log says when it listens.
                Some(_) => self.log().contains("Ready to accept connections"),
                None => ping(self.port),
            };
            if up {
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

/// Sends one command over plain RESP to 127.0.0.1:`port` and returns the raw
/// reply (lossy UTF-8), or `None` when nothing answers within a second. For
/// test set-up: `INFO replication`, `SENTINEL FAILOVER mymaster`, `DEBUG SLEEP`.
pub fn redis_command(port: u16, args: &[&str]) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(_) if !reply.is_empty() => break,
            Err(_) => {}
        }
    }
    (!reply.is_empty()).then(|| String::from_utf8_lossy(&reply).into_owned())
}

/// A CA and a server certificate for `localhost` / `127.0.0.1` signed by it, made
/// with the `openssl` CLI in a temporary directory (`ca.crt`, `server.crt`,
/// `server.key`), plus an unrelated CA (`other-ca.crt`) for "wrong CA" tests.
pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    /// Generates the files. Panics (with openssl's output) when that fails.
    pub fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("authgate-ca-")
            .tempdir()
            .expect("temporary directory for certificates");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run `openssl` (is it installed?): {e}"));
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, cn) in [
            ("ca", "authgate test CA"),
            ("other-ca", "unrelated test CA"),
        ] {
            let key = format!("{name}.key");
            let crt = format!("{name}.crt");
            let subj = format!("/CN={cn}");
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            run(&args);
        }
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&args);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Self { dir }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The issuing CA's certificate (PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).expect("read ca.crt")
    }

    /// A CA that issued nothing here (PEM): trusting it must fail the handshake.
    pub fn other_ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("other-ca.crt")).expect("read other-ca.crt")
    }
}

/// A Redis Sentinel (`redis-server <conf> --sentinel`) on a free port, monitoring one
/// master on 127.0.0.1 with quorum 1 and fast failure detection; killed on drop.
pub struct SentinelInstance {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl SentinelInstance {
    /// Starts a sentinel watching `master_name` at 127.0.0.1:`master_port` and waits until
    /// it answers with that master's address.
    pub fn start(master_name: &str, master_port: u16) -> Self {
        let sentinel = Self::spawn(master_name, master_port, None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sentinel.master_port(master_name) != Some(master_port) {
            if Instant::now() > deadline {
                panic!(
                    "redis sentinel on port {} did not come up; its log:\n{}",
                    sentinel.port,
                    sentinel.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    /// Starts a TLS-only sentinel (`port 0`, `tls-port`, `tls-replication yes`) with
    /// `ca`'s server certificate, watching the TLS master at 127.0.0.1:`master_port`.
    /// Returns once the sentinel logs that it is up; it may take a moment more to reach
    /// the master (callers retry).
    pub fn start_tls(master_name: &str, master_port: u16, ca: &TestCa) -> Self {
        let sentinel = Self::spawn(master_name, master_port, Some(ca));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sentinel.log().contains("+monitor master") {
            assert!(
                Instant::now() < deadline,
                "redis sentinel (TLS) on port {} did not come up; its log:\n{}",
                sentinel.port,
                sentinel.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }

    fn spawn(master_name: &str, master_port: u16, tls: Option<&TestCa>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("authgate-sentinel-")
            .tempdir()
            .expect("temporary directory for redis-sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        let listen = match tls {
            None => format!("port {port}\n"),
            Some(ca) => format!(
                "port 0\ntls-port {port}\ntls-cert-file {d}/server.crt\ntls-key-file {d}/server.key\n\
                 tls-ca-cert-file {d}/ca.crt\ntls-auth-clients no\ntls-replication yes\n",
                d = ca.dir().display()
            ),
        };
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {master_name} 1000\n\
                 sentinel failover-timeout {master_name} 5000\n\
                 sentinel parallel-syncs {master_name} 1\n",
                dir = dir.path().display()
            ),
        )
        .expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `redis-server --sentinel`: {e}"));
        Self {
            port,
            dir,
            child: Some(child),
        }
    }

    /// The sentinel's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the master the sentinel currently names for `master_name`.
    pub fn master_port(&self, master_name: &str) -> Option<u16> {
        let reply = redis_command(
            self.port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name],
        )?;
        // *2\r\n$9\r\n127.0.0.1\r\n$5\r\n63790\r\n
        reply.split("\r\n").nth(4)?.parse().ok()
    }

    /// Kills the sentinel.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SentinelInstance {
    fn drop(&mut self) {
        self.kill();
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
