/**
 * The scope matrix's client: follows a 401 challenge to the real token endpoint as Docker does (the realm, service
 * and scope of `WWW-Authenticate`), and makes the forged and altered tokens of the attack rows.
 */
import { createHmac, createPublicKey, sign } from 'node:crypto';
import request, { Response } from 'supertest';
import type { Express } from 'express';
import { PublicJwk, SigningKey, TokenClaims, generateSigningKey, signToken } from '@lading/access';
import { basicAuthorization, parseChallenge as parseAnyChallenge } from '@lading/client';
import type { Forgery, PrincipalSpec } from './scope-matrix-policy';

/** A parsed `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge. */
export interface Challenge {
  realm: string;
  service: string;
  scopes: string[];
  error?: string;
}

/** Parses a Bearer challenge; null when the header is missing or not a Bearer challenge. */
export function parseChallenge(header: string | undefined): Challenge | null {
  const challenge = parseAnyChallenge(header);
  if (challenge?.scheme !== 'Bearer') return null;
  const params = challenge.params;
  if (!params.realm || !params.service) return null;
  return { realm: params.realm, service: params.service, scopes: params.scope ? params.scope.split(' ') : [], error: params.error };
}

const b64 = (data: Buffer | string) => Buffer.from(data).toString('base64url');
const json64 = (value: unknown) => b64(JSON.stringify(value));

/** What the client needs. */
export interface TokenClientOptions {
  /** The registry: its base URL, or its app. */
  target: string | Express;
  /** Secrets made while seeding (robot secrets, PATs), by the names the principal specs use. */
  secrets: Map<string, string>;
  /** The registry's signing key, to re-sign genuine claims with one claim changed (expired, wrong audience...). */
  registryKey: () => Promise<SigningKey>;
  /** The admin whose genuine tokens the forged rows start from. */
  admin: { user: string; password: string };
}

type Credentials = { user: string; password: string };

/**
 * Gets tokens for principals as Docker does: the first with Basic credentials and `offline_token=true`, the next
 * ones with the refresh token that came back (the OAuth2 POST form), each cached per principal and scope.
 */
export class TokenClient {
  private readonly cache = new Map<string, Promise<string | null>>();
  private readonly refreshTokens = new Map<string, string>();
  private readonly attacker: SigningKey = generateSigningKey();
  /** How many times the token endpoint was called, by kind. */
  readonly requests = { basic: 0, refresh: 0, anonymous: 0 };

  constructor(private readonly options: TokenClientOptions) {}

  /** Asks the realm of a challenge for a token; null when the token endpoint refuses (401). */
  private async fetch(challenge: Challenge, scopes: string[], credentials?: Credentials): Promise<{ token: string; refresh?: string } | null> {
    const url = new URL(challenge.realm);
    let res: Response;
    const refresh = credentials && this.refreshTokens.get(credentials.user);
    if (refresh) {
      this.requests.refresh++;
      res = await request(this.options.target)
        .post(url.pathname)
        .type('form')
        .send({ grant_type: 'refresh_token', refresh_token: refresh, service: challenge.service, client_id: 'scope-matrix', scope: scopes.join(' ') });
    } else {
      const query = new URLSearchParams({ service: challenge.service });
      for (const scope of scopes) query.append('scope', scope);
      if (credentials) query.set('offline_token', 'true');
      const req = request(this.options.target).get(`${url.pathname}?${query}`);
      if (credentials) req.set('Authorization', basicAuthorization(credentials.user, credentials.password));
      this.requests[credentials ? 'basic' : 'anonymous']++;
      res = await req;
    }
    if (res.status === 401) return null;
    if (res.status !== 200) throw new Error(`the token endpoint answered ${res.status}: ${JSON.stringify(res.body)}`);
    if (credentials && res.body.refresh_token) this.refreshTokens.set(credentials.user, res.body.refresh_token);
    return { token: res.body.token as string };
  }

  private cached(key: string, make: () => Promise<string | null>): Promise<string | null> {
    let found = this.cache.get(key);
    if (!found) {
      found = make();
      this.cache.set(key, found);
    }
    return found;
  }

  private tokenOf(key: string, challenge: Challenge, scopes: string[], credentials?: Credentials): Promise<string | null> {
    return this.cached(key, async () => (await this.fetch(challenge, scopes, credentials))?.token ?? null);
  }

  private credentialsOf(spec: PrincipalSpec): Credentials {
    if (spec.source.kind !== 'basic') throw new Error(`${spec.name} has no credentials`);
    const password = spec.source.password ?? this.options.secrets.get(spec.source.secret ?? '');
    if (password === undefined) throw new Error(`no secret was made for ${spec.name}`);
    return { user: spec.source.user, password };
  }

