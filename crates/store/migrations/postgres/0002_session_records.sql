-- Session records for both session strategies (see crates/store/SCHEMA.md).
-- Every sign-in gets a row keyed by a random session id (`id`, the JWT
-- cookie's `sid`); only database-strategy rows keep a token hash. A revoked
-- row stays revoked: signing in again creates a new row. Needs PostgreSQL 13+
-- (gen_random_uuid) for the ids of rows that exist already.

ALTER TABLE sessions ADD COLUMN id TEXT;
UPDATE sessions SET id = replace(gen_random_uuid()::text, '-', '');
ALTER TABLE sessions ALTER COLUMN id SET NOT NULL;
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
ALTER TABLE sessions ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);
ALTER TABLE sessions ALTER COLUMN "sessionToken" DROP NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_session_token_unique UNIQUE ("sessionToken");

ALTER TABLE sessions ADD COLUMN created_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
UPDATE sessions SET created_at = updated_at, last_seen_at = updated_at;
ALTER TABLE sessions ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE sessions ALTER COLUMN last_seen_at SET NOT NULL;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN revoked_at BIGINT;

CREATE INDEX sessions_account_id_idx ON sessions ("accountId");
