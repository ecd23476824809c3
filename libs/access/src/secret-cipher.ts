/**
 * The at-rest cipher of the secrets Lading keeps in its database (the private halves of token signing keys, webhook
 * secrets, upstream passwords of stored proxy rules): AES-256-GCM under `secrets.key`, with a fresh 96-bit IV per
 * value and the row it belongs to bound in as associated data, so a value copied to another row does not open.
 *
 * A sealed value reads `lading-sealed:v1:<key id>:<iv>:<ciphertext>:<tag>` (base64url parts). The key id is derived
 * from the key (a hash prefix, useless for guessing a 256-bit key), so the right key is chosen among `secrets.key`
 * and `secrets.previousKeys` without operators naming keys. Anything else is a value stored before encryption (or
 * without a key) and is read as it is; start-up seals such values, and values under a previous key, under the
 * current key. A sealed value whose key is not configured, or that fails authentication, is an error: never a
 * silent fallback to reading it as plain text.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { LadingConfig } from '@lading/config';

/** How every sealed value starts. */
export const SEALED_PREFIX = 'lading-sealed:v1:';

/** The warning a process logs at start-up when it has no key: what it means, and how to set one. */
export const PLAIN_SECRETS_WARNING =
  'secrets.key is not set: token signing keys, webhook secrets and the upstream passwords of stored proxies are stored in the database in plain text (set LADING_SECRETS_KEY or secrets.keyFile to the base64 of 32 random bytes)';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A stored secret that cannot be opened: its key is not configured, or it was altered or moved to another row. */
export class SecretCipherError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretCipherError';
  }
}

/** The cipher of stored secrets, under the configured keys. */
export interface SecretCipher {
  /** The id of the key new values are sealed under; null when there is no key and values are stored as they are. */
  readonly keyId: string | null;
  /** The stored form of `plain` for the row named by `context` (e.g. `webhook <id>`): sealed, or `plain` without a key. */
  seal(plain: string, context: string): string;
  /** The plain value of a stored one; throws SecretCipherError when a sealed value cannot be opened. */
  open(stored: string, context: string): string;
  /** Whether a stored value is already as `seal` would store it now (sealed under the current key, or plain without one). */
  isCurrent(stored: string): boolean;
}

/** The id of a key: the first 16 hex digits of SHA-256 over a label and the key. */
export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('lading secrets key id\0').update(key).digest('hex').slice(0, 16);
}

/** Decodes a key from its base64 form; throws naming `where` unless it is exactly 32 bytes. */
export function decodeSecretKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.length !== KEY_BYTES) {
    throw new SecretCipherError(`${where} must be the base64 of ${KEY_BYTES} bytes (openssl rand -base64 32)`);
  }
  return key;
}

const b64 = (b: Buffer) => b.toString('base64url');

/** Creates the cipher: `current` seals (null: store plain), `current` and `previous` open. */
export function createSecretCipher(keys: { current: Buffer | null; previous?: readonly Buffer[] }): SecretCipher {
  const byId = new Map<string, Buffer>();
  for (const key of [...(keys.previous ?? []), ...(keys.current ? [keys.current] : [])]) {
    if (key.length !== KEY_BYTES) throw new SecretCipherError(`a secrets key must be ${KEY_BYTES} bytes`);
    byId.set(secretKeyId(key), key);
  }
  const currentId = keys.current ? secretKeyId(keys.current) : null;
  const aad = (keyId: string, context: string) => Buffer.from(`${SEALED_PREFIX}${keyId}:${context}`, 'utf8');

  return {
    keyId: currentId,
    seal(plain, context) {
      if (!keys.current || !currentId) return plain;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys.current, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad(currentId, context));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `${SEALED_PREFIX}${currentId}:${b64(iv)}:${b64(body)}:${b64(cipher.getAuthTag())}`;
    },
    open(stored, context) {
      if (!stored.startsWith(SEALED_PREFIX)) return stored;
      const parts = stored.slice(SEALED_PREFIX.length).split(':');
      if (parts.length !== 4) throw new SecretCipherError(`the stored secret of ${context} is malformed`);
      const [keyId, ivText, bodyText, tagText] = parts;
      const key = byId.get(keyId);
      if (!key) {
        throw new SecretCipherError(
          currentId
            ? `the stored secret of ${context} is encrypted under key ${keyId}, which is neither secrets.key (${currentId}) nor one of secrets.previousKeys`
            : `the stored secret of ${context} is encrypted under key ${keyId}, but no secrets.key is configured`,
        );
      }
      const iv = Buffer.from(ivText, 'base64url');
      const tag = Buffer.from(tagText, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretCipherError(`the stored secret of ${context} is malformed`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(keyId, context));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(Buffer.from(bodyText, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretCipherError(`the stored secret of ${context} does not authenticate under key ${keyId}: it was altered, or belongs to another row`);
      }
    },
    isCurrent(stored) {
      return currentId ? stored.startsWith(`${SEALED_PREFIX}${currentId}:`) : !stored.startsWith(SEALED_PREFIX);
    },
  };
}

/**
 * Creates the cipher from `secrets.*`: the key from `key` or the file `keyFile` names (its base64, surrounding white
 * space ignored), and `previousKeys`. Throws, naming the key, when the file cannot be read or holds no valid key.
 */
export function secretCipherFromConfig(secrets: LadingConfig['secrets'], readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): SecretCipher {
  let current: Buffer | null = null;
  if (secrets.key !== undefined) current = decodeSecretKey(secrets.key, 'secrets.key');
  else if (secrets.keyFile !== undefined) {
    let text: string;
    try {
      text = readFile(secrets.keyFile);
    } catch (err) {
      throw new SecretCipherError(`secrets.keyFile ${secrets.keyFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    current = decodeSecretKey(text, `the content of secrets.keyFile ${secrets.keyFile}`);
  }
  const previous = secrets.previousKeys.map((k, i) => decodeSecretKey(k, `secrets.previousKeys[${i}]`));
  return createSecretCipher({ current, previous });
}

/**
 * The cipher a process starts with: made from `config.secrets`, with PLAIN_SECRETS_WARNING logged when there is no
 * key. A process calls it once, at start-up, and hands the cipher to every part that stores secrets.
 */
export function startSecretCipher(config: LadingConfig, logger: { warn(message: string): void }): SecretCipher {
  const cipher = secretCipherFromConfig(config.secrets);
  if (cipher.keyId === null) logger.warn(PLAIN_SECRETS_WARNING);
  return cipher;
}

/**
 * The new stored form of a stored value when it is not current (plain under a key, or sealed under a previous key),
 * else null. Throws SecretCipherError when the value cannot be opened: start-up stops rather than lose it.
 */
export function resealed(cipher: SecretCipher, stored: string, context: string): string | null {
  if (cipher.isCurrent(stored)) {
    cipher.open(stored, context);
    return null;
  }
  return cipher.seal(cipher.open(stored, context), context);
}
