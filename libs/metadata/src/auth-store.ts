/** Typed queries on principals, namespaces, grants, signing keys, refresh tokens and login-failure counters. */
import type { SqlExecutor } from './database';

/** A user row. */
export interface UserRow {
  name: string;
  passwordHash: string;
  isAdmin: boolean;
  disabled: boolean;
}

/** A robot account row. */
export interface RobotRow {
  name: string;
  secretHash: string;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** A grant of a role on a namespace prefix. */
export interface GrantRow {
  prefix: string;
  public: boolean;
  role: 'pull' | 'push' | 'delete' | 'admin';
}

/** A stored signing key. */
export interface SigningKeyRow {
  kid: string;
  privateKeyPem: string;
  publicJwk: Record<string, unknown>;
  retired: boolean;
}

/** Finds a user by name. */
export async function findUser(db: SqlExecutor, name: string): Promise<UserRow | null> {
  const r = await db.query<UserRow>(
    `SELECT name, password_hash AS "passwordHash", is_admin AS "isAdmin", disabled_at IS NOT NULL AS disabled FROM users WHERE name = $1`,
    [name],
  );
  return r.rows[0] ?? null;
}

/** Creates a user; false when the name is taken. */
export async function createUser(db: SqlExecutor, name: string, passwordHash: string, isAdmin: boolean): Promise<boolean> {
  const r = await db.query(`INSERT INTO users (name, password_hash, is_admin) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, [name, passwordHash, isAdmin]);
  return r.rowCount > 0;
}

/** Lists users (never their password hashes). */
export async function listUsers(db: SqlExecutor): Promise<Array<{ name: string; isAdmin: boolean; disabled: boolean; createdAt: Date }>> {
  const r = await db.query<{ name: string; isAdmin: boolean; disabled: boolean; createdAt: Date }>(
    `SELECT name, is_admin AS "isAdmin", disabled_at IS NOT NULL AS disabled, created_at AS "createdAt" FROM users ORDER BY name`,
  );
  return r.rows;
}

/** Replaces a user's password hash; false when there is no such user. */
export async function setUserPassword(db: SqlExecutor, name: string, passwordHash: string): Promise<boolean> {
  return (await db.query(`UPDATE users SET password_hash = $2 WHERE name = $1`, [name, passwordHash])).rowCount > 0;
}

/** Disables or re-enables a user; false when there is no such user. */
export async function setUserDisabled(db: SqlExecutor, name: string, disabled: boolean): Promise<boolean> {
  return (await db.query(`UPDATE users SET disabled_at = CASE WHEN $2 THEN now() ELSE NULL END WHERE name = $1`, [name, disabled])).rowCount > 0;
}

/** Deletes a user and their personal access tokens; false when there is no such user. */
export async function deleteUser(db: SqlExecutor, name: string): Promise<boolean> {
  return (await db.query(`DELETE FROM users WHERE name = $1`, [name])).rowCount > 0;
}

/** True when at least one enabled admin exists (bootstrapping creates one only otherwise). */
export async function adminExists(db: SqlExecutor): Promise<boolean> {
  return (await db.query(`SELECT 1 FROM users WHERE is_admin AND disabled_at IS NULL LIMIT 1`)).rows.length > 0;
}

/** Finds a robot account by name (without the `robot$` prefix). */
export async function findRobot(db: SqlExecutor, name: string): Promise<RobotRow | null> {
  const r = await db.query<RobotRow>(
    `SELECT name, secret_hash AS "secretHash", expires_at AS "expiresAt", revoked_at AS "revokedAt" FROM robots WHERE name = $1`,
    [name],
  );
  return r.rows[0] ?? null;
}

/** Creates a robot account; false when the name is taken. */
export async function createRobot(db: SqlExecutor, name: string, secretHash: string, expiresAt: Date | null, createdBy: string): Promise<boolean> {
  const r = await db.query(`INSERT INTO robots (name, secret_hash, expires_at, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`, [
    name,
    secretHash,
    expiresAt,
    createdBy,
  ]);
  return r.rowCount > 0;
}

/** Lists robot accounts (never their secrets). */
export async function listRobots(db: SqlExecutor): Promise<Array<{ name: string; expiresAt: Date | null; revokedAt: Date | null; createdBy: string | null }>> {
  const r = await db.query<{ name: string; expiresAt: Date | null; revokedAt: Date | null; createdBy: string | null }>(
    `SELECT name, expires_at AS "expiresAt", revoked_at AS "revokedAt", created_by AS "createdBy" FROM robots ORDER BY name`,
  );
  return r.rows;
}

/** Revokes a robot account; false when there is no such robot. */
export async function revokeRobot(db: SqlExecutor, name: string): Promise<boolean> {
  return (await db.query(`UPDATE robots SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1`, [name])).rowCount > 0;
}

/** Creates a personal access token for a user; false when the user is missing or the name taken. */
export async function createAccessToken(db: SqlExecutor, user: string, name: string, tokenHash: string, expiresAt: Date | null): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO access_tokens (user_id, name, token_hash, expires_at) SELECT id, $2, $3, $4 FROM users WHERE name = $1 ON CONFLICT DO NOTHING`,
    [user, name, tokenHash, expiresAt],
  );
  return r.rowCount > 0;
}

/** The user a personal access token belongs to, if the token is live. */
export async function findAccessTokenUser(db: SqlExecutor, tokenHash: string): Promise<string | null> {
  const r = await db.query<{ name: string }>(
    `SELECT u.name FROM access_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL`,
    [tokenHash],
  );
  return r.rows[0]?.name ?? null;
}

/** Lists a user's personal access tokens (never the secrets). */
export async function listAccessTokens(db: SqlExecutor, user: string): Promise<Array<{ name: string; expiresAt: Date | null; revokedAt: Date | null }>> {
  const r = await db.query<{ name: string; expiresAt: Date | null; revokedAt: Date | null }>(
    `SELECT t.name, t.expires_at AS "expiresAt", t.revoked_at AS "revokedAt" FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = $1 ORDER BY t.name`,
    [user],
  );
  return r.rows;
}

/** Revokes a personal access token; false when there is no such token. */
export async function revokeAccessToken(db: SqlExecutor, user: string, name: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE access_tokens t SET revoked_at = coalesce(t.revoked_at, now()) FROM users u WHERE u.id = t.user_id AND u.name = $1 AND t.name = $2`,
    [user, name],
  );
  return r.rowCount > 0;
}

/** Creates a namespace or changes whether it is public. */
export async function upsertNamespace(db: SqlExecutor, prefix: string, isPublic: boolean): Promise<void> {
  await db.query(`INSERT INTO namespaces (prefix, public) VALUES ($1, $2) ON CONFLICT (prefix) DO UPDATE SET public = EXCLUDED.public`, [prefix, isPublic]);
}

/** Deletes a namespace with its grants; false when there is no such namespace. */
export async function deleteNamespace(db: SqlExecutor, prefix: string): Promise<boolean> {
  return (await db.query(`DELETE FROM namespaces WHERE prefix = $1`, [prefix])).rowCount > 0;
}

/** Lists namespaces with their grants. */
export async function listNamespaces(db: SqlExecutor): Promise<Array<{ prefix: string; public: boolean; grants: Array<{ principalType: string; principalName: string; role: string }> }>> {
  const r = await db.query<{ prefix: string; public: boolean; grants: Array<{ principalType: string; principalName: string; role: string }> | null }>(
    `SELECT n.prefix, n.public,
            coalesce(json_agg(json_build_object('principalType', g.principal_type, 'principalName', g.principal_name, 'role', g.role)
                     ORDER BY g.principal_type, g.principal_name, g.role) FILTER (WHERE g.role IS NOT NULL), '[]') AS grants
       FROM namespaces n LEFT JOIN grants g ON g.namespace_id = n.id GROUP BY n.id ORDER BY n.prefix`,
  );
  return r.rows.map((row) => ({ ...row, grants: typeof row.grants === 'string' ? JSON.parse(row.grants) : (row.grants ?? []) }));
}

/** Grants a role on a namespace; false when it was already granted or the namespace is missing. */
export async function addGrant(db: SqlExecutor, prefix: string, principalType: 'user' | 'robot', principalName: string, role: GrantRow['role']): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO grants (namespace_id, principal_type, principal_name, role) SELECT id, $2, $3, $4 FROM namespaces WHERE prefix = $1 ON CONFLICT DO NOTHING`,
    [prefix, principalType, principalName, role],
  );
  return r.rowCount > 0;
}

/** Removes a grant; false when there was no such grant. */
export async function removeGrant(db: SqlExecutor, prefix: string, principalType: 'user' | 'robot', principalName: string, role: GrantRow['role']): Promise<boolean> {
  const r = await db.query(
    `DELETE FROM grants g USING namespaces n WHERE g.namespace_id = n.id AND n.prefix = $1 AND g.principal_type = $2 AND g.principal_name = $3 AND g.role = $4`,
    [prefix, principalType, principalName, role],
  );
  return r.rowCount > 0;
}

/**
 * The namespaces that cover a repository name, with the roles a principal holds there (a namespace `team` covers
 * `team` and `team/...`); public namespaces are listed even without a grant.
 */
export async function grantsFor(db: SqlExecutor, repository: string, principalType: 'user' | 'robot' | null, principalName: string | null): Promise<GrantRow[]> {
  const r = await db.query<GrantRow>(
    `SELECT n.prefix, n.public, g.role FROM namespaces n
       LEFT JOIN grants g ON g.namespace_id = n.id AND g.principal_type = $2 AND g.principal_name = $3
      WHERE $1 = n.prefix OR left($1, length(n.prefix) + 1) = n.prefix || '/'`,
    [repository, principalType, principalName],
  );
  return r.rows;
}

/** The signing keys still published (newest first); the first unretired one signs. */
export async function activeSigningKeys(db: SqlExecutor): Promise<SigningKeyRow[]> {
  const r = await db.query<SigningKeyRow>(
    `SELECT kid, private_key_pem AS "privateKeyPem", public_jwk AS "publicJwk", retired_at IS NOT NULL AS retired
       FROM signing_keys WHERE expires_at IS NULL OR expires_at > now() ORDER BY created_at DESC`,
  );
  return r.rows.map((row) => ({ ...row, publicJwk: typeof row.publicJwk === 'string' ? JSON.parse(row.publicJwk) : row.publicJwk }));
}

/** Stores a new signing key. */
export async function insertSigningKey(db: SqlExecutor, kid: string, privateKeyPem: string, publicJwk: Record<string, unknown>): Promise<void> {
  await db.query(`INSERT INTO signing_keys (kid, private_key_pem, public_jwk) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [kid, privateKeyPem, JSON.stringify(publicJwk)]);
}

/** Retires every key but `keep`; retired keys stay published until `expiresAt` so tokens they signed keep working. */
export async function retireSigningKeysExcept(db: SqlExecutor, keep: string, expiresAt: Date): Promise<void> {
  await db.query(`UPDATE signing_keys SET retired_at = coalesce(retired_at, now()), expires_at = coalesce(expires_at, $2) WHERE kid <> $1`, [keep, expiresAt]);
}

/** Stores a refresh token (as a digest of its secret). */
export async function insertRefreshToken(db: SqlExecutor, tokenHash: string, principalType: string, principalName: string, expiresAt: Date): Promise<void> {
  await db.query(`INSERT INTO refresh_tokens (token_hash, principal_type, principal_name, expires_at) VALUES ($1, $2, $3, $4)`, [tokenHash, principalType, principalName, expiresAt]);
}

/** Finds the holder of a live refresh token. */
export async function findRefreshToken(db: SqlExecutor, tokenHash: string): Promise<{ principalType: string; principalName: string } | null> {
  const r = await db.query<{ principalType: string; principalName: string }>(
    `SELECT principal_type AS "principalType", principal_name AS "principalName" FROM refresh_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()`,
    [tokenHash],
  );
  return r.rows[0] ?? null;
}

/** Counts a failed login for each key; returns the highest count in the current window. */
export async function recordLoginFailure(db: SqlExecutor, keys: string[], windowMs: number): Promise<number> {
  const r = await db.query<{ failures: number }>(
    `INSERT INTO login_failures (key, failures, window_start) SELECT k, 1, now() FROM unnest($1::text[]) AS k
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2::double precision / 1000) THEN 1 ELSE login_failures.failures + 1 END,
       window_start = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2::double precision / 1000) THEN now() ELSE login_failures.window_start END
     RETURNING failures`,
    [keys, windowMs],
  );
  return Math.max(0, ...r.rows.map((row) => row.failures));
}

/** The highest failure count among keys within the window, and the seconds until that window ends. */
export async function loginFailures(db: SqlExecutor, keys: string[], windowMs: number): Promise<{ failures: number; retryAfterSeconds: number }> {
  const r = await db.query<{ failures: number; remaining: number }>(
    `SELECT failures, extract(epoch FROM (window_start + make_interval(secs => $2::double precision / 1000) - now()))::float8 AS remaining
       FROM login_failures WHERE key = ANY($1::text[]) AND window_start >= now() - make_interval(secs => $2::double precision / 1000)`,
    [keys, windowMs],
  );
  if (r.rows.length === 0) return { failures: 0, retryAfterSeconds: 0 };
  const worst = r.rows.reduce((a, b) => (b.failures > a.failures ? b : a));
  return { failures: worst.failures, retryAfterSeconds: Math.max(1, Math.ceil(worst.remaining)) };
}

/** Forgets failed logins (after a successful one). */
export async function clearLoginFailures(db: SqlExecutor, keys: string[]): Promise<void> {
  await db.query(`DELETE FROM login_failures WHERE key = ANY($1::text[])`, [keys]);
}
