/**
 * The scanner's client of the registry's HTTP API (OCI Distribution): manifests, blobs (streamed, digest checked
 * in the same pass, redirects followed, as the distributed registry answers blob GETs with a 307 to the object
 * store), the referrers API, and the pushes of a report. When the registry requires authentication it speaks the
 * Docker token flow: a 401's `WWW-Authenticate: Bearer realm=...,service=...,scope=...` names the token endpoint,
 * which is asked (with Basic credentials, if any) for a token carrying that scope.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/** Credentials for a registry with auth on: a user or robot account and its password or token. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Settings of the client. */
export interface RegistryClientOptions {
  /** The registry's base URL, e.g. http://127.0.0.1:5000. */
  url: string;
  credentials?: RegistryCredentials;
  userAgent?: string;
  /** Longest wait for response headers. */
  timeoutMs?: number;
}

/** A descriptor as manifests and the referrers API carry it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An answer the scanner did not expect, with the registry's OCI error code when it sent one. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** Every manifest media type the scanner accepts, for the Accept header. */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** A parsed `WWW-Authenticate` challenge. */
interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme, params };
}

function hashOf(digest: string): { algorithm: string; hex: string } {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new RegistryError(0, null, `unsupported digest algorithm in ${digest}`);
  return { algorithm, hex: digest.slice(colon + 1) };
}

async function errorOf(res: Response, what: string): Promise<RegistryError> {
  let code: string | null = null;
  const text = await res.text().catch(() => '');
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code ?? null;
  } catch {
    code = null;
  }
  return new RegistryError(res.status, code, `${what} answered ${res.status}${code ? ` ${code}` : ''}`);
}

/** The client. */
export class RegistryClient {
  /** The Authorization header that last worked for each repository. */
  private readonly authorizations = new Map<string, string>();
  private readonly base: string;

