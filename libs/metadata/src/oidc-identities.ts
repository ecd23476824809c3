/**
 * Typed queries of OpenID Connect sign-in: the link from an issuer's subject to a user (made just in time on the
 * first sign-in), the sign-ins under way between the redirect and the callback, and the workload identity tokens
 * already exchanged.
 *
 * Invariant: a user is found by (issuer, sub) only, never by e-mail or name. A first sign-in whose username is
 * already a user's who is not linked to that subject is refused, never merged into that user.
 */
import type { Database, SqlExecutor } from './database';

/** The password hash of a user made by a sign-in: not an argon2id string, so no password ever matches it. */
export const NO_PASSWORD = '!oidc';

/** A sign-in under way: what the callback needs to finish it. */
export interface OidcLoginRow {
  nonce: string;
  codeVerifier: string;
}

/** Stores a sign-in under way (by a digest of its state) and drops those that expired. */
export async function insertOidcLogin(db: SqlExecutor, stateHash: string, login: OidcLoginRow, expiresAt: Date): Promise<void> {
  await db.query(`DELETE FROM oidc_logins WHERE expires_at < now()`);
  await db.query(`INSERT INTO oidc_logins (state_hash, nonce, code_verifier, expires_at) VALUES ($1, $2, $3, $4)`, [stateHash, login.nonce, login.codeVerifier, expiresAt]);
}

/** Takes a sign-in under way by the digest of its state: it is deleted, so a state serves one callback; null when unknown or expired. */
export async function takeOidcLogin(db: SqlExecutor, stateHash: string): Promise<OidcLoginRow | null> {
  const r = await db.query<OidcLoginRow & { live: boolean }>(
    `DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING nonce, code_verifier AS "codeVerifier", expires_at > now() AS live`,
    [stateHash],
  );
  const row = r.rows[0];
  return row && row.live ? { nonce: row.nonce, codeVerifier: row.codeVerifier } : null;
}

/** Who signed in, as the provider asserts it. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  /** The name a user made for this identity gets (the configured username claim). */
  username: string;
  email: string | null;
}

/** The user an identity signs in as. */
export interface OidcUser {
  id: number;
  name: string;
  isAdmin: boolean;
}

/** What a sign-in found: the linked user (`created` on a first sign-in), or why it may not proceed. */
export type OidcSignInOutcome =
  | { status: 'signed-in'; user: OidcUser; created: boolean }
  /** A first sign-in whose username belongs to a user not linked to this identity. */
  | { status: 'name-taken' }
  | { status: 'disabled'; name: string };

/**
 * Finds the user linked to an identity, or makes one just in time (named by `username`, with no password) and links
 * it, in one transaction. Sign-ins of one identity are serialised by an advisory lock on it, so two first sign-ins
 * at once make one user.
 */
export async function signInOidcIdentity(db: Database, identity: OidcIdentity): Promise<OidcSignInOutcome> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`oidc ${identity.issuer} ${identity.subject}`]);
    const linked = await tx.query<OidcUser & { disabled: boolean }>(
      `UPDATE oidc_identities oi SET last_login_at = now(), email = $3 FROM users u
        WHERE oi.issuer = $1 AND oi.subject = $2 AND u.id = oi.user_id
       RETURNING u.id::int AS id, u.name, u.is_admin AS "isAdmin", u.disabled_at IS NOT NULL AS disabled`,
      [identity.issuer, identity.subject, identity.email],
    );
    const found = linked.rows[0];
    if (found) {
      if (found.disabled) return { status: 'disabled', name: found.name };
      return { status: 'signed-in', user: { id: found.id, name: found.name, isAdmin: found.isAdmin }, created: false };
    }
    const made = await tx.query<{ id: number }>(
      `INSERT INTO users (name, password_hash, is_admin) VALUES ($1, $2, false) ON CONFLICT (name) DO NOTHING RETURNING id::int AS id`,
      [identity.username, NO_PASSWORD],
    );
    if (!made.rows[0]) return { status: 'name-taken' };
    await tx.query(`INSERT INTO oidc_identities (issuer, subject, user_id, email) VALUES ($1, $2, $3, $4)`, [identity.issuer, identity.subject, made.rows[0].id, identity.email]);
    return { status: 'signed-in', user: { id: made.rows[0].id, name: identity.username, isAdmin: false }, created: true };
  });
}

/**
 * Records that a workload identity token (by issuer and jti) was exchanged, until it expires; false when it already
 * was (a replay). Expired records are dropped on the way.
 */
export async function recordWorkloadTokenUse(db: SqlExecutor, issuer: string, jti: string, expiresAt: Date): Promise<boolean> {
  await db.query(`DELETE FROM workload_token_uses WHERE expires_at < now()`);
  const r = await db.query(`INSERT INTO workload_token_uses (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [issuer, jti, expiresAt]);
  return r.rowCount > 0;
}
