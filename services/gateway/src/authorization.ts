/**
 * Token authentication at the gateway: every /v2 request needs a valid bearer token carrying the access its route
 * needs (see `requiredAccess`). Tokens are verified offline against the auth service's published keys. Anything
 * missing, invalid or insufficient is answered 401 UNAUTHORIZED with the challenge Docker clients follow.
 */
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { LruCache } from '@lading/cache';
import type { LadingConfig } from '@lading/config';
import { Access, TokenClaims, TokenError, formatScope, grants, requiredAccess, verifyToken } from '@lading/access';
import { OciError, RouteMatch } from '@lading/oci';
import { PRINCIPAL_HEADER } from '@lading/http';

/** The header the gateway passes the verified subject to services in (stripped from client requests). */
export { PRINCIPAL_HEADER };

/** Verifies bearer tokens. */
export interface TokenVerifier {
  verify(token: string): Promise<TokenClaims>;
}

/** Settings of a JWKS-backed verifier. */
export interface JwksVerifierOptions {
  /** Loads the current verification keys (from the auth service's JWKS, or its key ring in-process). */
  loadKeys: () => Promise<Map<string, KeyObject>>;
  issuer: string;
  audience: string;
  leewaySeconds: number;
  now: () => number;
  /** How long loaded keys are trusted before a reload. */
  cacheMs: number;
  /**
   * Verified tokens remembered (until their expiry, and while the keys they were checked against are current), so
   * that a client's next request with the same token costs a map lookup, not a signature check. 0 turns it off.
   */
  tokenCacheEntries?: number;
}

/** The least time between two reloads of the keys caused by tokens that name an unknown key. */
const UNKNOWN_KID_RELOAD_MS = 1000;

/**
 * Creates a verifier that caches keys and reloads them when a token names a key it does not know (a rotation). Such
 * reloads happen at most once a second; a token that arrives sooner waits for the next reload rather than failing,
 * so that tokens naming made-up keys can neither hammer the JWKS nor make a rotation fail requests.
 */
