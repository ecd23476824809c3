-- Principals and permissions: users, robot accounts, personal access tokens, namespaces with grants, the token
-- service's signing keys, refresh tokens, and failed-login counters for rate limiting.

CREATE TABLE users (
  id             bigserial PRIMARY KEY,
  name           text COLLATE "C" NOT NULL UNIQUE,
  password_hash  text NOT NULL,
  is_admin       boolean NOT NULL DEFAULT false,
  disabled_at    timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Robot accounts for CI: a secret, an optional expiry, revocable.
CREATE TABLE robots (
  id           bigserial PRIMARY KEY,
  name         text COLLATE "C" NOT NULL UNIQUE,
  secret_hash  text NOT NULL,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  created_by   text,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Personal access tokens: used as a password by their user; stored as a SHA-256 of a high-entropy secret.
CREATE TABLE access_tokens (
  id          bigserial PRIMARY KEY,
  user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name        text NOT NULL,
  token_hash  text NOT NULL UNIQUE,
  expires_at  timestamptz,
  revoked_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, name)
);

-- A namespace is a repository-name prefix ("team" covers "team" and "team/..."); public ones are readable anonymously.
CREATE TABLE namespaces (
  id          bigserial PRIMARY KEY,
  prefix      text COLLATE "C" NOT NULL UNIQUE,
  public      boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Roles granted on a namespace to a user or robot: pull, push (implies pull), delete, admin (all).
CREATE TABLE grants (
  namespace_id    bigint NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
  principal_type  text NOT NULL CHECK (principal_type IN ('user', 'robot')),
  principal_name  text COLLATE "C" NOT NULL,
  role            text NOT NULL CHECK (role IN ('pull', 'push', 'delete', 'admin')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace_id, principal_type, principal_name, role)
);

-- The token service's keys. The newest unretired key signs; every key not yet expired stays in the JWKS.
CREATE TABLE signing_keys (
  kid               text PRIMARY KEY,
  private_key_pem   text NOT NULL,
  public_jwk        jsonb NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  retired_at        timestamptz,
  expires_at        timestamptz
);

CREATE TABLE refresh_tokens (
  token_hash      text PRIMARY KEY,
  principal_type  text NOT NULL,
  principal_name  text COLLATE "C" NOT NULL,
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- Failed logins per key ("account:<name>" or "addr:<ip>") in the current window.
CREATE TABLE login_failures (
  key           text PRIMARY KEY,
  failures      integer NOT NULL DEFAULT 0,
  window_start  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE uploads ADD COLUMN principal text NOT NULL DEFAULT '';