  constructor(private readonly options: RegistryClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** The registry's host as image references name it (`host:port`). */
  get host(): string {
    return new URL(this.base).host;
  }

  /** Fetches a manifest by digest and checks that its bytes have that digest. */
  async getManifest(repository: string, digest: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const res = await this.send(repository, 'GET', `/v2/${repository}/manifests/${digest}`, { headers: { Accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw await errorOf(res, `GET manifest ${repository}@${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const { algorithm, hex } = hashOf(digest);
    if (createHash(algorithm).update(bytes).digest('hex') !== hex) throw new RegistryError(200, null, `manifest ${digest} does not match its digest`);
    return { bytes, mediaType: (res.headers.get('content-type') ?? '').split(';')[0].trim() };
  }

  /**
   * Streams a blob; the digest is checked as the bytes pass, and the stream fails at its end when they do not
   * match (so an inspection of tampered bytes never completes).
   */
  async openBlob(repository: string, digest: string): Promise<AsyncIterable<Buffer>> {
    const res = await this.send(repository, 'GET', `/v2/${repository}/blobs/${digest}`);
    if (res.status !== 200 || !res.body) throw await errorOf(res, `GET blob ${repository}@${digest}`);
    const { algorithm, hex } = hashOf(digest);
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    return (async function* () {
      const hash = createHash(algorithm);
      for await (const chunk of body) {
        hash.update(chunk as Buffer);
        yield chunk as Buffer;
      }
      if (hash.digest('hex') !== hex) throw new RegistryError(200, null, `blob ${digest} does not match its digest`);
    })();
  }

  /** Reads a small blob (an image config) whole; refuses one larger than `maxBytes`. */
  async readBlob(repository: string, digest: string, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of await this.openBlob(repository, digest)) {
      size += chunk.length;
      if (size > maxBytes) throw new RegistryError(200, null, `blob ${digest} is larger than ${maxBytes} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** The referrers of a manifest, filtered by artifact type (a registry without the API has none). */
  async referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.send(repository, 'GET', `/v2/${repository}/referrers/${digest}${query}`, { headers: { Accept: 'application/vnd.oci.image.index.v1+json' } });
    if (res.status === 404) return [];
    if (res.status !== 200) throw await errorOf(res, `GET referrers of ${repository}@${digest}`);
    const index = (await res.json()) as { manifests?: Descriptor[] };
    const manifests = index.manifests ?? [];
    // A registry that ignores the filter says so by not sending OCI-Filters-Applied; filter here then.
    return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
  }

  /** Uploads a blob in one request (`POST ?digest=`), unless the repository already has it. */
  async uploadBlob(repository: string, bytes: Buffer, digest: string): Promise<void> {
    const head = await this.send(repository, 'HEAD', `/v2/${repository}/blobs/${digest}`);
    if (head.status === 200) return;
    const res = await this.send(repository, 'POST', `/v2/${repository}/blobs/uploads/?digest=${digest}`, {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    if (res.status !== 201) throw await errorOf(res, `upload of ${digest} to ${repository}`);
  }

  /** Pushes a manifest under a reference: its digest (a report) or a tag. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const res = await this.send(repository, 'PUT', `/v2/${repository}/manifests/${reference}`, { headers: { 'Content-Type': mediaType }, body: bytes });
    if (res.status !== 201) throw await errorOf(res, `PUT manifest ${repository}:${reference}`);
  }

  /** Sends a request, answering one auth challenge, and follows redirects (without credentials to other hosts). */
  private async send(repository: string, method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Response> {
    const attempt = () => this.fetchFollowing(method, `${this.base}${path}`, { ...init.headers, ...this.authHeader(repository) }, init.body);
    let res = await attempt();
    if (res.status === 401 && (await this.authenticate(repository, res))) res = await attempt();
    return res;
  }

  private authHeader(repository: string): Record<string, string> {
    const authorization = this.authorizations.get(repository);
    return authorization ? { Authorization: authorization } : {};
  }

  private async fetchFollowing(method: string, url: string, headers: Record<string, string>, body?: Buffer): Promise<Response> {
    let target = url;
    let sendHeaders: Record<string, string> = { ...headers, 'User-Agent': this.options.userAgent ?? 'lading-example-scanner' };
    for (let hop = 0; ; hop++) {
      const res = await fetch(target, {
        method,
        headers: sendHeaders,
        body: body ? new Uint8Array(body) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
      });
      const location = res.headers.get('location');
      if (!REDIRECTS.has(res.status) || !location || method === 'PUT' || method === 'POST') return res;
      if (hop >= MAX_REDIRECTS) throw new RegistryError(res.status, null, `more than ${MAX_REDIRECTS} redirects from ${url}`);
      await res.body?.cancel();
      const next = new URL(location, target);
      // A presigned object-store URL carries its own authorization; the registry's must not leak to it.
      if (next.origin !== new URL(target).origin) {
        sendHeaders = Object.fromEntries(Object.entries(sendHeaders).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      target = next.toString();
    }
  }

  /** Answers a 401's challenge; returns whether there is now something new to try. */
  private async authenticate(repository: string, res: Response): Promise<boolean> {
    await res.body?.cancel();
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    const credentials = this.options.credentials;
    if (challenge?.scheme === 'basic') {
      if (!credentials) return false;
      this.authorizations.set(repository, `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`);
      return true;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) return false;
    const query = new URLSearchParams();
    if (challenge.params.service) query.set('service', challenge.params.service);
    query.set('scope', challenge.params.scope ?? `repository:${repository}:pull`);
    const headers: Record<string, string> = { 'User-Agent': this.options.userAgent ?? 'lading-example-scanner' };
    if (credentials) headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    const realm = new URL(challenge.params.realm);
    for (const [k, v] of query) realm.searchParams.append(k, v);
    const tokenRes = await fetch(realm, { headers, signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000) });
    if (tokenRes.status !== 200) throw await errorOf(tokenRes, `the token endpoint ${realm.origin}${realm.pathname}`);
    const body = (await tokenRes.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(200, null, 'the token endpoint answered without a token');
    this.authorizations.set(repository, `Bearer ${token}`);
    return true;
  }
}