  /** The token a principal presents for a challenge; null when it has none (no-token rows, refused credentials). */
  async tokenFor(spec: PrincipalSpec, challenge: Challenge): Promise<string | null> {
    const scopes = challenge.scopes;
    const key = `${spec.name}|${scopes.join(' ')}`;
    const source = spec.source;
    switch (source.kind) {
      case 'none':
        return null;
      case 'anonymous':
        return this.tokenOf(key, challenge, scopes);
      case 'basic':
        return this.tokenOf(key, challenge, scopes, this.credentialsOf(spec));
      case 'other-repo': {
        // The same request's scopes, for other repositories (the catalog becomes a repository scope).
        const other = scopes.map((s) => (s.startsWith('registry:') ? 'repository:team/elsewhere:pull' : s.replace(/^repository:([^:]+):/, 'repository:$1-other:')));
        return this.tokenOf(key, challenge, other, this.options.admin);
      }
      case 'forged':
        return this.forge(source.forgery, challenge);
    }
  }

  private async genuineAdminToken(challenge: Challenge): Promise<string> {
    const token = await this.tokenOf(`genuine-admin|${challenge.scopes.join(' ')}`, challenge, challenge.scopes, this.options.admin);
    if (!token) throw new Error('the admin could not get a token');
    return token;
  }

  /** A genuine admin token for exactly the challenge's scopes, altered or forged as the row says. Made fresh each time. */
  async forge(forgery: Forgery, challenge: Challenge): Promise<string> {
    const genuine = await this.genuineAdminToken(challenge);
    const [header, payload] = genuine.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    const now = Math.floor(Date.now() / 1000);
    const resign = async (changes: Partial<TokenClaims>) => signToken(await this.options.registryKey(), { ...claims, ...changes });
    switch (forgery) {
      case 'expired':
        return resign({ iat: now - 420, nbf: now - 420, exp: now - 120 });
      case 'expired-in-leeway':
        return resign({ iat: now - 330, nbf: now - 330, exp: now - 30 });
      case 'not-yet-valid':
        return resign({ iat: now + 300, nbf: now + 300, exp: now + 600 });
      case 'nbf-in-leeway':
        return resign({ iat: now + 30, nbf: now + 30, exp: now + 330 });
      case 'wrong-audience':
        return resign({ aud: 'another-registry' });
      case 'wrong-issuer':
        return resign({ iss: 'evil-issuer' });
      case 'tampered': {
        // An anonymous token (genuine, for these scopes) whose payload is swapped for the admin's grants.
        const anonymous = await this.tokenOf(`anonymous|${challenge.scopes.join(' ')}`, challenge, challenge.scopes);
        const [anonHeader, anonPayload, anonSignature] = (anonymous as string).split('.');
        const anonClaims = JSON.parse(Buffer.from(anonPayload, 'base64url').toString('utf8')) as TokenClaims;
        return `${anonHeader}.${json64({ ...anonClaims, sub: 'boss', access: claims.access })}.${anonSignature}`;
      }
      case 'alg-none':
        return `${json64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
      case 'hs256-public-key': {
        // The published key, as an attacker reads it from the JWKS, used as an HMAC secret.
        const kid = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { kid: string }).kid;
        const jwks = (await request(this.options.target).get('/.well-known/jwks.json')).body as { keys: PublicJwk[] };
        const jwk = jwks.keys.find((k) => k.kid === kid) as PublicJwk;
        const pem = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString();
        const input = `${json64({ alg: 'HS256', typ: 'JWT', kid })}.${payload}`;
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      }
      case 'embedded-jwk': {
        // The attacker's own key in the header, and its signature: valid, if the key in the token were trusted.
        const input = `${json64({ alg: 'ES256', typ: 'JWT', kid: this.attacker.kid, jwk: this.attacker.publicJwk })}.${payload}`;
        return `${input}.${signWith(this.attacker, input)}`;
      }
      case 'unknown-kid':
        return signToken(this.attacker, claims);
      case 'forged-signature':
        // The genuine header (the registry's kid) and claims, signed by the attacker instead.
        return `${header}.${payload}.${signWith(this.attacker, `${header}.${payload}`)}`;
    }
  }
}

/** An ES256 signature (raw r||s, base64url) of a JWS signing input. */
export function signWith(key: SigningKey, input: string): string {
  return b64(sign('sha256', Buffer.from(input), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' }));
}
