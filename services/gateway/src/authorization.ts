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
import { Access, TokenClaims, TokenError, acceptsAnonymous, formatScope, grants, requiredAccess, verifyToken } from '@lading/access';
import { OciError, RouteMatch, assertRepositoryName } from '@lading/oci';
import { PRINCIPAL_GROUPS_HEADER, PRINCIPAL_HEADER, principalGroupsHeader } from '@lading/http';

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
  const verified = new LruCache<string, { claims: TokenClaims; keys: Map<string, KeyObject> }>({ maxEntries: options.tokenCacheEntries ?? 0 });
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
        if (!(err instanceof TokenError && err.code === 'unknown-key')) throw err;
        seen = await reloaded(seen);
        claims = check(token, seen);
      }
      verified.set(token, { claims, keys: seen });
      return claims;
    },
  };
}

/** Settings of the gateway's enforcement. */
export interface AuthorizationOptions {
  verifier: TokenVerifier;
  /** The token endpoint; when unset it is derived from the request (see `realmOf`). */
  realm?: string;
  service: string;
  /**
   * Reverse proxies in front (`http.trustedProxies`). Only when there is at least one are `X-Forwarded-Proto` and
   * `X-Forwarded-Host` believed; without, anyone could choose the realm a client is sent to with its credentials.
   */
  trustedProxies?: number;
}

/** Checks a request against the route's required access; sets the principal header or throws 401. */
export type Authorize = (req: IncomingMessage, res: ServerResponse, match: RouteMatch) => Promise<void>;

/** The first value of a header that may repeat or hold a comma-separated list (as proxies append), trimmed. */
function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(',')[0].trim();
}

const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?';
/** A host as a URL authority names it: a DNS name or IPv4 address, or a bracketed IPv6 address; then maybe a port. */
const HOST_AND_PORT = new RegExp(`^(?:\\[[0-9A-Fa-f:.]{2,45}\\]|${HOST_LABEL}(?:\\.${HOST_LABEL})*)(?::(\\d{1,5}))?$`);

/** `value` when it is a valid `host[:port]` (the port at most 65535), else undefined. */
export function validHostAndPort(value: string | undefined): string | undefined {
  if (!value || value.length > 260) return undefined;
  const m = HOST_AND_PORT.exec(value);
  if (!m || (m[1] !== undefined && Number(m[1]) > 65535)) return undefined;
  return value;
}

/** The address and port the request came in on, as a URL authority (the fallback when no Host can be believed). */
function listenerAuthority(req: IncomingMessage): string {
  const address = req.socket.localAddress;
  const port = req.socket.localPort;
  if (!address) return 'localhost';
  const host = address.includes(':') ? `[${address}]` : address;
  return port ? `${host}:${port}` : host;
}

/**
 * The token endpoint a challenge sends the client to, when none is configured: the scheme is http or https and
 * nothing else, the host a valid `host[:port]`. The forwarded headers count only behind trusted proxies; otherwise
 * the listener's own scheme and the Host header (or, when Host is not a valid authority, the listener's address).
 */
export function realmOf(req: IncomingMessage, trustedProxies: number): string {
  const socketScheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  let scheme = socketScheme;
  let host: string | undefined;
  if (trustedProxies > 0) {
    const forwardedProto = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (forwardedProto === 'http' || forwardedProto === 'https') scheme = forwardedProto;
    host = validHostAndPort(firstValue(req.headers['x-forwarded-host']));
  }
  host ??= validHostAndPort(req.headers.host) ?? listenerAuthority(req);
  return `${scheme}://${host}/token`;
}

/**
 * A value as an RFC 7235 quoted-string: `"` and `\\` escaped, and anything but printable ASCII (control
 * characters, which a header cannot carry, and non-ASCII) percent-encoded as UTF-8, so that no value can end the string or add a parameter.
 */
export function quotedString(value: string): string {
  const safe = value.replace(/[^\t\x20-\x7e]/gu, (c) => (/\p{Cs}/u.test(c) ? '%EF%BF%BD' : encodeURIComponent(c)));
  return `"${safe.replace(/["\\]/g, (c) => `\\${c}`)}"`;
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
  const trustedProxies = options.trustedProxies ?? 0;
  function unauthorized(req: IncomingMessage, required: Access[], error?: string): OciError {
    const realm = options.realm ?? realmOf(req, trustedProxies);
    const parts = [`realm=${quotedString(realm)}`, `service=${quotedString(options.service)}`];
    if (required.length > 0) parts.push(`scope=${quotedString(challengeScope(required))}`);
    if (error) parts.push(`error=${quotedString(error)}`);
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
    // The source is named in the challenge: refuse a name the grammar does not allow before it gets there (the blob
    // service would refuse it too).
    if (from !== null && from !== '') assertRepositoryName(from);
    const challenge: Access[] = from && from !== match.repository ? [...required, { type: 'repository', name: from, actions: ['pull'] }] : required;
    const header = req.headers.authorization;
    if (!header || !/^bearer /i.test(header)) {
      if (!acceptsAnonymous(match)) throw unauthorized(req, challenge);
      req.headers[PRINCIPAL_HEADER] = '';
      return;
    }
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
    // The identity provider's groups, for the services that list what the caller may pull (search, the console).
    const groups = principalGroupsHeader(Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : []);
    if (groups) req.headers[PRINCIPAL_GROUPS_HEADER] = groups;
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
    trustedProxies: config.http.trustedProxies,
  });
}
