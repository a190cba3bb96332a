#!/usr/bin/env node
// The same Next.js app (examples/nextjs) two ways, against the strict-rotation
// oidc-provider (interop/oidc-provider.mjs) — issue #11 §5:
//
//   (a) guide:    the app refreshes tokens itself with Auth.js's
//                 refresh-token-rotation guide (bench/nextjs_vs_guide/guide/:
//                 auth.ts with the guide's `jwt` callback, Auth.js's middleware,
//                 Auth.js serving /api/auth), built from a copy of the example;
//   (b) authgate: the example as it is, behind `authgate serve` (release), with
//                 no refresh code of its own.
//
// Measures, per variant:
//   1. throughput and latency of the protected page (/protected/summary) and of
//      the public page (/) with one signed-in session: wrk -t2 -c32 -d10s --latency,
//      interleaved with the app reached directly (no gateway), ROUNDS times;
//   2. a refresh storm: 20 signed-in sessions, all access tokens stale, 10
//      concurrent requests per session at once; then refresh grants per session
//      (successful + failed grant requests at the provider) and sessions lost
//      (after the storm, and after one more expiry, the session JSON with the
//      cookie the browser would have kept must show the user and no error).
//
//   node bench/nextjs_vs_guide/run.mjs     (after: cargo build --release -p authgate;
//     npm ci --prefix interop; examples/nextjs/build-if-changed.sh; apt-get install -y wrk)
//   env: DURATION=10s CONNECTIONS=32 THREADS=2 WARMUP=3s ROUNDS=2 SESSIONS=20 PER_SESSION=10
//        STORM_TTL=10 AUTHGATE_BIN=target/release/authgate KEEP=1 (keep the work dir)
//
// Prints progress on stderr and a JSON summary on stdout. Everything listens on
// 127.0.0.1; every process it starts runs in its own process group and is
// stopped (SIGTERM, then SIGKILL) when the script exits.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { percentile } from "../lib.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLE = join(ROOT, "examples/nextjs");
const GUIDE = join(ROOT, "bench/nextjs_vs_guide/guide");
const BIN = process.env.AUTHGATE_BIN ?? join(ROOT, "target/release/authgate");
const DURATION = process.env.DURATION ?? "10s";
const CONNECTIONS = process.env.CONNECTIONS ?? "32";
const THREADS = process.env.THREADS ?? "2";
const WARMUP = process.env.WARMUP ?? "3s";
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const SESSIONS = Number(process.env.SESSIONS ?? 20);
const PER_SESSION = Number(process.env.PER_SESSION ?? 10);
const STORM_TTL = Number(process.env.STORM_TTL ?? 10);
const SKEW = 2;
const SECRET = "nextjs-vs-guide-bench-secret-32-chars!!";
const CLIENTS = {
  guide: { id: "guide", secret: "guide-bench-secret-0123456789abcdef" },
  authgate: { id: "authgate", secret: "authgate-bench-secret-0123456789ab" },
};

const log = (m) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** fetch, retried once when a kept-alive connection was closed under it
 *  (used for everything but the storm's own requests). */
async function fetchRetry(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    // undici reports a connection lost under a request as "fetch failed".
    if (!(error instanceof TypeError) || error.message !== "fetch failed") throw error;
    await sleep(100);
    return fetch(url, init);
  }
}

for (const [what, ok] of [
  [`${BIN} (cargo build --release -p authgate)`, existsSync(BIN)],
  ["interop/node_modules (npm ci --prefix interop)", existsSync(join(ROOT, "interop/node_modules/oidc-provider"))],
  ["examples/nextjs/.next (examples/nextjs/build-if-changed.sh)", existsSync(join(EXAMPLE, ".next/BUILD_ID"))],
]) {
  if (!ok) throw new Error(`missing ${what}`);
}
try {
  execFileSync("sh", ["-c", "command -v wrk"], { stdio: "ignore" });
} catch {
  throw new Error("missing wrk (apt-get install -y wrk)");
}

// ---------------------------------------------------------------------------------------------
// Processes: each in its own group, stopped on exit.

