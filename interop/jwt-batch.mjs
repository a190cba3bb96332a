#!/usr/bin/env node
// Batch driver for the reference Auth.js session-token codecs.
//
// Reads ONE JSON array of requests on stdin and writes ONE JSON array of
// results on stdout, in the same order. A Node start costs ~0.3 s, so callers
// (crates/core/tests/interop.rs) send every vector of a test in one batch.
//
// Requests:
//   {"op":"encode","lib":"authjs"|"next-auth-v4","secret":S,"salt":string,"maxAge":number,"token":{...}}
//       -> {"ok":true,"token":"<compact JWE>"}
//   {"op":"decode","lib":...,"secret":S,"salt":string,"token":"<compact JWE>"}
//       -> {"ok":true,"claims":{...}} | {"ok":false,"error":"<message>","code":"<jose code>"?}
//   {"op":"chunk","lib":...,"name":"<cookie name>","value":"<jwe>","existing":["<cookie name>",...]}
//       -> {"ok":true,"cookies":[{"name","value","expire":bool}]}   (the library's own SessionStore)
//   {"op":"join","lib":...,"name":"<cookie name>","cookies":[["<name>","<value>"],...]}
//       -> {"ok":true,"value":"<joined>"}                           (the library's own SessionStore)
//
// S is a string or, for "authjs" only, a list of strings (first one encrypts,
// decode picks by `kid`). next-auth v4 takes exactly one secret.
//
// Salt: @auth/core (v5) salts the HKDF with the session cookie's name
// ("authjs.session-token" / "__Secure-authjs.session-token"). next-auth v4's
// encode/decode take an optional `salt` that defaults to "", and v4's session
// routes (core/routes/session.js, callback.js) never pass one: a v4 session
// token uses the EMPTY salt. "salt" is passed through to v4 as given (missing
// or null = ""), so callers reproducing v4 session cookies send "".
//
// Every request is handled in its own try/catch: one bad vector yields
// {"ok":false,...} and never aborts the batch. Exit code 2 = unreadable input.

import { createRequire } from "node:module";
import * as authjs from "@auth/core/jwt";

const require = createRequire(import.meta.url);
const nextAuthV4 = require("next-auth/jwt");

// The libraries' cookie chunkers are not exported publicly; load the files.
const authjsCookie = await import(
  new URL("./node_modules/@auth/core/lib/utils/cookie.js", import.meta.url)
);
const nextAuthV4Cookie = require("./node_modules/next-auth/core/lib/cookie.js");

const silentLogger = { debug() {}, warn() {}, error() {}, info() {} };

function v4Secret(secret) {
  if (typeof secret !== "string") {
    throw new Error("next-auth v4 takes exactly one secret (a string)");
  }
  return secret;
}

function salt(req) {
  return req.salt ?? "";
}

async function encode(req) {
  const common = { token: req.token ?? {}, maxAge: req.maxAge };
  if (common.maxAge === undefined || common.maxAge === null) delete common.maxAge;
  switch (req.lib) {
    case "authjs":
      if (typeof req.salt !== "string") throw new Error("authjs needs a string salt (the cookie name)");
      return { token: await authjs.encode({ ...common, secret: req.secret, salt: req.salt }) };
    case "next-auth-v4":
      return {
        token: await nextAuthV4.encode({ ...common, secret: v4Secret(req.secret), salt: salt(req) }),
      };
    default:
      throw new Error(`unknown lib ${JSON.stringify(req.lib)}`);
  }
}

async function decode(req) {
  switch (req.lib) {
    case "authjs":
      if (typeof req.salt !== "string") throw new Error("authjs needs a string salt (the cookie name)");
      return { claims: await authjs.decode({ token: req.token, secret: req.secret, salt: req.salt }) };
    case "next-auth-v4":
      return {
        claims: await nextAuthV4.decode({
          token: req.token,
          secret: v4Secret(req.secret),
          salt: salt(req),
        }),
      };
    default:
      throw new Error(`unknown lib ${JSON.stringify(req.lib)}`);
  }
}

function sessionStore(req, cookies) {
  const option = { name: req.name, options: { httpOnly: true, sameSite: "lax", path: "/" } };
  switch (req.lib) {
    case "authjs":
      return new authjsCookie.SessionStore(option, cookies, silentLogger);
    case "next-auth-v4":
      return new nextAuthV4Cookie.SessionStore(option, { cookies, headers: {} }, silentLogger);
    default:
      throw new Error(`unknown lib ${JSON.stringify(req.lib)}`);
  }
}

function chunk(req) {
  // Present cookies get a dummy value: the store only needs their names.
  const present = Object.fromEntries((req.existing ?? []).map((n) => [n, "x"]));
  const out = sessionStore(req, present).chunk(req.value, {});
  return {
    cookies: out.map((c) => ({
      name: c.name,
      value: c.value,
      expire: c.options?.maxAge === 0,
    })),
  };
}

function join(req) {
  return { value: sessionStore(req, Object.fromEntries(req.cookies ?? [])).value };
}

const ops = { encode, decode, chunk, join };

async function handle(req) {
  try {
    const op = ops[req?.op];
    if (!op) throw new Error(`unknown op ${JSON.stringify(req?.op)}`);
    return { ok: true, ...(await op(req)) };
  } catch (err) {
    const res = { ok: false, error: String(err?.message ?? err) };
    if (err?.code) res.code = err.code;
    return res;
  }
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

let requests;
try {
  requests = JSON.parse(await readStdin());
  if (!Array.isArray(requests)) throw new Error("stdin must be a JSON array of requests");
} catch (err) {
  process.stderr.write(`jwt-batch: ${err?.message ?? err}\n`);
  process.exit(2);
}

const results = [];
for (const req of requests) results.push(await handle(req));
process.stdout.write(JSON.stringify(results) + "\n");
