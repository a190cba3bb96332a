#!/usr/bin/env node
// Mints an authgate JWT-strategy session cookie value with @auth/core's own
// `encode` (the cookie is byte-compatible with Auth.js): profile claims plus
// authgate's `{acc, prv, ate}` with a far-future access-token expiry, so the
// gateway decides every request from the cookie alone and never refreshes.
//
//   node bench/mint_cookie.mjs [--secret S] [--provider ID] [--salt NAME]
//
// Prints the JWE (the value of `authjs.session-token`) on stdout.
import { importInterop } from "./lib.mjs";

const { encode } = await importInterop("@auth/core/jwt");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const secret = opt("--secret", "test-secret-at-least-32-chars-long!!");
const provider = opt("--provider", "gh");
const salt = opt("--salt", "authjs.session-token");

const token = await encode({
  secret,
  salt,
  maxAge: 30 * 86400,
  token: {
    sub: "3c9d1f2a-8b7e-4d6c-a5f4-e3d2c1b0a998",
    name: "Ada Lovelace-Byron",
    email: "ada.lovelace@analytical-engine.example",
    picture: "https://lh3.googleusercontent.com/a/ACg8ocJ2x7Yh-Q9Lz4mFz0sample-avatar=s96-c",
    authgate: {
      acc: "5e0b6a52-4f1d-4c55-9a0e-2b7d8c9f1a33",
      prv: provider,
      ate: 4_102_444_800, // 2100-01-01: never stale during the run
    },
  },
});
process.stdout.write(`${token}\n`);
