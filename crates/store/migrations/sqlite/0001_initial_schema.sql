-- authgate storage schema (SQLite). Column names follow Auth.js's adapter
-- schema; see crates/store/SCHEMA.md for the mapping and the differences.
-- Times are epoch seconds (INTEGER). Token columns hold AES-256-GCM ciphertexts
-- ("v1.<kid>.<base64url>"), never plaintext.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    name            TEXT,
    email           TEXT UNIQUE,
    "emailVerified" INTEGER,
    image           TEXT
);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    "userId"            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type                TEXT NOT NULL,
    provider            TEXT NOT NULL,
    "providerAccountId" TEXT NOT NULL,
    refresh_token       TEXT,
    access_token        TEXT,
    expires_at          INTEGER,
    token_type          TEXT,
    scope               TEXT,
    id_token            TEXT,
    session_state       TEXT,
    -- authgate additions
    version             INTEGER NOT NULL DEFAULT 1,
    revoked_at          INTEGER,
    refresh_lease_owner TEXT,
    refresh_lease_until INTEGER,
    CONSTRAINT accounts_provider_account_unique UNIQUE (provider, "providerAccountId")
);

CREATE INDEX accounts_user_id_idx ON accounts ("userId");

CREATE TABLE sessions (
    "sessionToken" TEXT PRIMARY KEY, -- lowercase hex SHA-256 of the cookie token
    "userId"       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    "accountId"    TEXT REFERENCES accounts (id) ON DELETE CASCADE, -- the account signed in with
    expires        INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE INDEX sessions_user_id_idx ON sessions ("userId");
CREATE INDEX sessions_expires_idx ON sessions (expires);