const work = mkdtempSync(join(tmpdir(), "authgate-nextjs-vs-guide-"));
const groups = [];
function stopAll() {
  for (const child of groups) {
    try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && groups.some((c) => c.exitCode === null && c.signalCode === null)) {
    execFileSync("sleep", ["0.1"]);
  }
  for (const child of groups) {
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
  }
  if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
}
process.on("exit", stopAll);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

function start(name, command, args, options = {}) {
  const out = join(work, `${name}.log`);
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  groups.push(child);
  const chunks = [];
  child.stdout.on("data", (d) => chunks.push(d));
  child.stderr.on("data", (d) => chunks.push(d));
  child.on("exit", () => writeFileSync(out, Buffer.concat(chunks)));
  child.logText = () => Buffer.concat(chunks).toString();
  return child;
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitHttp(url, child, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited:\n${child.logText()}`);
    try {
      const res = await fetch(url, { redirect: "manual" });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch { /* not yet */ }
    await sleep(200);
  }
  throw new Error(`${url} did not answer within ${seconds} s:\n${child.logText()}`);
}

// ---------------------------------------------------------------------------------------------
// 1. The provider.

const guidePort = await freePort();
const gatewayPort = await freePort();
const appPort = await freePort();
const guideBase = `http://127.0.0.1:${guidePort}`;
const gatewayBase = `http://127.0.0.1:${gatewayPort}`;

const peer = start("oidc-provider", process.execPath, [join(ROOT, "interop/oidc-provider.mjs"), JSON.stringify({
  clients: [
    {
      client_id: CLIENTS.guide.id,
      client_secret: CLIENTS.guide.secret,
      // `next start` hands Auth.js the request as `localhost:PORT`, whatever
      // the Host header said: its redirect_uri names localhost.
      redirect_uris: [`${guideBase}/api/auth/callback/op`, `http://localhost:${guidePort}/api/auth/callback/op`],
      token_endpoint_auth_method: "client_secret_post",
    },
    {
      client_id: CLIENTS.authgate.id,
      client_secret: CLIENTS.authgate.secret,
      redirect_uris: [`${gatewayBase}/api/auth/callback/op`],
    },
  ],
  accessTokenTtl: 3600,
  rotateRefreshToken: true,
  watchStdin: false,
})]);
const { issuer } = await new Promise((resolve, reject) => {
  createInterface({ input: peer.stdout }).once("line", (line) => resolve(JSON.parse(line)));
  peer.once("exit", (code) => reject(new Error(`oidc-provider exited (${code}): ${peer.logText()}`)));
});
log(`oidc-provider at ${issuer}`);
const peerStats = async () => (await fetchRetry(`${issuer}/__stats`)).json();
const peerConfig = (body) => fetchRetry(`${issuer}/__config`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());

// ---------------------------------------------------------------------------------------------
// 2. The two apps.

const guideDir = join(work, "guide-app");
for (const entry of ["app", "lib", "types", "auth.ts", "middleware.ts", "next.config.mjs", "tsconfig.json", "package.json", ".npmrc"]) {
  cpSync(join(EXAMPLE, entry), join(guideDir, entry), { recursive: true });
}
cpSync(GUIDE, guideDir, { recursive: true });
symlinkSync(join(EXAMPLE, "node_modules"), join(guideDir, "node_modules"));
log("building variant (a), the guide app (next build)");
const buildStart = Date.now();
execFileSync(process.execPath, [join(EXAMPLE, "node_modules/next/dist/bin/next"), "build"], {
  cwd: guideDir,
  env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  stdio: ["ignore", "ignore", "inherit"],
});
log(`built in ${((Date.now() - buildStart) / 1000).toFixed(0)} s`);

const nextEnv = (extra) => ({ ...process.env, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production", AUTH_SECRET: SECRET, OIDC_ISSUER: issuer, ...extra });
const nextStart = (name, dir, port, env) =>
  start(name, process.execPath, [join(EXAMPLE, "node_modules/next/dist/bin/next"), "start", "-H", "127.0.0.1", "-p", String(port)], { cwd: dir, env });

const guideApp = nextStart("guide-next", guideDir, guidePort, nextEnv({
  OIDC_CLIENT_ID: CLIENTS.guide.id,
  OIDC_CLIENT_SECRET: CLIENTS.guide.secret,
}));
const app = nextStart("authgate-next", EXAMPLE, appPort, nextEnv({}));

writeFileSync(join(work, "authgate.toml"), `
[server]
listen = "127.0.0.1:${gatewayPort}"
public_url = "${gatewayBase}"
upstream = "http://127.0.0.1:${appPort}"
base_path = "/api/auth"
pass_access_token = true

[session]
secret = ["${SECRET}"]

[refresh]
mode = "inline"
skew = "${SKEW}s"

[store]
url = "sqlite://${join(work, "authgate.db")}"

[cache]
url = "memory://"

[[providers]]
id = "op"
name = "Local OP"
issuer = "${issuer}"
client_id = "${CLIENTS.authgate.id}"
client_secret = "${CLIENTS.authgate.secret}"
scopes = ["openid", "email", "profile", "offline_access"]
authorization_params = { prompt = "consent" }

[[routes]]
path = "/api/**"
access = "api"

[[routes]]
path = "/protected/**"
access = "protected"

[[routes]]
path = "/**"
access = "public"
`);
const gateway = start("authgate", BIN, ["serve", "--config", join(work, "authgate.toml")], {
  env: { ...process.env, AUTHGATE_LOG: process.env.AUTHGATE_LOG ?? "warn" },
});
await waitHttp(`${guideBase}/`, guideApp);
await waitHttp(`http://127.0.0.1:${appPort}/`, app);
await waitHttp(`${gatewayBase}/healthz`, gateway);
log(`(a) guide app at ${guideBase}; (b) authgate at ${gatewayBase} -> app at :${appPort}`);

// ---------------------------------------------------------------------------------------------
// 3. Signing in through the real flows (Auth.js's or authgate's /api/auth, the
//    provider's development interactions), as next-auth/react's signIn() does.

class Jar {
  constructor() { this.cookies = new Map(); }
  header() { return [...this.cookies].map(([n, v]) => `${n}=${v}`).join("; "); }
  absorb(res) {
    for (const c of res.headers.getSetCookie()) {
      const [nv, ...attrs] = c.split(";");
      const eq = nv.indexOf("=");
      const name = nv.slice(0, eq).trim();
      const value = nv.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*(max-age=0|expires=thu, 01 jan 1970)/i.test(a));
      if (expired || !value) this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }
  async fetch(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.cookies.size) headers.cookie = this.header();
    const res = await fetchRetry(url, { ...init, headers, redirect: "manual" });
    this.absorb(res);
    return res;
  }
}

const unescapeHtml = (s) => s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");

async function signIn(base, login) {
  const app = new Jar();
  const { csrfToken } = await (await app.fetch(`${base}/api/auth/csrf`)).json();
  const res = await app.fetch(`${base}/api/auth/signin/op`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-auth-return-redirect": "1" },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${base}/protected/summary` }),
  });
  const { url } = await res.json();
  if (!url?.startsWith(issuer)) throw new Error(`sign-in at ${base} did not point at the provider: ${url}`);
  const provider = new Jar();
  let next = { url: new URL(url), form: undefined };
  for (let step = 0; step < 20; step++) {
    const init = next.form
      ? { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(next.form) }
      : {};
    const r = await provider.fetch(next.url, init);
    if (r.status >= 300 && r.status < 400) {
      await r.arrayBuffer();
      const location = new URL(r.headers.get("location"), next.url);
      if (location.port === new URL(base).port) {
        const done = await app.fetch(`${base}${location.pathname}${location.search}`);
        await done.arrayBuffer();
        if (done.status !== 302) throw new Error(`callback at ${base}: ${done.status}`);
        return app;
      }
      next = { url: location, form: undefined };
      continue;
    }
    const html = await r.text();
    if (r.status !== 200) throw new Error(`provider: ${r.status} at ${next.url}: ${html}`);
    const form = html.slice(html.indexOf("<form"));
    const action = unescapeHtml(form.split('action="')[1].split('"')[0]);
    const prompt = form.split('name="prompt" value="')[1].split('"')[0];
    next = {
      url: new URL(action, next.url),
      form: prompt === "login" ? { prompt: "login", login, password: "any" } : { prompt: "consent" },
    };
  }
  throw new Error("too many provider steps");
}

/** The session cookie pieces a jar holds, as one Cookie header value. */
const sessionCookie = (jar) =>
  [...jar.cookies].filter(([n]) => /session-token/.test(n)).map(([n, v]) => `${n}=${v}`).join("; ");

// ---------------------------------------------------------------------------------------------
// 4. Throughput.

function wrk(url, cookie, duration) {
  const out = execFileSync("wrk", ["-t", THREADS, "-c", CONNECTIONS, "-d", duration, "--timeout", "10s", "--latency", "-H", `Cookie: ${cookie}`, url], {
    encoding: "utf8",
  });
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)[1]);
  const ms = (label) => {
    const m = out.match(new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s)`, "m"));
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const requests = Number(out.match(/(\d+) requests in/)[1]);
  const socketErrors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  return { rps, p50_ms: ms("50"), p99_ms: ms("99"), requests, non2xx, socket_errors: errors };
}

async function checkPage(url, cookie) {
  const res = await fetchRetry(url, { headers: { cookie }, redirect: "manual" });
  const body = await res.text();
  return { status: res.status, tokenPresent: body.includes("access token present") };
}

const variants = { guide: { base: guideBase }, authgate: { base: gatewayBase } };
for (const [name, v] of Object.entries(variants)) {
  const jar = await signIn(v.base, `throughput-${name}`);
  v.cookie = sessionCookie(jar);
  const check = await checkPage(`${v.base}/protected/summary`, v.cookie);
  if (check.status !== 200 || !check.tokenPresent) throw new Error(`${name}: protected page check failed: ${JSON.stringify(check)}`);
}

// Targets, run interleaved ROUNDS times; the baseline is the example app
// itself with no gateway in front (it renders "nobody").
const targets = [["app_direct_protected", `http://127.0.0.1:${appPort}/protected/summary`, ""]];
for (const [name, v] of Object.entries(variants)) {
  targets.push([`${name}_protected`, `${v.base}/protected/summary`, v.cookie]);
  targets.push([`${name}_public`, `${v.base}/`, v.cookie]);
}
const rounds = {};
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, url, cookie] of targets) {
    log(`round ${round}, wrk ${name}: warm-up ${WARMUP}, then ${DURATION}`);
    wrk(url, cookie, WARMUP);
    const result = wrk(url, cookie, DURATION);
    (rounds[name] ??= []).push(result);
    log(`  ${JSON.stringify(result)}`);
  }
}
// Per target: the round with the median requests/s (the lower one of two).
const throughput = {};
for (const [name, results] of Object.entries(rounds)) {
  const sorted = [...results].sort((a, b) => a.rps - b.rps);
  throughput[name] = { ...sorted[Math.floor((sorted.length - 1) / 2)], rps_all_rounds: results.map((r) => r.rps) };
}

