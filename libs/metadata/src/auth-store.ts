/** Typed queries on principals, namespaces, grants, signing keys, refresh tokens and login-attempt counters. */
import type { Database, SqlExecutor } from './database';

/** A user row. */
export interface UserRow {
  id: number;
  name: string;
  passwordHash: string;
  /** Bumped by every password change: refresh tokens minted with an older password die with it. */
  passwordVersion: number;
  isAdmin: boolean;
  disabled: boolean;
  /** Where the password is checked: `local` (passwordHash) or `ldap` (a bind to the directory; no usable hash). */
  source: UserSource;
}

/** Where a user's password is checked. */
export type UserSource = 'local' | 'ldap';

/** The kinds of principal a grant may name: a user, a robot, or a group an identity provider reports. */
export type GrantPrincipalType = 'user' | 'robot' | 'group';

/** A robot account row. */
export interface RobotRow {
  id: number;
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
    `SELECT id::int AS id, name, password_hash AS "passwordHash", password_version AS "passwordVersion", is_admin AS "isAdmin",
            disabled_at IS NOT NULL AS disabled, source FROM users WHERE name = $1`,
    [name],
  );
  return r.rows[0] ?? null;
}

/** Creates a user; false when the name is taken. */
export async function createUser(db: SqlExecutor, name: string, passwordHash: string, isAdmin: boolean): Promise<boolean> {
  const r = await db.query(`INSERT INTO users (name, password_hash, is_admin) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, [name, passwordHash, isAdmin]);
  return r.rowCount > 0;
}

/**
 * Makes or refreshes the row of a user the directory has just signed in (source `ldap`, no usable password hash);
 * null when the name belongs to a local user, whose row is never taken over. Returns the row as it now is.
 */
export async function upsertDirectoryUser(db: SqlExecutor, name: string): Promise<UserRow | null> {
  await db.query(`INSERT INTO users (name, password_hash, source) VALUES ($1, '!', 'ldap') ON CONFLICT (name) DO NOTHING`, [name]);
  const user = await findUser(db, name);
  return user && user.source === 'ldap' ? user : null;
}

/** Lists users (never their password hashes). */
export async function listUsers(db: SqlExecutor): Promise<Array<{ name: string; isAdmin: boolean; disabled: boolean; createdAt: Date }>> {
  const r = await db.query<{ name: string; isAdmin: boolean; disabled: boolean; createdAt: Date }>(
    `SELECT name, is_admin AS "isAdmin", disabled_at IS NOT NULL AS disabled, created_at AS "createdAt" FROM users ORDER BY name`,
  );
  return r.rows;
}

/**
 * Replaces a user's password hash and bumps its password version, which ends every refresh token the old password
 * minted; false when there is no such user.
 */
export async function setUserPassword(db: SqlExecutor, name: string, passwordHash: string): Promise<boolean> {
  return (await db.query(`UPDATE users SET password_hash = $2, password_version = password_version + 1 WHERE name = $1`, [name, passwordHash])).rowCount > 0;
}

/**
 * Disables or re-enables a user; false when there is no such user. Disabling revokes every refresh token of the
 * user for good (by password or personal access token), so enabling the user again brings none of them back.
 */
export async function setUserDisabled(db: SqlExecutor, name: string, disabled: boolean): Promise<boolean> {
  const r = await db.query<{ n: number }>(
    `WITH changed AS (UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END WHERE name = $1 RETURNING id),
          revoked AS (UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE $2 AND user_id IN (SELECT id FROM changed) RETURNING 1)
     SELECT count(*)::int AS n FROM changed`,
    [name, disabled],
  );
  return r.rows[0].n > 0;
}

/** Deletes a user and their personal access tokens; false when there is no such user. */
export async function deleteUser(db: SqlExecutor, name: string): Promise<boolean> {
  return (await db.query(`DELETE FROM users WHERE name = $1`, [name])).rowCount > 0;
}

/** Deletes the grants given to a user by name (they name the user rather than reference its row); how many went. */
export async function deleteUserGrants(db: SqlExecutor, name: string): Promise<number> {
  return (await db.query(`DELETE FROM grants WHERE principal_type = 'user' AND principal_name = $1`, [name])).rowCount;
}

/** Revokes every refresh token minted for a user by name (already revoked ones keep their time); how many matched. */
export async function revokeUserRefreshTokens(db: SqlExecutor, name: string): Promise<number> {
  return (await db.query(`UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE principal_type = 'user' AND principal_name = $1`, [name])).rowCount;
}

/** True when at least one enabled admin exists (bootstrapping creates one only otherwise). */
export async function adminExists(db: SqlExecutor): Promise<boolean> {
  return (await db.query(`SELECT 1 FROM users WHERE is_admin AND disabled_at IS NULL LIMIT 1`)).rows.length > 0;
}

/** Finds a robot account by name (without the `robot$` prefix). */
export async function findRobot(db: SqlExecutor, name: string): Promise<RobotRow | null> {
  const r = await db.query<RobotRow>(
    `SELECT id::int AS id, name, secret_hash AS "secretHash", expires_at AS "expiresAt", revoked_at AS "revokedAt" FROM robots WHERE name = $1`,
    [name],
  );
  return r.rows[0] ?? null;
}

/**
 * Creates a robot account; false when the name is taken. A robot of a `namespace` (migration 0020) is named
 * `<namespace>+<name>` by its caller; a global robot has none.
 */
export async function createRobot(db: SqlExecutor, name: string, secretHash: string, expiresAt: Date | null, createdBy: string, namespace: string | null = null): Promise<boolean> {
  const r = await db.query(`INSERT INTO robots (name, secret_hash, expires_at, created_by, namespace) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`, [
    name,
    secretHash,
    expiresAt,
    createdBy,
    namespace,
  ]);
  return r.rowCount > 0;
}

/** A robot account as listed: never its secret; `namespace` is null for a global robot. */
export interface RobotListing {
  name: string;
  namespace: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdBy: string | null;
}

/** Lists robot accounts (never their secrets). */
export async function listRobots(db: SqlExecutor): Promise<RobotListing[]> {
  const r = await db.query<RobotListing>(
    `SELECT name, namespace, expires_at AS "expiresAt", revoked_at AS "revokedAt", created_by AS "createdBy" FROM robots ORDER BY name`,
  );
  return r.rows;
}

/** Revokes the robots that belong to a namespace (when it is deleted); how many were revoked. */
export async function revokeNamespaceRobots(db: SqlExecutor, namespace: string): Promise<number> {
  return (await db.query(`UPDATE robots SET revoked_at = now() WHERE namespace = $1 AND revoked_at IS NULL`, [namespace])).rowCount;
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

/**
 * The key of the row that holds the groups a personal access token carries: a `refresh_tokens` row (the table of
 * what a sign-in produced, with its groups and expiry) that no secret can name, since every presented refresh token
 * is looked up by a hex digest, and that no use can rotate (it has no family).
 */
function accessTokenGroupsKey(tokenIdSql: string): string {
  return `'pat-groups:' || ${tokenIdSql}`;
}

/** The live groups of the personal access token whose id `tokenIdSql` is, as a jsonb array (empty when none or expired). */
function accessTokenGroupsSql(tokenIdSql: string): string {
  return `coalesce((SELECT g.groups FROM refresh_tokens g WHERE g.token_hash = ${accessTokenGroupsKey(tokenIdSql)} AND g.revoked_at IS NULL AND g.expires_at > now()), '[]'::jsonb)`;
}

/**
 * Records the groups a user's personal access token carries until `expiresAt` (the bound of the sign-in that named
 * them); after it, the token still works, with no groups. Disabling or deleting the user ends them
 * ({@link revokeUserRefreshTokens}). False when there is no such token.
 */
export async function setAccessTokenGroups(db: SqlExecutor, user: string, name: string, groups: readonly string[], expiresAt: Date): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO refresh_tokens (token_hash, principal_type, principal_name, expires_at, credential, user_id, access_token_id, rotating, groups)
     SELECT ${accessTokenGroupsKey('t.id')}, 'user', u.name, $3, 'pat', u.id, t.id, false, $4::jsonb
       FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = $1 AND t.name = $2
     ON CONFLICT (token_hash) DO UPDATE SET groups = EXCLUDED.groups, expires_at = EXCLUDED.expires_at, revoked_at = NULL`,
    [user, name, expiresAt, JSON.stringify(groups)],
  );
  return r.rowCount > 0;
}

