// Drives headless Chromium through the example app behind authgate, as a user
// would: real sign-in forms, unchanged next-auth/react client code, tabs.
//
// Started by crates/cli/tests/nextjs_browser.rs, which owns every process
// (the provider and authgate in-process, `next start`, Chromium) and passes:
//   CDP_URL       Chromium's DevTools WebSocket (the test started Chromium)
//   APP_URL       authgate (cookie_format "authjs") in front of the app
//   V4_URL        authgate (cookie_format "next-auth-v4") in front of the same app
//   CONTROL_URL   the test's control endpoints: GET /stats (the provider's
//                 grant counters), POST /revoke {"login"} (revoke the user's
//                 grant at the provider)
//   SKEW_SECS     authgate's refresh skew
//   SHOT_DIR      where screenshots go (one per step; kept when a step fails)
//
// Exits 0 when every step passed; otherwise prints the failed step, its
// error and the screenshot folder, and exits 1.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value.replace(/\/$/, "");
};
const CDP_URL = env("CDP_URL");
const APP = env("APP_URL");
const V4 = env("V4_URL");
const CONTROL = env("CONTROL_URL");
const SKEW = Number(env("SKEW_SECS"));
const SHOTS = env("SHOT_DIR");
const LOGIN = "ada";
mkdirSync(SHOTS, { recursive: true });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (...args) => console.log(`[browser ${new Date().toISOString().slice(11, 23)}]`, ...args);

const browser = await chromium.connectOverCDP(CDP_URL, { timeout: 30_000 });
const pages = new Set();
let stepNo = 0;

async function newPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  pages.add(page);
  page.on("close", () => pages.delete(page));
  page.on("pageerror", (e) => log(`page error on ${page.url()}: ${e.message}`));
  return page;
}

