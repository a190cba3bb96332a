//! Drives `interop/jwt-batch.mjs`: the real `@auth/core` and `next-auth` v4
//! JWT codecs, one Node process per batch of requests.

use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long one batch may take before the Node process is killed.
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The npm project with the reference libraries.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Kills the child when dropped, so a failing test never leaves Node behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // Both fail harmlessly if the process has already exited and been reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `requests` to ONE `node jwt-batch.mjs` process and returns its
/// results, one per request, in order. Panics (never skips) when Node or the
/// npm packages are missing.
pub fn run_batch(requests: &[Value]) -> Vec<Value> {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@auth/core/package.json").is_file()
            && dir.join("node_modules/next-auth/package.json").is_file(),
        "the interop npm packages are not installed in {}: run `npm ci --prefix interop` \
         from the repository root",
        dir.display()
    );
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let child = Command::new(&node)
        .arg("jwt-batch.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {node:?} (Node 20+ is needed for the interop tests): {e}")
        });
    let mut child = KillOnDrop(child);

    let input = serde_json::to_vec(requests).expect("requests serialize");
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");

    // Write, read stdout and read stderr concurrently so no pipe can fill up
    // and deadlock; the main thread only waits, with a deadline.
    let writer = std::thread::spawn(move || {
        let r = stdin.write_all(&input);
        drop(stdin); // EOF: the script reads until end of input.
        r
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let r = stdout.read_to_string(&mut s).map(|_| s);
        let _ = tx.send(r);
    });
    let out = match rx.recv_timeout(BATCH_TIMEOUT) {
        Ok(r) => r.expect("reading node's stdout"),
        Err(_) => panic!("jwt-batch.mjs produced no result within {BATCH_TIMEOUT:?}"),
    };
    let status = child.0.wait().expect("waiting for node");
    let err = err_reader.join().unwrap_or_default();
    writer
        .join()
        .expect("stdin writer thread")
        .unwrap_or_else(|e| panic!("writing to jwt-batch.mjs failed: {e}\nstderr:\n{err}"));
    assert!(
        status.success(),
        "jwt-batch.mjs exited with {status}\nstderr:\n{err}"
    );
    let results: Vec<Value> = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("jwt-batch.mjs printed invalid JSON ({e}):\n{out}"));
    assert_eq!(
        results.len(),
        requests.len(),
        "jwt-batch.mjs returned {} results for {} requests",
        results.len(),
        requests.len()
    );
    results
}
