#!/usr/bin/env node
// The refresh storm against the Auth.js refresh-token-rotation guide's
// behaviour, for comparison with authgate's storm figures (issue #5).
//
//   node bench/authjs_guide_storm.mjs [--accounts 100] [--per-account 10] [--delay-ms 0]
//
// What the guide's `jwt` callback does (authjs.dev/guides/refresh-token-rotation):
// when `Date.now() >= token.expires_at * 1000`, POST the token endpoint with
// grant_type=refresh_token, client_id, client_secret and the cookie's
// refresh_token; on success put the new tokens in the cookie
// (`refresh_token: new.refresh_token ?? token.refresh_token`); on failure set
// `token.error = "RefreshTokenError"`. There is no lock: every request that
// carries the stale cookie refreshes on its own.
//
// This script:
//   1. starts the real `oidc-provider` peer (interop/oidc-provider.mjs, strict
//      refresh-token rotation with reuse detection, as in the authgate tests),
//   2. signs in N accounts through its development interactions (login, then
//      consent; PKCE S256, offline_access, prompt=consent) — as
//      crates/testkit/src/login.rs does — and exchanges each code for tokens,
//   3. fires, all at once, P concurrent refresh requests per account with the
//      same refresh token (P tabs/requests carrying the same stale cookie),
//   4. models the browser: the cookie that survives is the one from the
//      response that completed LAST for that account,
//   5. checks every surviving cookie with one more (sequential) refresh: a
//      session is LOST when its surviving cookie carries RefreshTokenError or
//      its refresh token is no longer accepted (grant revoked by reuse
//      detection). Those sequential refreshes also give the provider's own,
//      uncontended refresh latency.
//
// Prints a JSON summary on stdout (progress on stderr). Loopback only.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { percentile } from "./lib.mjs";

function parseArgs(argv) {
  const o = { accounts: 100, perAccount: 10, delayMs: 0, signinConcurrency: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => Number(argv[++i]);
    if (a === "--accounts") o.accounts = v();
    else if (a === "--per-account") o.perAccount = v();
    else if (a === "--delay-ms") o.delayMs = v();
    else if (a === "--signin-concurrency") o.signinConcurrency = v();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const CLIENT_ID = "guide-bench";
const CLIENT_SECRET = "guide-bench-secret-0123456789abcdef";
const REDIRECT_URI = "http://127.0.0.1:9/api/auth/callback/op"; // never contacted
const log = (m) => process.stderr.write(`${m}\n`);

// ---------------------------------------------------------------------------
// 1. The provider.

const peerPath = fileURLToPath(new URL("../interop/oidc-provider.mjs", import.meta.url));
const peer = spawn(process.execPath, [peerPath, JSON.stringify({
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    // The guide sends client_id/client_secret in the form body.
    token_endpoint_auth_method: "client_secret_post",
  }],
  accessTokenTtl: 3600,
  rotateRefreshToken: true,
  delayRefreshMs: opts.delayMs,
})], { stdio: ["pipe", "pipe", "inherit"] });
const stopPeer = () => { try { peer.kill("SIGTERM"); } catch { /* gone */ } };
process.on("exit", stopPeer);

const { issuer } = await new Promise((resolve, reject) => {
  const rl = createInterface({ input: peer.stdout });
  rl.once("line", (line) => resolve(JSON.parse(line)));
  peer.once("exit", (code) => reject(new Error(`oidc-provider exited (${code})`)));
});
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const tokenEndpoint = discovery.token_endpoint;
log(`oidc-provider at ${issuer}`);

// ---------------------------------------------------------------------------
// 2. Sign-in through the development interactions.

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function unescapeHtml(s) {
  return s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

async function signIn(login) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const authorize = new URL(discovery.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: "code",
    redirect_uri: REDIRECT_URI,
    scope: "openid email profile offline_access",
    prompt: "consent",
    state: b64url(randomBytes(16)),
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();

  const jar = new Map();
  let next = { url: authorize, form: undefined };
  for (let step = 0; step < 20; step++) {
    const headers = {};
    if (jar.size) headers.cookie = [...jar].map(([n, v]) => `${n}=${v}`).join("; ");
    let body;
    if (next.form) {
      body = new URLSearchParams(next.form).toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const res = await fetch(next.url, {
      method: next.form ? "POST" : "GET", headers, body, redirect: "manual",
    });
    for (const c of res.headers.getSetCookie()) {
      const [nv, ...attrs] = c.split(";");
      const eq = nv.indexOf("=");
      const name = nv.slice(0, eq).trim();
      const value = nv.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*(max-age=0|expires=thu, 01 jan 1970)/i.test(a));
      if (expired || !value) jar.delete(name); else jar.set(name, value);
    }
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = new URL(res.headers.get("location"), next.url);
      if (location.origin !== new URL(issuer).origin) {
        const code = location.searchParams.get("code");
        if (!code) throw new Error(`sign-in of ${login} ended without a code: ${location}`);
        return exchange(code, verifier);
      }
      next = { url: location, form: undefined };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`dev interactions: ${res.status} at ${next.url}: ${html}`);
    const form = html.slice(html.indexOf("<form"));
    const action = unescapeHtml(form.split('action="')[1].split('"')[0]);
    const prompt = form.split('name="prompt" value="')[1].split('"')[0];
    next = {
      url: new URL(action, next.url),
      form: prompt === "login"
        ? { prompt: "login", login, password: "any-password" }
        : { prompt: "consent" },
    };
  }
  throw new Error(`dev interactions: too many steps for ${login}`);
}

