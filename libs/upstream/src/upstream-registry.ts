/**
 * A client of one upstream registry, the pull-through cache's side of the OCI Distribution API: HEAD and GET of
 * manifests (by tag or digest, accepting every OCI and Docker manifest type) and GET of blobs as streams.
 *
 * It speaks the registry token flow: a 401 whose `WWW-Authenticate` is `Bearer realm,service,scope` is answered by
 * asking the realm for a pull token (anonymously, or with the configured credentials as Basic), kept per repository
 * until it expires; a `Basic` challenge is answered with the credentials. Blob GETs follow redirects (Docker Hub and
 * most clouds send them to a CDN) without carrying the upstream's Authorization to another origin.
 *
 * Invariant: after a 429 nothing is sent to the upstream until its `Retry-After` has passed; calls in between fail
 * at once with `UpstreamRateLimitedError`, so a rate-limited upstream is not hammered by every cache miss.
 * The credentials go to the upstream's origin and its token realm only, and never into an error message.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { basicAuthorization, loadUndici, parseChallenge } from '@lading/client';
import { MANIFEST_KINDS } from '@lading/oci';
import { SPAN_ATTRIBUTES, SPAN_NAMES, withSpan } from '@lading/telemetry';
import { UpstreamError, UpstreamNotFoundError, UpstreamRateLimitedError, UpstreamUnauthorizedError, UpstreamUnavailableError } from './upstream-errors';

/** The Accept header of manifest requests: every manifest media type the registry stores. */
export const UPSTREAM_MANIFEST_ACCEPT = Object.keys(MANIFEST_KINDS).join(', ');

/** What an upstream says about a manifest without sending it (a HEAD). */
export interface UpstreamManifestHead {
  /** `Docker-Content-Digest`, when the upstream sent it (registries do; a HEAD without it cannot be trusted). */
  digest: string | null;
  mediaType: string | null;
  size: number | null;
}

/** A manifest as the upstream sent it; its digest is the caller's to verify. */
export interface UpstreamManifest {
  body: Buffer;
  /** The media type from Content-Type, without parameters. */
  mediaType: string | null;
  /** `Docker-Content-Digest`, when sent. */
  digest: string | null;
}

/** A blob's body as a stream; its digest is the caller's to verify as it passes. */
export interface UpstreamBlob {
  /** Content-Length, when sent. */
  size: number | null;
  body: Readable;
}

/** A client of one upstream registry; repositories are named as the upstream names them. */
export interface UpstreamRegistry {
  /** The upstream's base URL (no credentials in it). */
  readonly url: string;
  /** HEAD of a manifest by tag or digest; throws an `UpstreamError`. */
  headManifest(repository: string, reference: string): Promise<UpstreamManifestHead>;
  /** GET of a manifest by tag or digest, at most `maxBytes`; throws an `UpstreamError`. */
  getManifest(repository: string, reference: string, maxBytes: number): Promise<UpstreamManifest>;
  /** GET of a blob, redirects followed; the caller must read or destroy the body. Throws an `UpstreamError`. */
  getBlob(repository: string, digest: string): Promise<UpstreamBlob>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/** What an upstream client is built from. */
export interface UpstreamRegistryDeps {
  /** The upstream's base URL, http or https (from the configuration, never from a request). */
  url: string;
  username?: string;
  password?: string;
  /** Longest wait for response headers, and for the next piece of a body (default 30s). */
  timeoutMs?: number;
  /** How long to stay away after a 429 without a usable Retry-After (default 60s). */
  defaultRetryAfterMs?: number;
  /** The clock, in milliseconds (tests move it). */
  now?: () => number;
  userAgent?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** A token is renewed this long before the expiry the realm gave. */
const TOKEN_MARGIN_MS = 5_000;

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Retry-After as delay-seconds or an HTTP date, in milliseconds from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Creates a client of one upstream registry. */
export function createUpstreamRegistry(deps: UpstreamRegistryDeps): UpstreamRegistry {
  const base = deps.url.replace(/\/+$/, '');
  const origin = new URL(base).origin;
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? 30_000;
  const { Agent, errors: undiciErrors, request } = loadUndici();
  const dispatcher = new Agent({ connections: 32, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const fixedHeaders: Record<string, string> = { 'user-agent': deps.userAgent ?? 'lading-pull-through' };
  const credentials = deps.username !== undefined && deps.password !== undefined ? basicAuthorization(deps.username, deps.password) : null;
  /** The Authorization that works for a repository, and until when (ms). */
  const authorizations = new Map<string, { value: string; until: number }>();
  let blockedUntil = 0;

  async function send(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method, headers, dispatcher });
    } catch (err) {
      const reason = err instanceof undiciErrors.HeadersTimeoutError ? 'timed out' : (err as Error).message;
      throw new UpstreamUnavailableError(`upstream ${origin} cannot be reached: ${reason}`);
    }
  }

