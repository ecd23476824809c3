-- Refresh tokens bound to the credential that minted them, and rotated on use.
--
-- A refresh token records where it came from: a user's password at a password version, a personal access token,
-- or a robot. It is good only while that credential is: a password change (which bumps the version), a disabled
-- or deleted user, a revoked or expired token or robot all end it. A rotating token is retired by its use, which
-- issues the next token of its family; presenting a retired token again (a stolen copy, replayed) revokes the
-- whole family. Docker's identity tokens (GET /token?offline_token=true, which `docker login` stores and presents
-- unchanged forever) cannot rotate: they are bound to their credential like the others but not rotated.

ALTER TABLE users ADD COLUMN password_version integer NOT NULL DEFAULT 1;

ALTER TABLE refresh_tokens ADD COLUMN family_id text;
ALTER TABLE refresh_tokens ADD COLUMN credential text CHECK (credential IN ('password', 'pat', 'robot'));
ALTER TABLE refresh_tokens ADD COLUMN user_id bigint REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD COLUMN password_version integer;
ALTER TABLE refresh_tokens ADD COLUMN access_token_id bigint REFERENCES access_tokens (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD COLUMN robot_id bigint REFERENCES robots (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD COLUMN retired_at timestamptz;
ALTER TABLE refresh_tokens ADD COLUMN rotating boolean NOT NULL DEFAULT true;

-- Tokens issued before this migration name no credential, so nothing could end them: they end now (clients log in
-- again once).
UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL;

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_access_token ON refresh_tokens (access_token_id);
CREATE INDEX refresh_tokens_robot ON refresh_tokens (robot_id);
