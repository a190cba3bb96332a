-- What the provider said about the user's groups, roles and the claims route
-- rules name (JSON, authgate_core::attributes::Attributes), kept with a
-- database-strategy session and replaced at each refresh. NULL: none.

ALTER TABLE sessions ADD COLUMN attributes TEXT;
