import { randomBytes } from 'node:crypto';
import { parseConfig } from '@lading/config';
import { PLAIN_SECRETS_WARNING, SEALED_PREFIX, SecretCipherError, createSecretCipher, resealed, secretCipherFromConfig, secretKeyId, startSecretCipher } from './secret-cipher';

const OLD = randomBytes(32);
const NEW = randomBytes(32);
const SECRET = 'whsec_c2VjcmV0IHRoYXQgbXVzdCBub3QgbGVhayBhbnl3aGVyZQ==';

/** Flips one bit of the base64url part `index` (0: iv, 1: ciphertext, 2: tag) of a sealed value. */
function tamper(sealed: string, index: number): string {
  const [keyId, ...parts] = sealed.slice(SEALED_PREFIX.length).split(':');
  const bytes = Buffer.from(parts[index], 'base64url');
  bytes[0] ^= 1;
  parts[index] = bytes.toString('base64url');
  return `${SEALED_PREFIX}${[keyId, ...parts].join(':')}`;
}

describe('the secret cipher', () => {
  it('seals a value so that the stored form holds neither it nor any part of it, and opens it again', () => {
    const cipher = createSecretCipher({ current: NEW });
    const sealed = cipher.seal(SECRET, 'webhook 1');
    expect(sealed.startsWith(`${SEALED_PREFIX}${secretKeyId(NEW)}:`)).toBe(true);
    expect(sealed).not.toContain(SECRET);
    expect(sealed).not.toContain('c2VjcmV0');
    expect(cipher.open(sealed, 'webhook 1')).toBe(SECRET);
    expect(cipher.seal(SECRET, 'webhook 1')).not.toBe(sealed);
  });

  it.each([
    ['the IV', 0],
    ['the ciphertext', 1],
    ['the tag', 2],
  ])('refuses a value whose %s was altered', (_what, index) => {
    const cipher = createSecretCipher({ current: NEW });
    const sealed = cipher.seal(SECRET, 'webhook 1');
    expect(() => cipher.open(tamper(sealed, index), 'webhook 1')).toThrow(/does not authenticate under key/);
  });

  it('refuses a value moved to another row (the row is bound in), and a truncated one', () => {
    const cipher = createSecretCipher({ current: NEW });
    const sealed = cipher.seal(SECRET, 'webhook 1');
    expect(() => cipher.open(sealed, 'webhook 2')).toThrow('the stored secret of webhook 2 does not authenticate');
    expect(() => cipher.open(sealed.slice(0, sealed.lastIndexOf(':')), 'webhook 1')).toThrow('is malformed');
  });

  it('refuses a value sealed under a key it does not have, never reading it as plain text', () => {
    const sealed = createSecretCipher({ current: OLD }).seal(SECRET, 'webhook 1');
    expect(() => createSecretCipher({ current: NEW }).open(sealed, 'webhook 1')).toThrow(
      `encrypted under key ${secretKeyId(OLD)}, which is neither secrets.key (${secretKeyId(NEW)}) nor one of secrets.previousKeys`,
    );
    expect(() => createSecretCipher({ current: null }).open(sealed, 'webhook 1')).toThrow(SecretCipherError);
    expect(() => createSecretCipher({ current: null }).open(sealed, 'webhook 1')).toThrow('but no secrets.key is configured');
  });

  it('stores plain text without a key, and reads plain values written before encryption under any key', () => {
    const none = createSecretCipher({ current: null });
    expect(none.keyId).toBeNull();
    expect(none.seal(SECRET, 'webhook 1')).toBe(SECRET);
    expect(none.isCurrent(SECRET)).toBe(true);
    const keyed = createSecretCipher({ current: NEW });
    expect(keyed.open(SECRET, 'webhook 1')).toBe(SECRET);
    expect(keyed.isCurrent(SECRET)).toBe(false);
  });

  it('rotates: a previous key only opens, and resealing moves plain and old values under the current key', () => {
    const underOld = createSecretCipher({ current: OLD }).seal(SECRET, 'signing key k1');
    const rotated = createSecretCipher({ current: NEW, previous: [OLD] });
    expect(rotated.open(underOld, 'signing key k1')).toBe(SECRET);
    expect(rotated.isCurrent(underOld)).toBe(false);
    const moved = resealed(rotated, underOld, 'signing key k1')!;
    expect(moved.startsWith(`${SEALED_PREFIX}${secretKeyId(NEW)}:`)).toBe(true);
    expect(createSecretCipher({ current: NEW }).open(moved, 'signing key k1')).toBe(SECRET);
    expect(resealed(rotated, moved, 'signing key k1')).toBeNull();
    const fromPlain = resealed(rotated, SECRET, 'signing key k1')!;
    expect(fromPlain).not.toContain(SECRET);
    expect(rotated.open(fromPlain, 'signing key k1')).toBe(SECRET);
    expect(() => resealed(createSecretCipher({ current: NEW }), underOld, 'signing key k1')).toThrow(SecretCipherError);
    expect(() => resealed(rotated, tamper(moved, 1), 'signing key k1')).toThrow(SecretCipherError);
  });

  it('reads the key from secrets.key or secrets.keyFile, naming the key when it is unreadable or not 32 bytes', () => {
    const key = NEW.toString('base64');
    const sealed = createSecretCipher({ current: NEW }).seal(SECRET, 'x');
    expect(secretCipherFromConfig({ key, previousKeys: [] }).open(sealed, 'x')).toBe(SECRET);
    expect(secretCipherFromConfig({ keyFile: '/k', previousKeys: [] }, () => `${key}\n`).keyId).toBe(secretKeyId(NEW));
    expect(secretCipherFromConfig({ previousKeys: [] }).keyId).toBeNull();
    expect(() => secretCipherFromConfig({ keyFile: '/nonexistent/lading.key', previousKeys: [] })).toThrow('secrets.keyFile /nonexistent/lading.key cannot be read: ENOENT');
    expect(() => secretCipherFromConfig({ keyFile: '/k', previousKeys: [] }, () => 'c2hvcnQ=')).toThrow('the content of secrets.keyFile /k must be the base64 of 32 bytes');
    expect(() => secretCipherFromConfig({ key, previousKeys: ['x'] })).toThrow('secrets.previousKeys[0] must be the base64 of 32 bytes');
  });

  it('says at start-up, in one warning line, that secrets are stored in plain text without a key, and nothing with one', () => {
    const warnings: string[] = [];
    const logger = { warn: (message: string) => warnings.push(message) };
    expect(startSecretCipher(parseConfig({}), logger).keyId).toBeNull();
    expect(warnings).toEqual([PLAIN_SECRETS_WARNING]);
    expect(startSecretCipher(parseConfig({ secrets: { key: NEW.toString('base64') } }), logger).keyId).toBe(secretKeyId(NEW));
    expect(warnings).toHaveLength(1);
  });
});
