/**
 * ES256 JSON Web Tokens for Docker token auth: signing with the active key, verifying offline against a JWKS with a
 * pinned algorithm. Tokens that name another algorithm (`none`, HS256 with a public key) or carry their own key
 * (`jwk`, `jku`, `x5c`, `x5u` headers) are refused before any signature check.
 */
import { KeyObject, createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { Access } from './scopes';

/** The only algorithm the registry signs with and accepts. */
export const TOKEN_ALGORITHM = 'ES256';

/** A public key as published in the JWKS. */
export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: typeof TOKEN_ALGORITHM;
  use: 'sig';
}

/** A signing key: its id, its private half (PKCS#8 PEM) and its public JWK. */
export interface SigningKey {
  kid: string;
  privateKeyPem: string;
  publicJwk: PublicJwk;
}

/** The claims of a registry token. */
export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Access[];
  /** Groups the identity provider says the subject belongs to, as of its sign-in (absent when none). */
  groups?: string[];
}

/**
 * Why a token was refused, for code that reacts to one reason (the gateway reloads the keys on `unknown-key`):
 * - `malformed`: not three base64url parts, or a header or claims that are not a JSON object;
 * - `algorithm`: an algorithm other than ES256; `embedded-key`: a header that carries or points at a key;
 * - `unknown-key`: a `kid` that names no published key; `signature`: a signature that does not verify;
 * - `issuer`, `audience`: for another issuer or audience; `expired`, `not-yet-valid`: outside exp/nbf (with leeway);
 * - `incomplete`: no subject or access list.
 */
export type TokenErrorCode =
  | 'malformed'
  | 'algorithm'
  | 'embedded-key'
  | 'unknown-key'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'incomplete';

/** A refused token; the gateway answers 401 UNAUTHORIZED for every one, and matches on `code`, never the message. */
export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Creates a new P-256 signing key; its id is the RFC 7638 thumbprint of the public key. */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const kid = createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x: jwk.x, y: jwk.y })).digest('base64url');
  return {
    kid,
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, alg: TOKEN_ALGORITHM, use: 'sig' },
  };
}

/** Signs claims with a key. */
export function signToken(key: SigningKey, claims: TokenClaims): string {
  const header = base64url(JSON.stringify({ alg: TOKEN_ALGORITHM, typ: 'JWT', kid: key.kid }));
  const payload = base64url(JSON.stringify(claims));
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' });
  return `${header}.${payload}.${base64url(signature)}`;
}

/** What a verifier checks besides the signature. */
export interface VerifyOptions {
  issuer: string;
  audience: string;
  /** Clock skew tolerated on exp and nbf, in seconds. */
  leewaySeconds: number;
  now: () => number;
}

const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5c', 'x5u', 'crit'];

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error();
    return value as Record<string, unknown>;
  } catch {
    throw new TokenError('malformed', `malformed token ${what}`);
  }
}

/** Verifies a token against published keys (looked up by `kid`) and returns its claims, or throws TokenError. */
export function verifyToken(token: string, keys: ReadonlyMap<string, KeyObject>, options: VerifyOptions): TokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new TokenError('malformed', 'malformed token');
  const header = decodeJson(parts[0], 'header');
  if (header.alg !== TOKEN_ALGORITHM) throw new TokenError('algorithm', `token algorithm ${String(header.alg)} is not accepted`);
  if (FORBIDDEN_HEADERS.some((h) => h in header)) throw new TokenError('embedded-key', 'tokens may not carry their own keys');
  const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
  if (!key) throw new TokenError('unknown-key', 'token signed by an unknown key');
  const signature = Buffer.from(parts[2], 'base64url');
  if (signature.length !== 64 || !verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, signature)) {
    throw new TokenError('signature', 'token signature does not verify');
  }
  const claims = decodeJson(parts[1], 'claims') as unknown as TokenClaims;
  const now = Math.floor(options.now() / 1000);
  if (claims.iss !== options.issuer) throw new TokenError('issuer', 'token from another issuer');
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(options.audience)) throw new TokenError('audience', 'token for another audience');
  if (typeof claims.exp !== 'number' || now > claims.exp + options.leewaySeconds) throw new TokenError('expired', 'token expired');
  if (typeof claims.nbf !== 'number' || now + options.leewaySeconds < claims.nbf) throw new TokenError('not-yet-valid', 'token not valid yet');
  if (typeof claims.sub !== 'string' || !Array.isArray(claims.access)) throw new TokenError('incomplete', 'token lacks subject or access');
  return claims;
}

/** Turns published JWKs into verification keys by id (keys of other types or algorithms are ignored). */
export function keysFromJwks(jwks: { keys: unknown[] }): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const candidate of jwks.keys ?? []) {
    const jwk = candidate as Partial<PublicJwk>;
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.kid !== 'string' || (jwk.alg && jwk.alg !== TOKEN_ALGORITHM)) continue;
    keys.set(jwk.kid, createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' }));
  }
  return keys;
}