async function exchange(code, verifier) {
  const res = await fetch(tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI,
      code_verifier: verifier, client_id: CLIENT_ID, client_secret: CLIENT_SECRET,
    }),
  });
  const tokens = await res.json();
  if (!res.ok || !tokens.refresh_token) throw new Error(`code exchange failed: ${JSON.stringify(tokens)}`);
  return tokens;
}

/** The guide's jwt-callback refresh: one POST, no lock. Returns the new cookie state. */
async function guideRefresh(token) {
  const started = process.hrtime.bigint();
  const res = await fetch(tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_type: "refresh_token",
      refresh_token: token.refresh_token,
    }),
  });
  const body = await res.json();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (!res.ok) {
    return { ms, ok: false, error: body.error ?? `http_${res.status}`, token: { ...token, error: "RefreshTokenError" } };
  }
  return {
    ms,
    ok: true,
    token: {
      access_token: body.access_token,
      expires_at: Math.floor(Date.now() / 1000 + body.expires_in),
      refresh_token: body.refresh_token ?? token.refresh_token,
    },
  };
}

const stats = async () => (await fetch(`${issuer}/__stats`)).json();

try {
  log(`signing in ${opts.accounts} accounts…`);
  const sessions = new Array(opts.accounts);
  let nextIndex = 0;
  await Promise.all(Array.from({ length: opts.signinConcurrency }, async () => {
    while (nextIndex < opts.accounts) {
      const i = nextIndex++;
      const t = await signIn(`guide-user-${i}`);
      sessions[i] = { access_token: t.access_token, refresh_token: t.refresh_token, expires_at: 0 };
    }
  }));
  await fetch(`${issuer}/__stats/reset`, { method: "POST" });

  // -------------------------------------------------------------------------
  // 3. The storm: every account's stale cookie, P requests at once, all accounts at once.
  log(`storm: ${opts.accounts} accounts × ${opts.perAccount} concurrent refreshes…`);
  const stormStart = process.hrtime.bigint();
  const perAccount = await Promise.all(sessions.map(async (cookie) => {
    const results = [];
    await Promise.all(Array.from({ length: opts.perAccount }, async () => {
      const r = await guideRefresh(cookie);
      results.push(r); // completion order: the last one is the cookie the browser keeps
    }));
    return results;
  }));
  const stormMs = Number(process.hrtime.bigint() - stormStart) / 1e6;
  const stormStats = await stats();

  const all = perAccount.flat();
  const latencies = all.map((r) => r.ms).sort((a, b) => a - b);
  const errors = {};
  for (const r of all) if (!r.ok) errors[r.error] = (errors[r.error] ?? 0) + 1;
  const successesPerAccount = perAccount.map((rs) => rs.filter((r) => r.ok).length);

  // -------------------------------------------------------------------------
  // 5. Does the surviving cookie still work? One sequential refresh each.
  let lostByErrorCookie = 0;
  let lostByDeadRefreshToken = 0;
  const followUp = [];
  for (const rs of perAccount) {
    const survivor = rs[rs.length - 1].token;
    if (survivor.error) {
      lostByErrorCookie += 1;
      continue;
    }
    const r = await guideRefresh(survivor);
    followUp.push(r.ms);
    if (!r.ok) lostByDeadRefreshToken += 1;
  }

  // The provider's own refresh latency, uncontended: sequential refreshes of
  // the sessions that still work (if any), else of freshly signed-in accounts.
  const baseline = [];
  const live = [];
  for (let i = 0; i < 20; i++) live.push(await signIn(`guide-baseline-${i}`));
  for (let round = 0; round < 5; round++) {
    for (const t of live) {
      const r = await guideRefresh(t);
      if (!r.ok) throw new Error(`baseline refresh failed: ${r.error}`);
      t.refresh_token = r.token.refresh_token;
      baseline.push(r.ms);
    }
  }
  baseline.sort((a, b) => a - b);

  const lost = lostByErrorCookie + lostByDeadRefreshToken;
  const summary = {
    accounts: opts.accounts,
    requests_per_account: opts.perAccount,
    provider_delay_ms: opts.delayMs,
    refresh_requests: all.length,
    provider_grants_succeeded: stormStats.refresh_grants,
    grants_per_session: +(stormStats.refresh_grants / opts.accounts).toFixed(2),
    refresh_errors: stormStats.refresh_errors,
    client_seen_errors: errors,
    invalid_grant: stormStats.refresh_errors.invalid_grant ?? 0,
    grants_revoked_by_provider: stormStats.grants_revoked,
    accounts_with_more_than_one_success: successesPerAccount.filter((n) => n > 1).length,
    sessions_lost: lost,
    sessions_lost_pct: +((100 * lost) / opts.accounts).toFixed(1),
    sessions_lost_error_cookie: lostByErrorCookie,
    sessions_lost_dead_refresh_token: lostByDeadRefreshToken,
    storm_wall_ms: +stormMs.toFixed(1),
    storm_latency_ms: { p50: +percentile(latencies, 0.5).toFixed(2), p99: +percentile(latencies, 0.99).toFixed(2) },
    provider_refresh_latency_uncontended_ms: {
      n: baseline.length,
      p50: +percentile(baseline, 0.5).toFixed(2),
      p99: +percentile(baseline, 0.99).toFixed(2),
    },
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  stopPeer();
}
