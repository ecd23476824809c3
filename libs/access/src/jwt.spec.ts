import { KeyObject, createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { SigningKey, TokenClaims, TokenError, TokenErrorCode, VerifyOptions, generateSigningKey, keysFromJwks, signToken, verifyToken } from './jwt';

/**
 * Every attack on the registry's tokens, built for real: each forged token is made the way an attacker would make
 * it, and must be refused with a TokenError, while the genuine token beside it is accepted.
 */

const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const LEEWAY = 60;
const OPTIONS: VerifyOptions = { issuer: 'lading-auth', audience: 'lading', leewaySeconds: LEEWAY, now: () => NOW_MS };

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64url');
const json64 = (value: unknown) => b64(JSON.stringify(value));
const parts = (token: string) => token.split('.') as [string, string, string];
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

function claims(overrides: Partial<TokenClaims> = {}): TokenClaims {
  return {
    iss: 'lading-auth',
    sub: 'alice',
    aud: 'lading',
    exp: NOW + 300,
    nbf: NOW,
    iat: NOW,
    jti: 'f2b9e1d0-0000-4000-8000-000000000001',
    access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }],
    ...overrides,
  };
}

/** An ES256 JWS over any header and payload, signed with any P-256 private key (PEM). */
function es256(header: Record<string, unknown>, payload: unknown, privateKeyPem: string): string {
  const signingInput = `${json64(header)}.${json64(payload)}`;
  const signature = sign('sha256', Buffer.from(signingInput), { key: privateKeyPem, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${b64(signature)}`;
}

/** An HS256 JWS with `secret` as the HMAC key. */
function hs256(header: Record<string, unknown>, payload: unknown, secret: string | Buffer): string {
  const signingInput = `${json64(header)}.${json64(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

function refusal(token: string, keys: ReadonlyMap<string, KeyObject>, options: VerifyOptions = OPTIONS): TokenError {
  try {
    verifyToken(token, keys, options);
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    return err as TokenError;
  }
  throw new Error('the token was accepted');
}

describe('ES256 tokens', () => {
  let key: SigningKey;
  let other: SigningKey;
  let keys: Map<string, KeyObject>;
  let attacker: SigningKey;

  beforeAll(() => {
    key = generateSigningKey();
    other = generateSigningKey();
    attacker = generateSigningKey();
    keys = keysFromJwks({ keys: [key.publicJwk, other.publicJwk] });
  });

  it('accepts a genuine token and returns its claims', () => {
    const token = signToken(key, claims());
    const header = decode(parts(token)[0]);
    expect(header).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    expect(verifyToken(token, keys, OPTIONS)).toEqual(claims());
    // Any published key verifies the tokens it signed (a rotated-out key stays published for a while).
    expect(verifyToken(signToken(other, claims()), keys, OPTIONS).sub).toBe('alice');
  });

  it('names keys by their RFC 7638 thumbprint and publishes only the public half', () => {
    expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key.publicJwk).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: key.kid, alg: 'ES256', use: 'sig' });
    expect(JSON.stringify(key.publicJwk)).not.toContain('"d"');
    expect(generateSigningKey().kid).not.toBe(key.kid);
  });

  describe('refuses forged tokens', () => {
    it('alg none, with an empty signature or with a genuine signature left on', () => {
      const payload = json64(claims({ access: [{ type: 'repository', name: 'team/app', actions: ['*'] }] }));
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const header = json64({ alg, typ: 'JWT', kid: key.kid });
        expect(refusal(`${header}.${payload}.`, keys).message).toMatch(/algorithm/);
        expect(refusal(`${header}.${payload}`, keys).message).toMatch(/malformed/);
      }
      const genuine = parts(signToken(key, claims()));
      refusal(`${json64({ alg: 'none', kid: key.kid })}.${genuine[1]}.${genuine[2]}`, keys);
      refusal(`${json64({ kid: key.kid })}.${genuine[1]}.${genuine[2]}`, keys);
    });

    it('HS256 with the public key (PEM, DER, JWK, coordinates) as the HMAC secret', () => {
      const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: key.publicJwk.x, y: key.publicJwk.y }, format: 'jwk' });
      const secrets: Array<string | Buffer> = [
        publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        publicKey.export({ format: 'der', type: 'spki' }),
        JSON.stringify(key.publicJwk),
        JSON.stringify({ kty: 'EC', crv: 'P-256', x: key.publicJwk.x, y: key.publicJwk.y }),
        key.publicJwk.x + key.publicJwk.y,
      ];
      for (const secret of secrets) {
        for (const alg of ['HS256', 'HS384', 'HS512', 'hs256']) {
          const token = hs256({ alg, typ: 'JWT', kid: key.kid }, claims({ sub: 'mallory' }), secret);
          expect(refusal(token, keys).message).toMatch(/algorithm/);
        }
      }
    });

    it('other algorithm names, even when the signature is a genuine ES256 one', () => {
      const [, payload] = parts(signToken(key, claims()));
      for (const alg of ['RS256', 'PS256', 'ES384', 'ES512', 'ES256K', 'EdDSA', 'es256', ' ES256', '', null, 42, ['ES256']]) {
        const header = json64({ alg, typ: 'JWT', kid: key.kid });
        const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' });
        expect(refusal(`${header}.${payload}.${b64(signature)}`, keys).message).toMatch(/algorithm/);
      }
    });

    it('a header that embeds the attacker key (jwk), or points at one (jku, x5u, x5c), signed by that key', () => {
      const payload = claims({ sub: 'mallory', access: [{ type: 'repository', name: 'team/app', actions: ['*'] }] });
      const embedded = [
        { jwk: attacker.publicJwk },
        { jwk: attacker.publicJwk, kid: attacker.kid },
        { jwk: attacker.publicJwk, kid: key.kid },
        { jku: 'https://evil.example/jwks.json', kid: attacker.kid },
        { x5u: 'https://evil.example/cert.pem', kid: key.kid },
        { x5c: ['MIIB...'], kid: key.kid },
        { crit: ['exp'], kid: key.kid },
      ];
      for (const extra of embedded) {
        const token = es256({ alg: 'ES256', typ: 'JWT', ...extra }, payload, attacker.privateKeyPem);
        expect(refusal(token, keys).message).toMatch(/own keys/);
      }
      // Even with the genuine key's signature, a token carrying a key of its own is refused before any check.
      expect(refusal(es256({ alg: 'ES256', kid: key.kid, jwk: key.publicJwk }, claims(), key.privateKeyPem), keys).message).toMatch(/own keys/);
    });

    it('a payload changed after signing, with the original signature kept', () => {
      const [header, payload, signature] = parts(signToken(key, claims()));
      const changed = [
        { ...claims(), access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] }] },
        { ...claims(), sub: 'admin' },
        { ...claims(), exp: NOW + 86_400 },
        { ...claims(), access: [{ type: 'repository', name: 'team/other', actions: ['pull'] }] },
      ];
      for (const forged of changed) {
        expect(refusal(`${header}.${json64(forged)}.${signature}`, keys).message).toMatch(/signature/);
      }
      // Same claims, re-encoded (whitespace): the signature covers the bytes, not the meaning.
      const reencoded = b64(JSON.stringify(claims(), null, 1));
      expect(reencoded).not.toBe(payload);
      expect(refusal(`${header}.${reencoded}.${signature}`, keys).message).toMatch(/signature/);
      // A flipped signature bit, a truncated signature, a DER-encoded (not raw r||s) signature.
      const sig = Buffer.from(signature, 'base64url');
      sig[10] ^= 1;
      refusal(`${header}.${payload}.${b64(sig)}`, keys);
      refusal(`${header}.${payload}.${b64(sig.subarray(0, 63))}`, keys);
      const der = sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKeyPem, dsaEncoding: 'der' });
      refusal(`${header}.${payload}.${b64(der)}`, keys);
    });

    it('a wrong, unknown or missing kid', () => {
      // Signed by the attacker, naming the genuine key: the signature does not verify.
      expect(refusal(es256({ alg: 'ES256', kid: key.kid }, claims(), attacker.privateKeyPem), keys).message).toMatch(/signature/);
      // Signed by the genuine key, naming the other published key.
      expect(refusal(es256({ alg: 'ES256', kid: other.kid }, claims(), key.privateKeyPem), keys).message).toMatch(/signature/);
      // Signed by the attacker under its own kid: not published.
      expect(refusal(signToken(attacker, claims()), keys).message).toMatch(/unknown key/);
      // No kid, or a kid that is not a string.
      expect(refusal(es256({ alg: 'ES256' }, claims(), key.privateKeyPem), keys).message).toMatch(/unknown key/);
      expect(refusal(es256({ alg: 'ES256', kid: [key.kid] }, claims(), key.privateKeyPem), keys).message).toMatch(/unknown key/);
      // A kid that names an inherited property of a plain object.
      refusal(es256({ alg: 'ES256', kid: '__proto__' }, claims(), key.privateKeyPem), keys);
      // A key that is no longer published.
      expect(refusal(signToken(key, claims()), keysFromJwks({ keys: [other.publicJwk] })).message).toMatch(/unknown key/);
    });

    it('malformed tokens', () => {
      const [header, payload, signature] = parts(signToken(key, claims()));
      for (const token of [
        '',
        'abc',
        `${header}.${payload}`,
        `${header}.${payload}.${signature}.${signature}`,
        `${header}.${payload}.${signature}=`,
        `${header}.${payload}+.${signature}`,
        `${b64('not json')}.${payload}.${signature}`,
        `${json64(['ES256'])}.${payload}.${signature}`,
        `${json64('ES256')}.${payload}.${signature}`,
        `..`,
      ]) {
        refusal(token, keys);
      }
      // A signed payload that is not an object, or lacks the subject or access list.
      refusal(es256({ alg: 'ES256', kid: key.kid }, [claims()], key.privateKeyPem), keys);
      expect(refusal(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), sub: undefined }, key.privateKeyPem), keys).message).toMatch(/subject or access/);
      expect(refusal(signToken(key, { ...claims(), access: 'repository:team/app:pull' as never }), keys).message).toMatch(/subject or access/);
    });
  });

  describe('checks the claims', () => {
    it('refuses a token expired beyond the leeway and accepts one expired within it', () => {
      expect(refusal(signToken(key, claims({ exp: NOW - LEEWAY - 1, iat: NOW - 600, nbf: NOW - 600 })), keys).message).toMatch(/expired/);
      expect(refusal(signToken(key, claims({ exp: NOW - 3600, iat: NOW - 4000, nbf: NOW - 4000 })), keys).message).toMatch(/expired/);
      expect(verifyToken(signToken(key, claims({ exp: NOW - LEEWAY, iat: NOW - 600, nbf: NOW - 600 })), keys, OPTIONS).sub).toBe('alice');
      expect(verifyToken(signToken(key, claims({ exp: NOW - 30, iat: NOW - 600, nbf: NOW - 600 })), keys, OPTIONS).sub).toBe('alice');
    });

    it('refuses a token not valid until beyond the leeway and accepts one within it', () => {
      expect(refusal(signToken(key, claims({ nbf: NOW + LEEWAY + 1, iat: NOW + LEEWAY + 1, exp: NOW + 600 })), keys).message).toMatch(/not valid yet/);
      expect(refusal(signToken(key, claims({ nbf: NOW + 3600, exp: NOW + 7200 })), keys).message).toMatch(/not valid yet/);
      expect(verifyToken(signToken(key, claims({ nbf: NOW + LEEWAY, exp: NOW + 600 })), keys, OPTIONS).sub).toBe('alice');
      expect(verifyToken(signToken(key, claims({ nbf: NOW + 30, exp: NOW + 600 })), keys, OPTIONS).sub).toBe('alice');
    });

    it('refuses tokens without a numeric exp or nbf', () => {
      for (const forged of [{ exp: undefined }, { exp: String(NOW + 300) }, { nbf: undefined }, { nbf: String(NOW) }, { exp: null }]) {
        refusal(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), ...forged }, key.privateKeyPem), keys);
      }
    });

    it('refuses a token for another audience, and accepts an audience list that names this one', () => {
      expect(refusal(signToken(key, claims({ aud: 'other-registry' })), keys).message).toMatch(/audience/);
      expect(refusal(signToken(key, claims({ aud: 'LADING' })), keys).message).toMatch(/audience/);
      expect(refusal(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), aud: undefined }, key.privateKeyPem), keys).message).toMatch(/audience/);
      expect(refusal(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), aud: ['other', 'another'] }, key.privateKeyPem), keys).message).toMatch(/audience/);
      expect(verifyToken(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), aud: ['other', 'lading'] }, key.privateKeyPem), keys, OPTIONS).sub).toBe('alice');
    });

    it('refuses a token from another issuer', () => {
      expect(refusal(signToken(key, claims({ iss: 'someone-else' })), keys).message).toMatch(/issuer/);
      expect(refusal(es256({ alg: 'ES256', kid: key.kid }, { ...claims(), iss: undefined }, key.privateKeyPem), keys).message).toMatch(/issuer/);
    });

    it('checks the claims only after the signature, so a forged token learns nothing about them', () => {
      const forged = es256({ alg: 'ES256', kid: key.kid }, claims({ exp: NOW - 3600, aud: 'x', iss: 'y' }), attacker.privateKeyPem);
      expect(refusal(forged, keys).message).toMatch(/signature/);
    });
  });

  describe('names each refusal with a code', () => {
    it.each<[string, () => string, TokenErrorCode]>([
      ['a token that is not three parts', () => 'abc', 'malformed'],
      ['a header that is not JSON', () => `${b64('not json')}.${parts(signToken(key, claims()))[1]}.x`, 'malformed'],
      ['another algorithm', () => hs256({ alg: 'HS256', typ: 'JWT', kid: key.kid }, claims(), 'secret'), 'algorithm'],
      ['a key in the header', () => es256({ alg: 'ES256', kid: key.kid, jwk: attacker.publicJwk }, claims(), attacker.privateKeyPem), 'embedded-key'],
      ['an unpublished key', () => signToken(attacker, claims()), 'unknown-key'],
      ['a signature by another key', () => es256({ alg: 'ES256', kid: key.kid }, claims(), attacker.privateKeyPem), 'signature'],
      ['another issuer', () => signToken(key, claims({ iss: 'someone-else' })), 'issuer'],
      ['another audience', () => signToken(key, claims({ aud: 'other-registry' })), 'audience'],
      ['an expired token', () => signToken(key, claims({ exp: NOW - LEEWAY - 1, iat: NOW - 600, nbf: NOW - 600 })), 'expired'],
      ['a token not valid yet', () => signToken(key, claims({ nbf: NOW + LEEWAY + 1, exp: NOW + 600 })), 'not-yet-valid'],
      ['no access list', () => signToken(key, { ...claims(), access: 'repository:team/app:pull' as never }), 'incomplete'],
    ])('%s', (_what, token, code) => {
      expect(refusal(token(), keys).code).toBe(code);
    });
  });

  describe('keysFromJwks', () => {
    it('keeps only P-256 ES256 keys, so a symmetric or RSA key in a JWKS can never verify a token', () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
      const loaded = keysFromJwks({
        keys: [
          { kty: 'oct', k: b64('secret'), kid: 'oct', alg: 'HS256' },
          { ...rsa, kid: 'rsa', alg: 'RS256' },
          { ...p384, kid: 'p384', alg: 'ES384' },
          { ...key.publicJwk, kid: 'wrong-alg', alg: 'HS256' },
          { ...key.publicJwk, kid: undefined },
          key.publicJwk,
        ],
      });
      expect([...loaded.keys()]).toEqual([key.kid]);
      refusal(hs256({ alg: 'HS256', kid: 'oct' }, claims(), 'secret'), loaded);
    });

    it('verifies with keys loaded from a JWKS that went through JSON', () => {
      const published = JSON.parse(JSON.stringify({ keys: [key.publicJwk] })) as { keys: unknown[] };
      expect(verifyToken(signToken(key, claims()), keysFromJwks(published), OPTIONS).sub).toBe('alice');
    });
  });
});