/** A live personal access token: its id, its user, and the groups it carries now. */
export interface AccessTokenOwner {
  tokenId: number;
  userId: number;
  userName: string;
  isAdmin: boolean;
  /** The groups recorded with the token ({@link setAccessTokenGroups}) while they last; empty otherwise. */
  groups: string[];
}

/** The live personal access token with this digest and its (enabled) user, or null. */
export async function findAccessToken(db: SqlExecutor, tokenHash: string): Promise<AccessTokenOwner | null> {
  const r = await db.query<Omit<AccessTokenOwner, 'groups'> & { groups: string[] | string }>(
    `SELECT t.id::int AS "tokenId", u.id::int AS "userId", u.name AS "userName", u.is_admin AS "isAdmin", ${accessTokenGroupsSql('t.id')} AS groups
       FROM access_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL`,
    [tokenHash],
  );
  const row = r.rows[0];
  if (!row) return null;
  return { ...row, groups: (typeof row.groups === 'string' ? JSON.parse(row.groups) : row.groups) as string[] };
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

/** A namespace as listed: whether it is public, its immutable-tag rules (tag-rules.ts) and its grants. */
export interface NamespaceRow {
  prefix: string;
  public: boolean;
  immutableTags: string[];
  immutableTagExceptions: string[];
  grants: Array<{ principalType: string; principalName: string; role: string }>;
}

/** Lists namespaces with their rules and grants. */
export async function listNamespaces(db: SqlExecutor): Promise<NamespaceRow[]> {
  return selectNamespaces(db, null);
}

/** Finds one namespace with its rules and grants; null when there is none. */
export async function findNamespace(db: SqlExecutor, prefix: string): Promise<NamespaceRow | null> {
  return (await selectNamespaces(db, prefix))[0] ?? null;
}

async function selectNamespaces(db: SqlExecutor, prefix: string | null): Promise<NamespaceRow[]> {
  const r = await db.query<Omit<NamespaceRow, 'grants'> & { grants: NamespaceRow['grants'] | string | null }>(
    `SELECT n.prefix, n.public, n.immutable_tags AS "immutableTags", n.immutable_tag_exceptions AS "immutableTagExceptions",
            coalesce(json_agg(json_build_object('principalType', g.principal_type, 'principalName', g.principal_name, 'role', g.role)
                     ORDER BY g.principal_type, g.principal_name, g.role) FILTER (WHERE g.role IS NOT NULL), '[]') AS grants
       FROM namespaces n LEFT JOIN grants g ON g.namespace_id = n.id
      WHERE $1::text IS NULL OR n.prefix = $1 GROUP BY n.id ORDER BY n.prefix`,
    [prefix],
  );
  return r.rows.map((row) => ({ ...row, grants: typeof row.grants === 'string' ? JSON.parse(row.grants) : (row.grants ?? []) }));
}

/**
 * The namespaces where a user, directly or through one of `groups`, holds the `admin` role: those it administers
 * through the admin API (namespace admins, issue 24).
 */
export async function adminNamespaces(db: SqlExecutor, userName: string, groups: readonly string[] = []): Promise<string[]> {
  const r = await db.query<{ prefix: string }>(
    `SELECT DISTINCT n.prefix FROM grants g JOIN namespaces n ON n.id = g.namespace_id
      WHERE g.role = 'admin' AND ((g.principal_type = 'user' AND g.principal_name = $1)
                                  OR (g.principal_type = 'group' AND g.principal_name IN (SELECT jsonb_array_elements_text($2::jsonb))))
      ORDER BY n.prefix`,
    [userName, JSON.stringify(groups)],
  );
  return r.rows.map((row) => row.prefix);
}

/** Grants a role on a namespace; false when it was already granted or the namespace is missing. */
export async function addGrant(db: SqlExecutor, prefix: string, principalType: GrantPrincipalType, principalName: string, role: GrantRow['role']): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO grants (namespace_id, principal_type, principal_name, role) SELECT id, $2, $3, $4 FROM namespaces WHERE prefix = $1 ON CONFLICT DO NOTHING`,
    [prefix, principalType, principalName, role],
  );
  return r.rowCount > 0;
}

/** Removes a grant; false when there was no such grant. */
export async function removeGrant(db: SqlExecutor, prefix: string, principalType: GrantPrincipalType, principalName: string, role: GrantRow['role']): Promise<boolean> {
  const r = await db.query(
    `DELETE FROM grants g USING namespaces n WHERE g.namespace_id = n.id AND n.prefix = $1 AND g.principal_type = $2 AND g.principal_name = $3 AND g.role = $4`,
    [prefix, principalType, principalName, role],
  );
  return r.rowCount > 0;
}

/**
 * The namespaces that cover a repository name, with the roles a principal holds there (a namespace `team` covers
 * `team` and `team/...`), its own grants and those of any of `groups`; public namespaces are listed even without a grant.
 */
export async function grantsFor(db: SqlExecutor, repository: string, principalType: 'user' | 'robot' | null, principalName: string | null, groups: readonly string[] = []): Promise<GrantRow[]> {
  const r = await db.query<GrantRow>(
    `SELECT n.prefix, n.public, g.role FROM namespaces n
       LEFT JOIN grants g ON g.namespace_id = n.id AND ((g.principal_type = $2 AND g.principal_name = $3)
                          OR (g.principal_type = 'group' AND g.principal_name IN (SELECT jsonb_array_elements_text($4::jsonb))))
      WHERE $1 = n.prefix OR left($1, length(n.prefix) + 1) = n.prefix || '/'`,
    [repository, principalType, principalName, JSON.stringify(groups)],
  );
  return r.rows;
}

/**
 * The SQL condition "the principal may pull the repository named `nameSql`", for queries that list many
 * repositories (search) and must filter by access in the query, not after it. It is the rule `repositoryActions` of
 * the auth service applies to one repository, over the same tables: an admin user pulls everything; anyone else
 * pulls in the namespaces covering the name that are public or where the principal holds any role (every role
 * includes pull). `typeParam` and `nameParam` are the placeholders of the principal's type ('user', 'robot', or
 * NULL for anonymous) and name; `groupsParam`, when given, of its identity provider's groups (a text array), whose
 * grants count too.
 *
 * A namespace covers a name when it is one of the name's leading path prefixes (`a`, `a/b`, `a/b/c` for `a/b/c`),
 * which is `grantsFor`'s "equal, or followed by a slash". The viewer's namespaces are read once into a hashed set and
 * the name's first three prefixes probed in it (a microsecond a repository, whatever the number of namespaces);
 * prefixes deeper than three segments, rare, are looked up one by one.
 */
export function pullableRepositoryCondition(nameSql: string, typeParam: string, nameParam: string, groupsParam?: string): string {
  const viewable = viewableNamespaces(typeParam, nameParam, groupsParam);
  const prefix = (segments: number) => `array_to_string((string_to_array(${nameSql}, '/'))[1:${segments}], '/')`;
  return `(${isAdmin(typeParam, nameParam)}
    OR split_part(${nameSql}, '/', 1) IN (${viewable})
    OR ${prefix(2)} IN (${viewable})
    OR ${prefix(3)} IN (${viewable})
    OR EXISTS (SELECT 1 FROM (SELECT string_to_array(${nameSql}, '/') AS parts) ps, generate_series(4, cardinality(ps.parts)) pk
                WHERE array_to_string(ps.parts[1:pk], '/') IN (${viewable})))`;
}

/**
 * The same rule as `pullableRepositoryCondition`, for a repository whose covering namespaces (its name's leading
 * path prefixes, the name itself included: `a`, `a/b`, `a/b/c`) are at hand as a text array, `namespacesSql` (search's
 * documents keep it, 0018_search_documents.sql): the viewer's namespaces are read once into an array, and each
 * repository costs one array overlap.
 */
export function pullableNamespacesCondition(namespacesSql: string, typeParam: string, nameParam: string, groupsParam?: string): string {
  return `(${isAdmin(typeParam, nameParam)} OR ${namespacesSql} && ARRAY(${viewableNamespaces(typeParam, nameParam, groupsParam)}))`;
}

/** "The principal is an admin user." */
function isAdmin(typeParam: string, nameParam: string): string {
  return `EXISTS (SELECT 1 FROM users pu WHERE ${typeParam}::text = 'user' AND pu.name = ${nameParam}::text AND pu.is_admin)`;
}

/** The prefixes of the namespaces the principal may pull in: the public ones and those it (or a group of it) holds a role in. */
function viewableNamespaces(typeParam: string, nameParam: string, groupsParam?: string): string {
  const byGroup = groupsParam ? ` OR (pg.principal_type = 'group' AND pg.principal_name = ANY(${groupsParam}::text[]))` : '';
  return `SELECT pn.prefix FROM namespaces pn WHERE pn.public OR EXISTS (SELECT 1 FROM grants pg WHERE pg.namespace_id = pn.id
                     AND ((pg.principal_type = ${typeParam}::text AND pg.principal_name = ${nameParam}::text)${byGroup}))`;
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

/** The advisory lock that serialises changes to the set of signing keys (creating the first, rotating). */
const SIGNING_KEYS_LOCK = 7340003;

/**
 * Takes the signing keys' advisory lock until the transaction ends, so that replicas creating the first key or
 * rotating at the same moment do it one after the other (and the second sees the first's key).
 */
export async function lockSigningKeys(tx: SqlExecutor): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock($1)`, [SIGNING_KEYS_LOCK]);
}

