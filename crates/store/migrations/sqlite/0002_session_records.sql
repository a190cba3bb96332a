-- Session records for both session strategies (see crates/store/SCHEMA.md).
-- Every sign-in gets a row keyed by a random session id (`id`, the JWT
-- cookie's `sid`); only database-strategy rows keep a token hash. A revoked
-- row stays revoked: signing in again creates a new row. SQLite cannot change
-- a primary key in place, so the table is rebuilt.

CREATE TABLE sessions_v2 (
    id             TEXT PRIMARY KEY,         -- random session id (sid)
    "sessionToken" TEXT UNIQUE,              -- database strategy: lowercase hex SHA-256 of the cookie token
    "userId"       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    "accountId"    TEXT REFERENCES accounts (id) ON DELETE CASCADE, -- the account signed in with
    expires        INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,         -- when expires was last written
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    user_agent     TEXT,
    revoked_at     INTEGER
);

INSERT INTO sessions_v2 (id, "sessionToken", "userId", "accountId", expires, updated_at,
                         created_at, last_seen_at)
SELECT lower(hex(randomblob(16))), "sessionToken", "userId", "accountId", expires, updated_at,
       updated_at, updated_at
FROM sessions;

DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;

CREATE INDEX sessions_user_id_idx ON sessions ("userId");
CREATE INDEX sessions_account_id_idx ON sessions ("accountId");
CREATE INDEX sessions_expires_idx ON sessions (expires);
