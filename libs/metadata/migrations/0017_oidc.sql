-- Company sign-in with OpenID Connect (issue 24): the link from an identity provider's subject to a Lading user,
-- the state of sign-ins under way, console sessions minted by such a sign-in, and the CI ID tokens already used.

-- A user signed in through an issuer is found again by (issuer, sub), the provider's stable id for them: never by
-- e-mail, which a provider may let its users change or which another provider may assert for someone else.
CREATE TABLE oidc_identities (
  issuer         text NOT NULL,
  subject        text NOT NULL,
  user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- A sign-in between the redirect to the provider and its callback, kept in the database so that the callback may
-- reach any replica: looked up by a digest of its state, taken (deleted) by the callback, so a state works once.
CREATE TABLE oidc_logins (
  state_hash     text PRIMARY KEY,
  nonce          text NOT NULL,
  code_verifier  text NOT NULL,
  expires_at     timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);

-- A console session signed in through the provider holds the user by an 'oidc' credential (it dies with the user,
-- and with the link) and carries the groups the provider named at sign-in (refresh_tokens.groups, 0016).
ALTER TABLE refresh_tokens DROP CONSTRAINT IF EXISTS refresh_tokens_credential_check;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_credential_check CHECK (credential IN ('password', 'pat', 'robot', 'oidc'));

-- Workload identity tokens (a CI job's ID token) exchanged at /token, by issuer and jti, until they expire: one
-- presented again within its lifetime is a replay and refused.
CREATE TABLE workload_token_uses (
  issuer      text NOT NULL,
  jti         text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (issuer, jti)
);
CREATE INDEX workload_token_uses_expiry ON workload_token_uses (expires_at);