/** The credential a refresh token was minted with; the token lives only as long as it does. */
export type RefreshCredential =
  | { kind: 'password'; userId: number; passwordVersion: number }
  | { kind: 'pat'; userId: number; accessTokenId: number }
  | { kind: 'robot'; robotId: number }
  /** A sign-in through the OpenID Provider: good while the user is enabled and still linked to the provider. */
  | { kind: 'oidc'; userId: number };

/** Who a refresh token speaks for, as stored beside it. */
export interface RefreshHolder {
  principalType: 'user' | 'robot';
  principalName: string;
  credential: RefreshCredential;
  /**
   * Whether each use retires the token for a new one. False only for Docker's identity tokens, which `docker login`
   * stores and the daemon presents unchanged on every later command (it never keeps a rotated one).
   */
  rotating: boolean;
  /** Groups the identity provider says the principal belongs to, as of its sign-in (LDAP or OIDC); they live as long as the token's family. */
  groups?: string[];
}

/** Stores a refresh token (as a digest of its secret) in a family: a new id for a new login, else its parent's. */
export async function insertRefreshToken(db: SqlExecutor, tokenHash: string, holder: RefreshHolder, familyId: string, expiresAt: Date): Promise<void> {
  const c = holder.credential;
  await db.query(
    `INSERT INTO refresh_tokens (token_hash, principal_type, principal_name, expires_at, family_id, credential, user_id, password_version, access_token_id, robot_id, rotating, groups)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)`,
    [
      tokenHash,
      holder.principalType,
      holder.principalName,
      expiresAt,
      familyId,
      c.kind,
      c.kind === 'robot' ? null : c.userId,
      c.kind === 'password' ? c.passwordVersion : null,
      c.kind === 'pat' ? c.accessTokenId : null,
      c.kind === 'robot' ? c.robotId : null,
      holder.rotating,
      JSON.stringify(holder.groups ?? []),
    ],
  );
}

