#!/usr/bin/env node
// Times @auth/core's `decode` (Auth.js v5 session token) for comparison with
// authgate's Rust codec (crates/core/benches/cookie_decode.rs).
//
//   node bench-decode.mjs [--seconds N] [--secret S] [--salt NAME] [TOKEN]
//
// Without TOKEN it encodes a realistic ~900-byte session (profile claims plus
// an `authgate` object, padded until the compact JWE is ~900 bytes) and prints
// its length. With TOKEN (e.g. the exact token the Rust benchmark decodes) it
// times that one; it must have been made with the same secret and salt.
// Defaults: secret "test-secret-at-least-32-chars-long!!", salt
// "authjs.session-token", 3 s of timed calls after a 1 s warm-up.
// Calls are sequential (one in flight), as a request handler would make them.

import { encode, decode } from "@auth/core/jwt";

function parseArgs(argv) {
  const opts = {
    seconds: 3,
    secret: "test-secret-at-least-32-chars-long!!",
    salt: "authjs.session-token",
    token: undefined,
    target: 900,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--seconds") opts.seconds = Number(next());
    else if (a === "--secret") opts.secret = next();
    else if (a === "--salt") opts.salt = next();
    else if (a === "--target") opts.target = Number(next());
    else if (a === "-h" || a === "--help") {
      console.log("usage: node bench-decode.mjs [--seconds N] [--secret S] [--salt NAME] [--target BYTES] [TOKEN]");
      process.exit(0);
    } else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else opts.token = a;
  }
  if (!(opts.seconds > 0)) throw new Error("--seconds must be > 0");
  return opts;
}

function claims(pad) {
  return {
    name: "Ada Lovelace",
    email: "ada.lovelace@analytical-engine.example",
    picture: "https://avatars.example.com/u/18342071?v=4&s=460",
    sub: "8f14e45f-ceea-467a-9f3b-2c0b1c7a5e21",
    authgate: {
      v: 1,
      provider: "github",
      accessTokenExpiresAt: 1764288000,
      refreshHandle: "rh_" + "3q2+7w".repeat(4) + "x".repeat(pad),
      scopes: ["openid", "profile", "email", "read:org"],
      refreshError: null,
    },
  };
}

async function realisticToken(opts) {
  // Grow the padding until the compact JWE reaches the target length. The JWE
  // grows in 16-byte AES blocks (~21 base64url chars), so this lands within
  // one block of the target.
  let pad = 0;
  let token = await encode({ token: claims(pad), secret: opts.secret, salt: opts.salt });
  while (token.length < opts.target) {
    pad += 1;
    token = await encode({ token: claims(pad), secret: opts.secret, salt: opts.salt });
  }
  return token;
}

async function timeFor(seconds, token, opts) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let n = 0;
  let now = start;
  // Check the clock every 64 calls so timing overhead stays negligible.
  while (now < deadline) {
    for (let i = 0; i < 64; i++) {
      await decode({ token, secret: opts.secret, salt: opts.salt });
    }
    n += 64;
    now = process.hrtime.bigint();
  }
  return { n, ns: Number(now - start) };
}

const opts = parseArgs(process.argv.slice(2));
const generated = opts.token === undefined;
const token = generated ? await realisticToken(opts) : opts.token;

const check = await decode({ token, secret: opts.secret, salt: opts.salt });
if (!check) throw new Error("token did not decode");
console.log(`token: ${token.length} bytes (${generated ? "generated" : "from argv"})`);
if (generated && process.env.BENCH_PRINT_TOKEN) console.log(token);
console.log(`node ${process.version}, @auth/core decode, ${opts.seconds} s timed after 1 s warm-up`);

await timeFor(1, token, opts); // warm-up: JIT, WebCrypto init
const { n, ns } = await timeFor(opts.seconds, token, opts);
const usPerCall = ns / 1e3 / n;
console.log(`${n} calls in ${(ns / 1e9).toFixed(2)} s`);
console.log(`${usPerCall.toFixed(1)} µs/call, ${Math.round((n * 1e9) / ns)} calls/s`);