async function screenshots(label) {
  let i = 0;
  for (const page of pages) {
    i += 1;
    const file = join(SHOTS, `${String(stepNo).padStart(2, "0")}-${label}-tab${i}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 5_000 }).catch(() => {});
  }
}

/** Runs one named step; screenshots every open tab after it (and on failure). */
async function step(name, body) {
  stepNo += 1;
  const label = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  log(`step ${stepNo}: ${name}`);
  try {
    await body();
  } catch (error) {
    await screenshots(`${label}-FAILED`);
    console.error(`\nFAILED step ${stepNo} (${name}): ${error.stack ?? error}`);
    for (const page of pages) console.error(`  open tab: ${page.url()}`);
    console.error(`screenshots: ${SHOTS}\n`);
    await browser.close().catch(() => {});
    process.exit(1);
  }
  await screenshots(label);
}

const text = (page, testId) => page.getByTestId(testId).innerText();
const waitText = (page, testId, expected) =>
  page.getByTestId(testId).filter({ hasText: expected }).waitFor();

async function control(path, body) {
  const res = await fetch(`${CONTROL}${path}`, body ? { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {});
  assert.equal(res.status, 200, `control ${path}`);
  return res.json();
}

/** The development provider's login form: type a user, press "Sign in". */
async function providerLogin(page) {
  await page.locator("#username").waitFor();
  await page.fill("#username", LOGIN);
  await page.fill("#name", "Ada Lovelace");
  await page.fill("#email", `${LOGIN}@example.test`);
  await page.click('button[value="allow"]');
}

/** authgate's session JSON, as the page's own fetch sees it. */
const sessionJson = (page) => page.evaluate(() => fetch("/api/auth/session").then((r) => r.json()));

/** Sleeps until authgate considers the access token stale. */
async function waitUntilStale(page) {
  const session = await sessionJson(page);
  assert.ok(session?.accessTokenExpiresAt, `session has accessTokenExpiresAt: ${JSON.stringify(session)}`);
  const staleAt = (session.accessTokenExpiresAt - SKEW) * 1000 + 500;
  const wait = staleAt - Date.now();
  log(`waiting ${Math.max(0, wait)} ms for the access token to go stale`);
  if (wait > 0) await sleep(wait);
}

// ---------------------------------------------------------------------------------------------
// next-auth v5's client against authgate (cookie_format "authjs")

const context = await browser.newContext();
const home = await newPage(context);
let userId = "";

await step("signed out: useSession, getProviders, getCsrfToken", async () => {
  await home.goto(`${APP}/`);
  await waitText(home, "status", "unauthenticated");
  await waitText(home, "providers", "op");
  await waitText(home, "csrf", "received");
});

await step("signIn('op') through the provider's login form lands on the protected page", async () => {
  await home.getByTestId("signin-op").click();
  await providerLogin(home);
  await home.waitForURL(`${APP}/protected`);
  await waitText(home, "header-email", `${LOGIN}@example.test`);
  userId = await text(home, "header-user");
  assert.ok(userId.length > 0, "x-auth-request-user");
  assert.equal(await text(home, "header-name"), "Ada Lovelace");
  assert.equal(await text(home, "header-token"), "present");
  const api = JSON.parse(await text(home, "api-result"));
  assert.deepEqual(api, { ok: true, sub: LOGIN, name: "Ada Lovelace", email: `${LOGIN}@example.test` });
  assert.equal(await text(home, "authjs-user"), `Ada Lovelace <${LOGIN}@example.test>`, "auth() reads authgate's cookie");
  assert.equal(await text(home, "authjs-user-id"), userId);
  await waitText(home, "badge-status", "authenticated");
});

await step("the app's middleware runs behind authgate", async () => {
  const response = await home.goto(`${APP}/protected`);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["x-app-middleware"], "signed-in");
  const anonymous = await home.request.fetch(`${APP}/`, { headers: { cookie: "" } });
  assert.equal(anonymous.headers()["x-app-middleware"], "anonymous");
});

await step("useSession shows the user; update() and getSession() work", async () => {
  await home.goto(`${APP}/`);
  await waitText(home, "status", "authenticated");
  assert.equal(await text(home, "user"), `Ada Lovelace <${LOGIN}@example.test>`);
  assert.ok(!Number.isNaN(Date.parse(await text(home, "expires"))), "expires is a date");
  assert.match(await text(home, "access-expires"), /^\d+$/);
  assert.equal(await text(home, "session-error"), "");
  const updated = home.waitForResponse((r) => r.url().endsWith("/api/auth/session") && r.request().method() === "POST");
  await home.getByTestId("update").click();
  assert.equal((await updated).status(), 200, "update() POSTs to the session endpoint");
  await waitText(home, "status", "authenticated");
  await home.getByTestId("get-session-button").click();
  await waitText(home, "get-session", `${LOGIN}@example.test`);
});

await step("client-side navigation, a server action and a route handler", async () => {
  await home.getByTestId("to-protected").click();
  await home.waitForURL(`${APP}/protected`);
  await waitText(home, "header-user", userId);
  await home.getByTestId("whoami").click();
  await home.getByTestId("whoami-result").filter({ hasText: userId }).waitFor();
  const action = JSON.parse(await text(home, "whoami-result"));
  assert.equal(action.user.id, userId);
  assert.equal(action.api.ok, true);
  await home.getByTestId("fetch-me").click();
  await home.getByTestId("fetch-result").filter({ hasText: "200" }).waitFor();
  const [, body] = (await text(home, "fetch-result")).match(/^200 (.*)$/s);
  assert.equal(JSON.parse(body).user.id, userId);
});

await step("after expiry: 5 tabs and 5 fetches at once, one refresh grant", async () => {
  await waitUntilStale(home);
  const before = await control("/stats");
  const tabs = await Promise.all(Array.from({ length: 5 }, () => newPage(context)));
  const fetches = home.evaluate(() =>
    Promise.all(
      Array.from({ length: 5 }, () =>
        fetch("/api/me", { headers: { accept: "application/json" } }).then(async (r) => ({ status: r.status, body: await r.json() })),
      ),
    ),
  );
  const loads = tabs.map((tab) => tab.goto(`${APP}/protected`));
  const [results, responses] = await Promise.all([fetches, Promise.all(loads)]);
  for (const response of responses) assert.equal(response.status(), 200, "every tab loads");
  for (const tab of tabs) {
    assert.equal(await text(tab, "header-user"), userId, "every tab is the same user");
    assert.equal(JSON.parse(await text(tab, "api-result")).ok, true, "every tab's API call works");
  }
  for (const r of results) {
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.equal(r.body.user.id, userId);
    assert.equal(r.body.api.ok, true, JSON.stringify(r.body));
  }
  const after = await control("/stats");
  assert.equal(after.refresh_grants - before.refresh_grants, 1, `refresh grants: ${JSON.stringify({ before, after })}`);
  assert.equal(after.reuse_detections, before.reuse_detections, "no refresh token was replayed");
  await Promise.all(tabs.map((tab) => tab.close()));
});

await step("a revoked grant: useSession reports RefreshTokenError, the next navigation goes to sign-in", async () => {
  await home.goto(`${APP}/`);
  await waitText(home, "status", "authenticated");
  await control("/revoke", { login: LOGIN });
  await waitUntilStale(home);
  await home.reload();
  await waitText(home, "session-error", "RefreshTokenError");
  assert.equal(await text(home, "status"), "authenticated", "the session is still there, with its error");
  await home.getByTestId("to-protected").click();
  await home.waitForURL((url) => url.pathname === "/api/auth/signin");
  const url = new URL(home.url());
  assert.equal(url.searchParams.get("error"), "RefreshTokenError");
  assert.match(url.searchParams.get("callbackUrl") ?? "", /^\/protected/);
});

await step("sign in again from authgate's sign-in page", async () => {
  await home.getByRole("button", { name: /Local OP/ }).click();
  await providerLogin(home);
  await home.waitForURL((url) => url.pathname === "/protected");
  await waitText(home, "header-user", userId);
});

await step("signOut() in one tab ends the session in every tab", async () => {
  const second = await newPage(context);
  const third = await newPage(context);
  await home.goto(`${APP}/`);
  await second.goto(`${APP}/`);
  await third.goto(`${APP}/protected`);
  await waitText(home, "status", "authenticated");
  await waitText(second, "status", "authenticated");
  await waitText(third, "badge-status", "authenticated");
  await home.getByTestId("signout").click();
  await home.waitForURL(`${APP}/`);
  await waitText(home, "status", "unauthenticated");
  await waitText(second, "status", "unauthenticated");
  await waitText(third, "badge-status", "unauthenticated");
  assert.equal(await sessionJson(second), null);
  const response = await third.reload();
  assert.equal(new URL(third.url()).pathname, "/api/auth/signin", "the protected tab now needs a sign-in");
  assert.equal(response.status(), 200);
  await second.close();
  await third.close();
});

await context.close();
pages.clear();

// ---------------------------------------------------------------------------------------------
// next-auth v4's client against authgate (cookie_format "next-auth-v4")

const v4context = await browser.newContext();
const v4 = await newPage(v4context);

await step("v4: signed out", async () => {
  await v4.goto(`${V4}/v4`);
  await waitText(v4, "v4-status", "unauthenticated");
  assert.equal(await text(v4, "v4-server"), "no v4 session cookie");
});

await step("v4: signIn('op') and useSession", async () => {
  await v4.getByTestId("v4-signin").click();
  await providerLogin(v4);
  await v4.waitForURL(`${V4}/v4`);
  await waitText(v4, "v4-status", "authenticated");
  assert.equal(await text(v4, "v4-user"), `Ada Lovelace <${LOGIN}@example.test>`);
  assert.equal(await text(v4, "v4-server"), `Ada Lovelace <${LOGIN}@example.test>`, "next-auth v4's decode() reads the cookie");
});

await step("v4: signOut", async () => {
  await v4.getByTestId("v4-signout").click();
  await waitText(v4, "v4-status", "unauthenticated");
  const session = await sessionJson(v4);
  assert.deepEqual(session, {}, "no v4 session is {}");
});

await v4context.close();
await browser.close();
log("all steps passed");