/** Revokes one refresh token (a console session signing out); false when there was no live one. */
export async function revokeRefreshToken(db: SqlExecutor, tokenHash: string): Promise<boolean> {
  return (await db.query(`UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL`, [tokenHash])).rowCount > 0;
}

/** What happened to a refresh token presented for use. */
export type RefreshOutcome =
  /** Good: `rotated` says whether `nextHash` was stored as its successor (it is retired) or it stays as it is. */
  | { status: 'valid'; holder: RefreshHolder; isAdmin: boolean; rotated: boolean }
  /** A retired token was presented again: its whole family has been revoked. */
  | { status: 'replayed' }
  /** Unknown, expired or revoked, or its credential is gone (its family has been revoked). */
  | { status: 'invalid' };

interface ClaimedRow {
  familyId: string;
  principalType: 'user' | 'robot';
  principalName: string;
  credential: RefreshCredential['kind'];
  userId: number | null;
  passwordVersion: number | null;
  accessTokenId: number | null;
  robotId: number | null;
  rotating: boolean;
  groups: string[] | string;
  credentialLive: boolean;
  isAdmin: boolean;
}

/**
 * Uses a refresh token: retires it and stores `nextHash` as the next token of its family, in one transaction (a
 * non-rotating identity token is only checked). The claim is one conditional UPDATE, so of two uses of the same
 * token exactly one rotates it; the other finds it retired, which is what a replayed stolen copy looks like, and
 * revokes the family (the thief's and the owner's tokens alike: the owner logs in again). A token whose credential
 * has died (password changed, user disabled or deleted, access token revoked or expired, robot revoked or expired)
 * revokes its family too.
 */