  /** One request, redirects followed for GET (the Authorization stays with the upstream's origin). */
  async function follow(path: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    let target = `${base}${path}`;
    let sendHeaders = headers;
    for (let hop = 0; ; hop++) {
      const res = await send(target, method, sendHeaders);
      if (!REDIRECTS.has(res.statusCode)) return res;
      const location = header(res.headers, 'location');
      await res.body.dump();
      if (!location || hop >= MAX_REDIRECTS) throw new UpstreamUnavailableError(`upstream ${origin} redirected ${path} without end`, res.statusCode);
      const next = new URL(location, target);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamUnavailableError(`upstream ${origin} redirected to a ${next.protocol} URL`);
      if (next.origin !== origin) sendHeaders = Object.fromEntries(Object.entries(sendHeaders).filter(([k]) => k !== 'authorization'));
      target = next.toString();
    }
  }

  /** Answers a 401's challenge for `repository`; false when there is nothing to try (no credentials for Basic). */
  async function authenticate(repository: string, res: Dispatcher.ResponseData): Promise<boolean> {
    const challenge = parseChallenge(header(res.headers, 'www-authenticate'));
    const scheme = challenge?.scheme.toLowerCase();
    if (scheme === 'basic') {
      if (!credentials) return false;
      authorizations.set(repository, { value: credentials, until: Number.POSITIVE_INFINITY });
      return true;
    }
    if (scheme !== 'bearer' || !challenge?.params.realm) return false;
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm);
    } catch {
      throw new UpstreamUnavailableError(`upstream ${origin} names a token realm that is not a URL`);
    }
    if (realm.protocol !== 'http:' && realm.protocol !== 'https:') throw new UpstreamUnavailableError(`upstream ${origin} names a ${realm.protocol} token realm`);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', `repository:${repository}:pull`);
    const headers: Record<string, string> = { ...fixedHeaders };
    if (credentials) headers.authorization = credentials;
    const where = `the token endpoint ${realm.origin}${realm.pathname} of upstream ${origin}`;
    const answer = await send(realm.toString(), 'GET', headers);
    const text = await answer.body.text().catch(() => '');
    if (answer.statusCode === 401 || answer.statusCode === 403) throw new UpstreamUnauthorizedError(`${where} refused the credentials`, answer.statusCode);
    if (answer.statusCode === 429) throw rateLimited(answer.headers, where);
    if (answer.statusCode !== 200) throw new UpstreamUnavailableError(`${where} answered ${answer.statusCode}`, answer.statusCode);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new UpstreamUnavailableError(`${where} answered something that is not JSON`);
    }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : null;
    if (!token) throw new UpstreamUnavailableError(`${where} answered without a token`);
    // The token spec's default lifetime is 60 seconds.
    const ttlMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60) * 1000;
    authorizations.set(repository, { value: `Bearer ${token}`, until: now() + Math.max(ttlMs - TOKEN_MARGIN_MS, 1000) });
    return true;
  }

  function rateLimited(headers: Headers, where: string): UpstreamRateLimitedError {
    const wait = parseRetryAfter(header(headers, 'retry-after'), now()) ?? deps.defaultRetryAfterMs ?? 60_000;
    blockedUntil = Math.max(blockedUntil, now() + wait);
    return new UpstreamRateLimitedError(`${where} is rate-limiting; retry after ${Math.ceil(wait / 1000)}s`, wait);
  }

  /** Sends a request about `repository`, through the token flow, in an `upstream.request` span; a 2xx answer or throws. */
  function open(repository: string, path: string, method: 'GET' | 'HEAD', extra: Record<string, string>, what: string): Promise<Dispatcher.ResponseData> {
    const attributes = { 'http.request.method': method, 'server.address': origin, [SPAN_ATTRIBUTES.repository]: repository };
    return withSpan(SPAN_NAMES.upstreamRequest, attributes, async (span) => {
      const res = await openUntraced(repository, path, method, extra, what);
      span.setAttribute('http.response.status_code', res.statusCode);
      return res;
    });
  }

  async function openUntraced(repository: string, path: string, method: 'GET' | 'HEAD', extra: Record<string, string>, what: string): Promise<Dispatcher.ResponseData> {
    const wait = blockedUntil - now();
    if (wait > 0) throw new UpstreamRateLimitedError(`upstream ${origin} is rate-limiting; retry after ${Math.ceil(wait / 1000)}s`, wait);
    const attempt = () => {
      const held = authorizations.get(repository);
      const headers = { ...fixedHeaders, ...extra };
      if (held && held.until > now()) headers.authorization = held.value;
      return follow(path, method, headers);
    };
    let res = await attempt();
    if (res.statusCode === 401) {
      await res.body.dump();
      if (await authenticate(repository, res)) res = await attempt();
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300) return res;
    await res.body.dump().catch(() => undefined);
    const where = `upstream ${origin} (${what})`;
    if (status === 404) throw new UpstreamNotFoundError(`${where} has no such content`, status);
    if (status === 401 || status === 403) throw new UpstreamUnauthorizedError(`${where} refused access`, status);
    if (status === 429) throw rateLimited(res.headers, where);
    throw new UpstreamUnavailableError(`${where} answered ${status}`, status);
  }

  return {
    url: base,
    async headManifest(repository, reference) {
      const res = await open(repository, `/v2/${repository}/manifests/${reference}`, 'HEAD', { accept: UPSTREAM_MANIFEST_ACCEPT }, `HEAD ${repository}:${reference}`);
      await res.body.dump();
      const length = header(res.headers, 'content-length');
      return {
        digest: header(res.headers, 'docker-content-digest') ?? null,
        mediaType: header(res.headers, 'content-type')?.split(';')[0].trim() || null,
        size: length !== undefined && /^\d+$/.test(length) ? Number(length) : null,
      };
    },
    async getManifest(repository, reference, maxBytes) {
      const what = `GET ${repository}:${reference}`;
      const res = await open(repository, `/v2/${repository}/manifests/${reference}`, 'GET', { accept: UPSTREAM_MANIFEST_ACCEPT }, what);
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) {
            res.body.destroy();
            throw new UpstreamUnavailableError(`upstream ${origin} (${what}) sent a manifest larger than ${maxBytes} bytes`);
          }
          chunks.push(chunk);
        }
      } catch (err) {
        if (err instanceof UpstreamError) throw err;
        throw new UpstreamUnavailableError(`upstream ${origin} (${what}) broke off the manifest: ${(err as Error).message}`);
      }
      return {
        // A manifest is small and capped: this is not a blob.
        body: Buffer.concat(chunks),
        mediaType: header(res.headers, 'content-type')?.split(';')[0].trim() || null,
        digest: header(res.headers, 'docker-content-digest') ?? null,
      };
    },
    async getBlob(repository, digest) {
      const res = await open(repository, `/v2/${repository}/blobs/${digest}`, 'GET', {}, `GET ${repository}@${digest}`);
      const length = header(res.headers, 'content-length');
      return { size: length !== undefined && /^\d+$/.test(length) ? Number(length) : null, body: res.body };
    },
    close: () => dispatcher.close(),
  };
}