// ---------------------------------------------------------------------------------------------
// 5. The refresh storm.

async function sessionState(base, cookie) {
  const res = await fetchRetry(`${base}/api/auth/session`, { headers: { cookie, "content-type": "application/json" } });
  const body = res.ok ? await res.json().catch(() => null) : null;
  return { ok: res.ok && !!body?.user && !body?.error, error: body?.error ?? (res.ok ? null : `http_${res.status}`) };
}

async function storm(name, base) {
  await peerConfig({ accessTokenTtl: STORM_TTL });
  log(`storm ${name}: signing in ${SESSIONS} sessions (access tokens live ${STORM_TTL} s)`);
  const cookies = [];
  for (let i = 0; i < SESSIONS; i++) cookies.push(sessionCookie(await signIn(base, `storm-${name}-${i}`)));
  await sleep((STORM_TTL + 1) * 1000);
  const before = await peerStats();
  log(`storm ${name}: ${SESSIONS} × ${PER_SESSION} concurrent requests`);
  const started = performance.now();
  const results = await Promise.all(cookies.flatMap((cookie, session) =>
    Array.from({ length: PER_SESSION }, async () => {
      const t0 = performance.now();
      let res;
      let body;
      try {
        res = await fetch(`${base}/protected/summary`, { headers: { cookie }, redirect: "manual" });
        body = await res.text();
      } catch (error) {
        return { session, status: 0, tokenPresent: false, ms: performance.now() - t0, done: performance.now(), set: [], error: String(error) };
      }
      const t1 = performance.now();
      const set = res.headers.getSetCookie().filter((c) => /session-token/.test(c)).map((c) => c.split(";")[0]);
      return { session, status: res.status, tokenPresent: body.includes("access token present"), ms: t1 - t0, done: t1, set };
    })));
  const wall = performance.now() - started;
  const after = await peerStats();
  const grants = after.refresh_grants - before.refresh_grants;
  const failed = Object.entries(after.refresh_errors).reduce((n, [code, count]) => n + count - (before.refresh_errors[code] ?? 0), 0);
  const invalidGrant = (after.refresh_errors.invalid_grant ?? 0) - (before.refresh_errors.invalid_grant ?? 0);
  // The browser keeps the cookie of the response that completed last.
  const kept = cookies.map((cookie, session) => {
    const mine = results.filter((r) => r.session === session && r.set.length).sort((a, b) => a.done - b.done);
    return mine.length ? mine.at(-1).set.join("; ") : cookie;
  });
  const stormOk = results.filter((r) => r.status === 200 && r.tokenPresent).length;
  const lostNow = (await Promise.all(kept.map((c) => sessionState(base, c)))).filter((s) => !s.ok).length;
  log(`storm ${name}: waiting one more token lifetime, then one request per session`);
  await sleep((STORM_TTL + 1) * 1000);
  const later = [];
  for (const c of kept) later.push(await sessionState(base, c));
  const latencies = results.map((r) => r.ms).sort((a, b) => a - b);
  return {
    sessions: SESSIONS,
    requests: results.length,
    requests_ok: stormOk,
    statuses: results.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}),
    refresh_grant_requests: grants + failed,
    grant_requests_per_session: (grants + failed) / SESSIONS,
    successful_grants: grants,
    invalid_grant: invalidGrant,
    grants_revoked: after.grants_revoked - before.grants_revoked,
    sessions_lost_right_after: lostNow,
    sessions_lost_after_next_expiry: later.filter((s) => !s.ok).length,
    errors_after_next_expiry: [...new Set(later.filter((s) => !s.ok).map((s) => s.error))],
    storm_wall_ms: Math.round(wall),
    storm_p50_ms: Math.round(percentile(latencies, 0.5)),
    storm_p99_ms: Math.round(percentile(latencies, 0.99)),
  };
}

const storms = {};
for (const [name, v] of Object.entries(variants)) {
  storms[name] = await storm(name, v.base);
  log(`  ${JSON.stringify(storms[name])}`);
}

const ratio = (a, b) => Math.round((a / b) * 100) / 100;
console.log(JSON.stringify({
  wrk: { threads: Number(THREADS), connections: Number(CONNECTIONS), duration: DURATION },
  throughput,
  protected_vs_public: {
    guide: ratio(throughput.guide_protected.rps, throughput.guide_public.rps),
    authgate: ratio(throughput.authgate_protected.rps, throughput.authgate_public.rps),
  },
  storm: storms,
  versions: {
    node: process.version,
    next: JSON.parse(readFileSync(join(EXAMPLE, "node_modules/next/package.json"), "utf8")).version,
    "next-auth": JSON.parse(readFileSync(join(EXAMPLE, "node_modules/next-auth/package.json"), "utf8")).version,
  },
}, null, 2));
// The children's output pipes keep the event loop alive: exit (stopping them).
process.exit(0);
