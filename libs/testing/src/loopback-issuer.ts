/**
 * A real token issuer on loopback, standing in for a CI platform's (GitHub Actions', GitLab's): it serves an OpenID
 * discovery document and a JWKS over HTTP on 127.0.0.1 and signs ID tokens with `jose`. Its key can be rotated (the
 * new key signs, the old one stays published), and a token can be signed by a key it does not publish (a forgery).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });
type Key = { kid: string; privateKey: Awaited<ReturnType<Jose['generateKeyPair']>>['privateKey']; publicJwk: Record<string, unknown> };

/** A running issuer. */
export interface LoopbackIssuer {
  issuer: string;
  /** Signs claims (iss, iat, exp in 5 minutes and a fresh jti unless given) with the current key, or an unpublished one. */
  sign(claims: Record<string, unknown>, options?: { forged?: boolean }): Promise<string>;
  rotateKeys(): Promise<void>;
  close(): Promise<void>;
}

/** Starts an issuer on a loopback port. */
export async function startLoopbackIssuer(): Promise<LoopbackIssuer> {
  const jose: Jose = await import('jose');
  const newKey = async (): Promise<Key> => {
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    return { kid, privateKey, publicJwk: { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
  };
  let keys = [await newKey()];
  const server = http.createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['ES256'], response_types_supported: ['id_token'], subject_types_supported: ['public'] }
        : req.url === '/jwks'
          ? { keys: keys.map((k) => k.publicJwk) }
          : null;
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? {}));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    async sign(claims, options = {}) {
      const key = options.forged ? await newKey() : keys[0];
      const now = Math.floor(Date.now() / 1000);
      return new jose.SignJWT({ iss: issuer, iat: now, exp: now + 300, jti: randomUUID(), ...claims }).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
    },
    async rotateKeys() {
      keys = [await newKey(), ...keys];
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