export async function rotateRefreshToken(db: Database, tokenHash: string, nextHash: string, expiresAt: Date): Promise<RefreshOutcome> {
  return db.transaction(async (tx) => {
    const claimed = await tx.query<ClaimedRow>(
      `UPDATE refresh_tokens rt SET retired_at = CASE WHEN rt.rotating THEN now() END
        WHERE rt.token_hash = $1 AND rt.retired_at IS NULL AND rt.revoked_at IS NULL AND rt.expires_at > now() AND rt.family_id IS NOT NULL
       RETURNING rt.family_id AS "familyId", rt.principal_type AS "principalType", rt.principal_name AS "principalName", rt.credential,
         rt.user_id::int AS "userId", rt.password_version AS "passwordVersion", rt.access_token_id::int AS "accessTokenId", rt.robot_id::int AS "robotId", rt.rotating,
         -- A personal access token's groups are read where the token keeps them, so that they never outlive its bound.
         CASE WHEN rt.credential = 'pat' THEN ${accessTokenGroupsSql('rt.access_token_id')} ELSE rt.groups END AS groups,
         CASE rt.credential
           WHEN 'password' THEN EXISTS (SELECT 1 FROM users u WHERE u.id = rt.user_id AND u.disabled_at IS NULL AND u.password_version = rt.password_version)
           WHEN 'pat' THEN EXISTS (SELECT 1 FROM access_tokens t JOIN users u ON u.id = t.user_id
                                    WHERE t.id = rt.access_token_id AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL)
           WHEN 'robot' THEN EXISTS (SELECT 1 FROM robots r WHERE r.id = rt.robot_id AND r.revoked_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > now()))
           WHEN 'oidc' THEN EXISTS (SELECT 1 FROM users u JOIN oidc_identities oi ON oi.user_id = u.id WHERE u.id = rt.user_id AND u.disabled_at IS NULL)
           ELSE false
         END AS "credentialLive",
         coalesce((SELECT u.is_admin FROM users u WHERE u.id = rt.user_id), false) AS "isAdmin"`,
      [tokenHash],
    );
    const row = claimed.rows[0];
    if (!row) {
      const replayed = await tx.query(
        `UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now())
          WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND retired_at IS NOT NULL)`,
        [tokenHash],
      );
      return replayed.rowCount > 0 ? { status: 'replayed' } : { status: 'invalid' };
    }
    if (!row.credentialLive) {
      await tx.query(`UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = $1`, [row.familyId]);
      return { status: 'invalid' };
    }
    const credential: RefreshCredential =
      row.credential === 'password'
        ? { kind: 'password', userId: row.userId!, passwordVersion: row.passwordVersion! }
        : row.credential === 'pat'
          ? { kind: 'pat', userId: row.userId!, accessTokenId: row.accessTokenId! }
          : row.credential === 'oidc'
            ? { kind: 'oidc', userId: row.userId! }
            : { kind: 'robot', robotId: row.robotId! };
    const groups = (typeof row.groups === 'string' ? JSON.parse(row.groups) : row.groups) as string[];
    const holder: RefreshHolder = { principalType: row.principalType, principalName: row.principalName, credential, rotating: row.rotating, ...(groups.length ? { groups } : {}) };
    if (row.rotating) await insertRefreshToken(tx, nextHash, holder, row.familyId, expiresAt);
    return { status: 'valid', holder, isAdmin: row.isAdmin, rotated: row.rotating };
  });
}

