/**
 * The gateway remembers verified tokens until they expire, so that a client's next request costs a lookup instead of
 * a signature check; a remembered token still stops working at its expiry and when its key is withdrawn.
 */
import type { KeyObject } from 'node:crypto';
import { TokenClaims, TokenError, generateSigningKey, keysFromJwks, signToken } from '@lading/access';
import { createJwksVerifier } from './authorization';

/** A key map that counts lookups: verifying a token signature looks its key up once. */
class CountingKeys extends Map<string, KeyObject> {
  lookups = 0;
  override get(kid: string): KeyObject | undefined {
    this.lookups++;
    return super.get(kid);
  }
}

describe('verified-token cache', () => {
  const key = generateSigningKey();
  let now = 1_700_000_000_000;
  const claims = (): TokenClaims => ({
    iss: 'lading-auth',
    sub: 'alice',
    aud: 'lading',
    iat: now / 1000,
    nbf: now / 1000,
    exp: now / 1000 + 300,
    jti: String(Math.random()),
    access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }],
  });

  function verifierWith(keys: () => Map<string, KeyObject>, tokenCacheEntries = 100) {
    return createJwksVerifier({ loadKeys: async () => keys(), issuer: 'lading-auth', audience: 'lading', leewaySeconds: 60, now: () => now, cacheMs: 30_000, tokenCacheEntries });
  }

  const countingKeys = () => {
    const keys = new CountingKeys();
    for (const [kid, k] of keysFromJwks({ keys: [key.publicJwk] })) keys.set(kid, k);
    return keys;
  };

  it('checks a token signature once and answers later requests with the same token from memory', async () => {
    const keys = countingKeys();
    const verifier = verifierWith(() => keys);
    const token = signToken(key, claims());
    for (let i = 0; i < 10; i++) expect((await verifier.verify(token)).sub).toBe('alice');
    expect(keys.lookups).toBe(1);
    const uncached = verifierWith(() => keys, 0);
    for (let i = 0; i < 3; i++) await uncached.verify(token);
    expect(keys.lookups).toBe(4);
  });

  it('refuses a remembered token once it has expired', async () => {
    const verifier = verifierWith(countingKeys);
    const token = signToken(key, claims());
    await verifier.verify(token);
    now += 301_000 + 60_000;
    await expect(verifier.verify(token)).rejects.toBeInstanceOf(TokenError);
  });

  it('checks a remembered token again when the keys are reloaded, and refuses it when its key was withdrawn', async () => {
    let keys: Map<string, KeyObject> = countingKeys();
    const verifier = verifierWith(() => keys);
    const token = signToken(key, claims());
    await verifier.verify(token);
    keys = new Map();
    now += 31_000;
    await expect(verifier.verify(token)).rejects.toBeInstanceOf(TokenError);
  });
});
