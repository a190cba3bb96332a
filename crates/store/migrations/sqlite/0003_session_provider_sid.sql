-- The identity provider's session id (`sid` claim of the sign-in's ID token),
-- so an OpenID Connect Back-Channel Logout token naming that `sid` ends the
-- sessions signed in through it. NULL when the provider sent none.

ALTER TABLE sessions ADD COLUMN provider_sid TEXT;
CREATE INDEX sessions_provider_sid_idx ON sessions (provider_sid);