/** A login-attempt counter and the most attempts it admits per window. */
export interface LoginLimit {
  key: string;
  limit: number;
}

/** Whether a login attempt was admitted; when not, the seconds until the counter that refused it starts over. */
export type LoginReservation = { admitted: true } | { admitted: false; retryAfterSeconds: number };

/**
 * Counts a login attempt against every counter before its password is checked, atomically: one statement
 * increments each counter still under its limit (a counter whose window has passed starts again at 1) and returns
 * the ones it incremented. The attempt is admitted only when every counter took it; otherwise the counters that did
 * are given back, so a refused attempt counts nowhere (a blocked guesser cannot push an account's other counters
 * up). Concurrent attempts serialise on each counter's row, so no more than `limit` are ever admitted in a window.
 */
export async function reserveLoginAttempt(db: SqlExecutor, limits: LoginLimit[], windowMs: number): Promise<LoginReservation> {
  // Rows are locked in one order (by key) by every attempt, so two attempts never wait on each other in a cycle.
  limits = [...limits].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys = limits.map((l) => l.key);
  const taken = await db.query<{ key: string }>(
    `INSERT INTO login_failures AS f (key, failures, window_start)
       SELECT k, 1, now() FROM unnest($1::text[]) AS k
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN f.window_start < now() - make_interval(secs => $3::double precision / 1000) THEN 1 ELSE f.failures + 1 END,
       window_start = CASE WHEN f.window_start < now() - make_interval(secs => $3::double precision / 1000) THEN now() ELSE f.window_start END
     WHERE f.window_start < now() - make_interval(secs => $3::double precision / 1000)
        OR f.failures < (SELECT lim FROM unnest($1::text[], $2::int[]) AS t(k, lim) WHERE k = f.key)
     RETURNING f.key`,
    [keys, limits.map((l) => l.limit), windowMs],
  );
  if (taken.rows.length === keys.length) return { admitted: true };
  const took = taken.rows.map((r) => r.key);
  if (took.length > 0) await releaseLoginAttempt(db, took);
  return { admitted: false, retryAfterSeconds: (await secondsUntilWindowsEnd(db, keys.filter((k) => !took.includes(k)), windowMs)) ?? 1 };
}