export function createJwksVerifier(options: JwksVerifierOptions): TokenVerifier {
  let keys: Map<string, KeyObject> | null = null;
  let loadedAt = 0;
  let loading: Promise<Map<string, KeyObject>> | null = null;
  function load(): Promise<Map<string, KeyObject>> {
    loading ??= options
      .loadKeys()
      .then((loaded) => {
        keys = loaded;
        loadedAt = options.now();
        return loaded;
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  }
  async function current(): Promise<Map<string, KeyObject>> {
    if (!keys || options.now() - loadedAt > options.cacheMs) return load();
    return keys;
  }
  /** Fresh keys for a token whose key was not in `seen`. */
  async function reloaded(seen: Map<string, KeyObject>): Promise<Map<string, KeyObject>> {
    const wait = loadedAt + UNKNOWN_KID_RELOAD_MS - options.now();
    if (keys === seen && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Another request may have reloaded meanwhile.
    return keys !== seen && keys ? keys : load();
  }
  const check = (token: string, k: Map<string, KeyObject>) =>
    verifyToken(token, k, { issuer: options.issuer, audience: options.audience, leewaySeconds: options.leewaySeconds, now: options.now });
  const verified = new LruCache<string, { claims: TokenClaims; keys: Map<string, KeyObject> }>({ maxBytes: (options.tokenCacheEntries ?? 0) * 64 });
  /** Claims of a remembered token that are still in force now, checked against the current keys. */
  function remembered(token: string, current: Map<string, KeyObject>): TokenClaims | null {
    const hit = verified.get(token);
    if (!hit) return null;
    const now = Math.floor(options.now() / 1000);
    if (hit.keys !== current || now > hit.claims.exp + options.leewaySeconds || now + options.leewaySeconds < hit.claims.nbf) {
      verified.delete(token);
      return null;
    }
    return hit.claims;
  }
  return {
    async verify(token) {
      let seen = await current();
      const hit = remembered(token, seen);
      if (hit) return hit;
      let claims: TokenClaims;
      try {
        claims = check(token, seen);
      } catch (err) {
        if (!(err instanceof TokenError && err.message === 'token signed by an unknown key')) throw err;
        seen = await reloaded(seen);
        claims = check(token, seen);
      }
      verified.set(token, { claims, keys: seen }, 0);
      return claims;
    },
  };
}

/** Settings of the gateway's enforcement. */
export interface AuthorizationOptions {
  verifier: TokenVerifier;
  /** The token endpoint; when unset it is derived from the request's host. */
  realm?: string;
  service: string;
}

/** Checks a request against the route's required access; sets the principal header or throws 401. */
export type Authorize = (req: IncomingMessage, res: ServerResponse, match: RouteMatch) => Promise<void>;

/** The scheme the client used: as a trusted proxy says, or the socket's. */
function protocolOf(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  if (typeof forwarded === 'string' && forwarded) return forwarded;
  return (req.socket as TLSSocket).encrypted ? 'https' : 'http';
}

/** The single value of a query parameter (absent or repeated → null). */
function queryParameter(params: URLSearchParams, name: string): string | null {
  const values = params.getAll(name);
  return values.length === 1 ? values[0] : null;
}

function challengeScope(access: Access[]): string {
  return access
    .map((a) => formatScope(a.type === 'repository' && a.actions.includes('push') ? { ...a, actions: ['pull', 'push'] } : a))
    .join(' ');
}

/** Creates the gateway's authorization step. */
export function createAuthorization(options: AuthorizationOptions): Authorize {
  function unauthorized(req: IncomingMessage, required: Access[], error?: string): OciError {
    const realm = options.realm ?? `${protocolOf(req)}://${req.headers.host}/token`;
    const parts = [`realm="${realm}"`, `service="${options.service}"`];
    if (required.length > 0) parts.push(`scope="${challengeScope(required)}"`);
    if (error) parts.push(`error="${error}"`);
    return new OciError(
      'UNAUTHORIZED',
      error === 'insufficient_scope' ? 'the token does not grant the access this request needs' : 'authentication required',
      required.map((a) => ({ type: a.type, name: a.name, action: a.actions.join(',') })),
      { headers: { 'WWW-Authenticate': `Bearer ${parts.join(',')}` } },
    );
  }

  return async (req, _res, match) => {
    const required = requiredAccess(match, req.method ?? 'GET');
    // A mount's source is asked for in the challenge (so the client's next token can carry it) but not required.
    const query = match.route.name === 'uploadStart' ? new URL(req.url ?? '/', 'http://gateway').searchParams : null;
    const from = query ? queryParameter(query, 'from') : null;
    const challenge: Access[] = from && from !== match.repository ? [...required, { type: 'repository', name: from, actions: ['pull'] }] : required;
    const header = req.headers.authorization;
    if (!header || !/^bearer /i.test(header)) throw unauthorized(req, challenge);
    let claims: TokenClaims;
    try {
      claims = await options.verifier.verify(header.slice(7).trim());
    } catch (err) {
      if (err instanceof TokenError) throw unauthorized(req, challenge, 'invalid_token');
      throw err;
    }
    for (const need of required) {
      for (const action of need.actions) {
        if (!grants(claims.access, need.type, need.name, action)) throw unauthorized(req, challenge, 'insufficient_scope');
      }
    }
    // A mount needs pull on its source. A token that never asked for the source gets a challenge that does; one that
    // asked and was refused (an entry with no actions), or a mount without a source, becomes a plain upload.
    if (query && query.has('mount')) {
      const asked = from !== null && claims.access.some((a) => a.type === 'repository' && a.name === from);
      if (from && from !== match.repository && !asked) throw unauthorized(req, challenge, 'insufficient_scope');
      if (!from || !grants(claims.access, 'repository', from, 'pull')) {
        const url = new URL(req.url ?? '/', 'http://gateway');
        url.searchParams.delete('mount');
        url.searchParams.delete('from');
        // Both: a service in the same process reads req.url, the proxy to a service's replicas forwards req.originalUrl.
        req.url = `${url.pathname}${url.search}`;
        (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      }
    }
    req.headers[PRINCIPAL_HEADER] = claims.sub;
  };
}

/** The gateway's enforcement as the configuration sets it up, or undefined when auth is off. */
export function authorizationFromConfig(config: LadingConfig, loadKeys: () => Promise<Map<string, KeyObject>>): Authorize | undefined {
  if (!config.auth.enabled) return undefined;
  return createAuthorization({
    verifier: createJwksVerifier({
      loadKeys,
      issuer: config.auth.issuer,
      audience: config.auth.service,
      leewaySeconds: 60,
      now: Date.now,
      cacheMs: 30_000,
      tokenCacheEntries: config.limits.tokenCacheEntries,
    }),
    realm: config.auth.realm ?? (config.http.host ? `${config.http.host.replace(/\/$/, '')}/token` : undefined),
    service: config.auth.service,
  });
}
