#!/usr/bin/env node
// Seeds N database sessions for the memory benchmark (issue #6).
//
//   node bench/seed_sessions.mjs N SQL_OUT TOKENS_OUT [--expires EPOCH]
//
// Writes an SQL script (one transaction) that inserts N users and N sessions
// into an authgate SQLite database (schema: crates/store/migrations/sqlite),
// and a file with the N session cookie values, one a line. Each cookie value
// is a random 256-bit token (base64url), stored as authgate stores it: the
// lowercase hex SHA-256 of the token (crates/store/SCHEMA.md), with a random
// session id as every session record has. Sessions have no linked account
// ("accountId" NULL): the gateway then needs no token reads.
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";

const [n, sqlOut, tokensOut] = process.argv.slice(2);
if (!n || !sqlOut || !tokensOut) {
  console.error("usage: node seed_sessions.mjs N SQL_OUT TOKENS_OUT");
  process.exit(2);
}
const count = Number(n);
const now = Math.floor(Date.now() / 1000);
const expires = now + 30 * 86400;
const sql = createWriteStream(sqlOut);
const tokens = createWriteStream(tokensOut);
sql.write("BEGIN;\n");
for (let i = 0; i < count; i++) {
  const user = randomBytes(16).toString("hex");
  const token = randomBytes(32).toString("base64url");
  const hash = createHash("sha256").update(token).digest("hex");
  sql.write(`INSERT INTO users (id, name, email) VALUES ('${user}', 'Bench User ${i}', 'bench-${i}@example.test');\n`);
  const sid = randomBytes(16).toString("hex");
  sql.write(
    `INSERT INTO sessions (id, "sessionToken", "userId", expires, updated_at, created_at, last_seen_at) ` +
      `VALUES ('${sid}', '${hash}', '${user}', ${expires}, ${now}, ${now}, ${now});\n`,
  );
  tokens.write(`${token}\n`);
}
sql.write("COMMIT;\n");
await Promise.all([
  new Promise((r) => sql.end(r)),
  new Promise((r) => tokens.end(r)),
]);
console.log(`${count} users and sessions -> ${sqlOut}, cookies -> ${tokensOut}`);
