// Writes an Auth.js database the way an Auth.js app does: through the real
// adapter's own methods (createUser, linkAccount, createSession), for
// authgate's `import authjs` tests (crates/cli/tests/import_authjs.rs).
//
// stdin: {"adapter": "drizzle" | "pg", "url": "postgres://…", "schema": "…",
//         "users": [{"name", "email", "accounts": [{provider, providerAccountId,
//           type, access_token, refresh_token, expires_at, token_type, scope,
//           id_token}], "sessions": [{"sessionToken", "expires": epoch seconds}]}]}
// stdout: {"users": [{"id": "…" (as the adapter returned it, as text), "email"}]}
//
// The tables are created in the given (fresh) PostgreSQL schema:
// - drizzle: from the adapter's own table definitions (`defineTables` of
//   @auth/drizzle-adapter's lib/pg.js, read with drizzle-orm's
//   getTableConfig), i.e. the DDL drizzle-kit would generate for them;
// - pg: @auth/pg-adapter's documented SQL schema
//   (https://authjs.dev/getting-started/adapters/pg), verbatim.
import pg from "pg";
import PostgresAdapter from "@auth/pg-adapter";
import { DrizzleAdapter } from "@auth/drizzle-adapter";
import { drizzle } from "drizzle-orm/node-postgres";
import { getTableConfig } from "drizzle-orm/pg-core";
// Not exported by the package's "exports" map; imported by path so the DDL
// comes from the very definitions the adapter uses.
import { defineTables } from "./node_modules/@auth/drizzle-adapter/lib/pg.js";

const PG_ADAPTER_SCHEMA = `
CREATE TABLE verification_token
(
  identifier TEXT NOT NULL,
  expires TIMESTAMPTZ NOT NULL,
  token TEXT NOT NULL,

  PRIMARY KEY (identifier, token)
);

CREATE TABLE accounts
(
  id SERIAL,
  "userId" INTEGER NOT NULL,
  type VARCHAR(255) NOT NULL,
  provider VARCHAR(255) NOT NULL,
  "providerAccountId" VARCHAR(255) NOT NULL,
  refresh_token TEXT,
  access_token TEXT,
  expires_at BIGINT,
  id_token TEXT,
  scope TEXT,
  session_state TEXT,
  token_type TEXT,

  PRIMARY KEY (id)
);

CREATE TABLE sessions
(
  id SERIAL,
  "userId" INTEGER NOT NULL,
  expires TIMESTAMPTZ NOT NULL,
  "sessionToken" VARCHAR(255) NOT NULL,

  PRIMARY KEY (id)
);

CREATE TABLE users
(
  id SERIAL,
  name VARCHAR(255),
  email VARCHAR(255),
  "emailVerified" TIMESTAMPTZ,
  image TEXT,

  PRIMARY KEY (id)
);
`;

const q = (name) => `"${name}"`;

/** CREATE TABLE statements for the adapter's default PostgreSQL tables. */
function drizzleDdl() {
  const tables = defineTables();
  const order = [
    tables.usersTable,
    tables.accountsTable,
    tables.sessionsTable,
    tables.verificationTokensTable,
    tables.authenticatorsTable,
  ];
  return order.map((table) => {
    const config = getTableConfig(table);
    const lines = config.columns.map((c) =>
      [
        q(c.name),
        c.getSQLType(),
        c.primary ? "PRIMARY KEY" : "",
        c.notNull ? "NOT NULL" : "",
        c.isUnique ? "UNIQUE" : "",
      ]
        .filter(Boolean)
        .join(" "),
    );
    for (const pk of config.primaryKeys) {
      lines.push(`PRIMARY KEY (${pk.columns.map((c) => q(c.name)).join(", ")})`);
    }
    for (const fk of config.foreignKeys) {
      const ref = fk.reference();
      const target = getTableConfig(ref.foreignTable).name;
      lines.push(
        `FOREIGN KEY (${ref.columns.map((c) => q(c.name)).join(", ")}) ` +
          `REFERENCES ${q(target)} (${ref.foreignColumns.map((c) => q(c.name)).join(", ")})` +
          (fk.onDelete ? ` ON DELETE ${fk.onDelete}` : ""),
      );
    }
    return `CREATE TABLE ${q(config.name)} (\n  ${lines.join(",\n  ")}\n);`;
  });
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const pool = new pg.Pool({
    connectionString: input.url,
    options: `-c search_path=${input.schema}`,
    max: 2,
  });
  try {
    let adapter;
    if (input.adapter === "drizzle") {
      for (const statement of drizzleDdl()) await pool.query(statement);
      adapter = DrizzleAdapter(drizzle(pool));
    } else if (input.adapter === "pg") {
      await pool.query(PG_ADAPTER_SCHEMA);
      adapter = PostgresAdapter(pool);
    } else {
      throw new Error(`unknown adapter ${input.adapter}`);
    }
    const out = [];
    for (const u of input.users) {
      // As Auth.js's core does at a first sign-in: a user, then its account.
      const user = await adapter.createUser({
        id: crypto.randomUUID(),
        name: u.name ?? null,
        email: u.email,
        emailVerified: u.emailVerified ? new Date(u.emailVerified * 1000) : null,
        image: u.image ?? null,
      });
      for (const a of u.accounts ?? []) {
        await adapter.linkAccount({ ...a, userId: user.id });
      }
      for (const s of u.sessions ?? []) {
        await adapter.createSession({
          sessionToken: s.sessionToken,
          userId: user.id,
          expires: new Date(s.expires * 1000),
        });
      }
      // Read back through the adapter, as Auth.js would.
      const back = await adapter.getUser(user.id);
      out.push({ id: String(back.id), email: back.email });
    }
    process.stdout.write(JSON.stringify({ users: out }));
  } finally {
    await pool.end();
  }
}

main().catch((e) => {
  console.error(e?.stack ?? String(e));
  process.exit(1);
});
