/**
 * The token service's key ring, shared by every auth replica through the database: the newest unretired key
 * signs; retired keys stay published in the JWKS until the tokens they signed have expired, so a rotation never
 * fails a request.
 */
import { KeyObject } from 'node:crypto';
import { PublicJwk, SigningKey, generateSigningKey, keysFromJwks } from '@lading/access';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';

/** The key ring. */
export interface KeyRing {
  /** The key that signs new tokens (created on first use if there is none). */
  signingKey(): Promise<SigningKey>;
  /** Every published public key. */
  jwks(): Promise<{ keys: PublicJwk[] }>;
  /** Verification keys by id, for an in-process gateway. */
  verificationKeys(): Promise<Map<string, KeyObject>>;
  /** Starts signing with a new key; the old ones stay published for `graceMs`. */
  rotate(graceMs: number): Promise<string>;
}

const KEY_LOCK = 7340003;
const CACHE_MS = 10_000;

/** Creates the key ring over the database. */
export function createKeyRing(db: Database): KeyRing {
  let cached: { at: number; rows: meta.SigningKeyRow[] } | null = null;

  async function rows(fresh = false): Promise<meta.SigningKeyRow[]> {
    if (!fresh && cached && Date.now() - cached.at < CACHE_MS) return cached.rows;
    let found = await meta.activeSigningKeys(db);
    if (!found.some((k) => !k.retired)) {
      await db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock($1)`, [KEY_LOCK]);
        if ((await meta.activeSigningKeys(tx)).some((k) => !k.retired)) return;
        const key = generateSigningKey();
        await meta.insertSigningKey(tx, key.kid, key.privateKeyPem, key.publicJwk as unknown as Record<string, unknown>);
      });
      found = await meta.activeSigningKeys(db);
    }
    cached = { at: Date.now(), rows: found };
    return found;
  }

  return {
    async signingKey() {
      const active = (await rows()).find((k) => !k.retired) as meta.SigningKeyRow;
      return { kid: active.kid, privateKeyPem: active.privateKeyPem, publicJwk: active.publicJwk as unknown as PublicJwk };
    },
    async jwks() {
      // Read fresh: gateways reload the JWKS when a token names a key they do not know, and that key may have been
      // made a moment ago by another replica whose rotation this replica's cache has not seen yet.
      return { keys: (await rows(true)).map((k) => k.publicJwk as unknown as PublicJwk) };
    },
    async verificationKeys() {
      return keysFromJwks({ keys: (await rows()).map((k) => k.publicJwk) });
    },
    async rotate(graceMs) {
      const key = generateSigningKey();
      await db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock($1)`, [KEY_LOCK]);
        await meta.insertSigningKey(tx, key.kid, key.privateKeyPem, key.publicJwk as unknown as Record<string, unknown>);
        await meta.retireSigningKeysExcept(tx, key.kid, new Date(Date.now() + graceMs));
      });
      cached = null;
      await rows(true);
      return key.kid;
    },
  };
}