/** The seconds until the last of these counters' windows ends (at least 1), or null when none is in a window. */
async function secondsUntilWindowsEnd(db: SqlExecutor, keys: string[], windowMs: number): Promise<number | null> {
  const r = await db.query<{ remaining: number | null }>(
    `SELECT max(extract(epoch FROM (window_start + make_interval(secs => $2::double precision / 1000) - now())))::float8 AS remaining
       FROM login_failures WHERE key = ANY($1::text[]) AND window_start >= now() - make_interval(secs => $2::double precision / 1000)`,
    [keys, windowMs],
  );
  const remaining = r.rows[0]?.remaining;
  return remaining === null || remaining === undefined ? null : Math.max(1, Math.ceil(remaining));
}

/**
 * Whether a login may be tried without reserving anything (for secrets too long to guess, see the auth service):
 * refused, with the seconds to wait, when a counter is at its limit in its window; null when it may.
 */
export async function loginRefusal(db: SqlExecutor, limits: LoginLimit[], windowMs: number): Promise<number | null> {
  const r = await db.query<{ key: string }>(
    `SELECT f.key FROM login_failures f JOIN unnest($1::text[], $2::int[]) AS t(k, lim) ON t.k = f.key
      WHERE f.window_start >= now() - make_interval(secs => $3::double precision / 1000) AND f.failures >= t.lim`,
    [limits.map((l) => l.key), limits.map((l) => l.limit), windowMs],
  );
  if (r.rows.length === 0) return null;
  return (await secondsUntilWindowsEnd(db, r.rows.map((row) => row.key), windowMs)) ?? 1;
}

/** Gives back one attempt on each counter (a login that succeeded, or one that was never checked). */
export async function releaseLoginAttempt(db: SqlExecutor, keys: string[]): Promise<void> {
  await db.query(`UPDATE login_failures SET failures = greatest(failures - 1, 0) WHERE key = ANY($1::text[])`, [keys]);
}

/** Forgets the attempts counted on these counters. */
export async function clearLoginFailures(db: SqlExecutor, keys: string[]): Promise<void> {
  await db.query(`DELETE FROM login_failures WHERE key = ANY($1::text[])`, [keys]);
}
