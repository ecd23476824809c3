/**
 * The token service's key ring, shared by every auth replica through the database: the newest unretired key
 * signs; retired keys stay published in the JWKS until the tokens they signed have expired, so a rotation never
 * fails a request. Private keys are stored sealed by the at-rest cipher (`secrets.key`); `sealStored` seals, at
 * start-up, those stored in plain text or under a previous key.
 */
import { KeyObject } from 'node:crypto';
import { PublicJwk, SecretCipher, SigningKey, generateSigningKey, keysFromJwks, resealed } from '@lading/access';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';

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
  /**
   * Seals every stored private key that is not sealed under the current key (plain, or under a previous key);
   * resolves with how many it sealed. Rejects (SecretCipherError) when one cannot be opened: the process must not
   * start with keys it cannot read.
   */
  sealStored(): Promise<number>;
}

const CACHE_MS = 10_000;

/** Seals the stored private keys at start-up (see KeyRing.sealStored), logging how many it sealed. */
export async function sealSigningKeys(keys: KeyRing, logger: Pick<Logger, 'info'>): Promise<void> {
  const sealed = await keys.sealStored();
  if (sealed > 0) logger.info({ sealed }, 'signing keys sealed under secrets.key');
}

/** The associated data that binds a sealed private key to its row. */
const contextOf = (kid: string) => `signing key ${kid}`;

/** Creates the key ring over the database; `cipher` seals the private keys it stores and opens those it reads. */
export function createKeyRing(db: Database, cipher: SecretCipher): KeyRing {
  const insert = (tx: meta.SqlExecutor, key: SigningKey) =>
    meta.insertSigningKey(tx, key.kid, cipher.seal(key.privateKeyPem, contextOf(key.kid)), key.publicJwk as unknown as Record<string, unknown>);

  let cached: { at: number; rows: meta.SigningKeyRow[] } | null = null;

  async function rows(fresh = false): Promise<meta.SigningKeyRow[]> {
    if (!fresh && cached && Date.now() - cached.at < CACHE_MS) return cached.rows;
    let found = await meta.activeSigningKeys(db);
    if (!found.some((k) => !k.retired)) {
      await db.transaction(async (tx) => {
        await meta.lockSigningKeys(tx);
        if ((await meta.activeSigningKeys(tx)).some((k) => !k.retired)) return;
        await insert(tx, generateSigningKey());
      });
      found = await meta.activeSigningKeys(db);
    }
    cached = { at: Date.now(), rows: found };
    return found;
  }

  return {
    async signingKey() {
      const active = (await rows()).find((k) => !k.retired) as meta.SigningKeyRow;
      return { kid: active.kid, privateKeyPem: cipher.open(active.privateKeyPem, contextOf(active.kid)), publicJwk: active.publicJwk as unknown as PublicJwk };
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
        await meta.lockSigningKeys(tx);
        await insert(tx, key);
        await meta.retireSigningKeysExcept(tx, key.kid, new Date(Date.now() + graceMs));
      });
      cached = null;
      await rows(true);
      return key.kid;
    },
    async sealStored() {
      let sealed = 0;
      for (const { kid, storedPrivateKey } of await meta.storedSigningKeySecrets(db)) {
        const next = resealed(cipher, storedPrivateKey, contextOf(kid));
        if (next !== null && (await meta.replaceSigningKeySecret(db, kid, storedPrivateKey, next))) sealed++;
      }
      cached = null;
      return sealed;
    },
  };
}
