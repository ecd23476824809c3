/**
 * The stored private halves of `signing_keys` (migration 0002), for sealing them at rest: every row's stored form, and
 * a compare-and-set replacement so that replicas sealing at the same start-up never overwrite each other's work.
 */
import type { SqlExecutor } from './database';

/** A signing key's id and its private key as stored (PEM, or sealed by the at-rest cipher). */
export interface StoredSigningKeySecret {
  kid: string;
  storedPrivateKey: string;
}

/** Every signing key's stored private key, expired ones included (they are secrets too). */
export async function storedSigningKeySecrets(db: SqlExecutor): Promise<StoredSigningKeySecret[]> {
  const r = await db.query<{ kid: string; private_key_pem: string }>(`SELECT kid, private_key_pem FROM signing_keys ORDER BY created_at, kid`);
  return r.rows.map((row) => ({ kid: row.kid, storedPrivateKey: row.private_key_pem }));
}

/** Replaces a stored private key if it is still `from`; true when it was replaced. */
export async function replaceSigningKeySecret(db: SqlExecutor, kid: string, from: string, to: string): Promise<boolean> {
  return (await db.query(`UPDATE signing_keys SET private_key_pem = $3 WHERE kid = $1 AND private_key_pem = $2`, [kid, from, to])).rowCount > 0;
}
