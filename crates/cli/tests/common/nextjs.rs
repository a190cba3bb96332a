//! The Next.js example (`examples/nextjs`) as a child process: built by
//! `build-if-changed.sh` (behind authgate into `.next`, or beside it into
//! `.next-beside`), started with `next start` in a process group of its own
//! that is killed when the test ends, however it ends.

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `examples/nextjs`.
pub fn example_dir() -> PathBuf {
    repo_root().join("examples/nextjs")
}

/// A child process leading its own process group. Dropping it asks the
/// leader to stop (SIGTERM: Chromium and Next shut their children down and
/// reap them), waits up to 3 s, then SIGKILLs the whole group, so nothing it
/// started (Next's workers, Chromium's renderers) outlives it.
pub struct Group {
    pub name: &'static str,
    pub child: Child,
    log: PathBuf,
}

impl Group {
    /// Starts `command` with its output in `log`.
    pub fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Group {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Group { name, child, log }
    }

    /// Sends `signal` to the leader (`group = false`) or its whole group.
    fn signal(&self, signal: &str, group: bool) {
        let target = if group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        let _ = Command::new("kill")
            .args([signal, "--", &target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.output()
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal("-TERM", false);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal("-KILL", true);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released: `next start` needs a number).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which build of the example.
#[derive(Clone, Copy)]
pub enum Deployment<'a> {
    /// Behind authgate (reverse proxy): `.next`.
    Behind,
    /// Beside authgate at this URL (`/api/auth/*` rewritten there): `.next-beside`.
    Beside(&'a str),
}

impl Deployment<'_> {
    fn apply(self, command: &mut Command) -> &mut Command {
        match self {
            Deployment::Behind => command
                .env_remove("AUTHGATE_URL")
                .env("NEXT_DIST_DIR", ".next"),
            Deployment::Beside(url) => command
                .env("AUTHGATE_URL", url)
                .env("NEXT_DIST_DIR", ".next-beside"),
        }
    }
}

/// Installs and builds the example when needed.
pub fn build_example(deployment: Deployment<'_>) {
    let started = Instant::now();
    let output = deployment
        .apply(&mut Command::new("bash"))
        .arg(example_dir().join("build-if-changed.sh"))
        .output()
        .expect("run examples/nextjs/build-if-changed.sh");
    assert!(
        output.status.success(),
        "building examples/nextjs failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "examples/nextjs ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `next start` of `deployment`'s build on `port` with `env`; waits until it
/// answers. Its log is `dir/next.log`.
pub async fn start_next(
    dir: &Path,
    deployment: Deployment<'_>,
    port: u16,
    env: &[(&str, &str)],
) -> Group {
    let mut command = Command::new("node");
    deployment
        .apply(&mut command)
        .arg("node_modules/next/dist/bin/next")
        .args(["start", "-H", "127.0.0.1", "-p", &port.to_string()])
        .current_dir(example_dir())
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .env("NODE_ENV", "production")
        .envs(env.iter().copied());
    let mut next = Group::spawn("next start", &mut command, dir.join("next.log"));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        next.assert_running();
        let ready = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return next;
        }
        assert!(
            Instant::now() < deadline,
            "next start did not answer within 60 s:\n{}",
            next.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
