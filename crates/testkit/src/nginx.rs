//! A private `nginx` (the Debian package's binary) on a loopback port, with a generated
//! configuration in its own temporary prefix directory.

use crate::env::REQUIRE_SERVICES_VAR;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Where the `nginx` binary is: `$PATH`, then `/usr/sbin/nginx` (Debian installs it there, which
/// is not on every user's `PATH`).
pub fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

/// An `nginx` owned by one test: one process (`master_process off`), its configuration, logs,
/// pid file and temporary files in its own directory, killed on drop.
///
/// The API is synchronous (start blocks until the port accepts, a few milliseconds).
pub struct Nginx {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Nginx {
    /// Whether tests that need nginx can run: `true` when the binary exists. When it is missing,
    /// panics if `AUTHGATE_REQUIRE_SERVICES=1` (CI installs it), otherwise prints
    /// `skipping: nginx not installed` and returns `false`.
    pub fn require_installed() -> bool {
        if nginx_binary().is_some() {
            return true;
        }
        if std::env::var(REQUIRE_SERVICES_VAR).as_deref() == Ok("1") {
            panic!(
                "nginx is not installed but {REQUIRE_SERVICES_VAR}=1: install it \
                 (`apt-get install nginx-light`, or `nginx`)"
            );
        }
        eprintln!("skipping: nginx not installed");
        false
    }

    /// Starts nginx listening on `127.0.0.1:port` (pick it with [`crate::free_port`]) with `http`
    /// as the contents of its `http { }` block: `upstream` and `server` blocks whose `listen`
    /// is `127.0.0.1:PORT`. Logs, pid file and temporary paths are set to the instance's own
    /// directory. Waits until the port accepts connections; panics with nginx's log when the
    /// configuration is invalid or it does not come up.
    pub fn start(port: u16, http: &str) -> Self {
        let binary = nginx_binary()
            .expect("nginx is not installed (`apt-get install nginx-light`, or `nginx`)");
        let dir = tempfile::Builder::new()
            .prefix("authgate-nginx-")
            .tempdir()
            .expect("temporary directory for nginx");
        let prefix = dir.path();
        std::fs::write(prefix.join("nginx.conf"), config(prefix, http)).expect("write nginx.conf");
        let stderr = File::create(prefix.join("stderr.log")).expect("create nginx's stderr.log");
        let globals = format!(
            "daemon off; master_process off; pid {}; error_log stderr info;",
            prefix.join("nginx.pid").display()
        );
        let child = Command::new(&binary)
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .arg("-g")
            .arg(globals)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut instance = Self {
            port,
            dir,
            child: Some(child),
        };
        instance.wait_until_accepting();
        instance
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The generated `nginx.conf`.
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx.conf")).unwrap_or_default()
    }

    /// nginx's error log so far (its stderr), for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The access log so far (`$status "$request" -> $upstream_status`, one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Kills nginx (one process: `master_process off`) and waits for it to exit. No-op when not
    /// running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_until_accepting(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.kill();
                panic!(
                    "nginx on port {} did not accept connections ({}); its log:\n{}\nits nginx.conf:\n{}",
                    self.port,
                    exited.map_or("timed out".to_owned(), |s| format!("exited: {s}")),
                    self.log(),
                    self.config()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The whole `nginx.conf` around the caller's `http` block contents.
fn config(prefix: &Path, http: &str) -> String {
    let p = |name: &str| prefix.join(name).display().to_string();
    format!(
        r#"# Generated by authgate-testkit for one test.
events {{
    worker_connections 256;
}}

http {{
    log_format authgate '$status "$request" auth=$upstream_status';
    access_log {access} authgate;
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};

{http}
}}
"#,
        access = p("access.log"),
        body = p("tmp-client-body"),
        proxy = p("tmp-proxy"),
        fastcgi = p("tmp-fastcgi"),
        uwsgi = p("tmp-uwsgi"),
        scgi = p("tmp-scgi"),
    )
}
