/**
 * The one client of a registry's HTTP API (OCI Distribution) that tools, specs, the benchmark and the example scanner
 * share: pushes (monolithic, streamed, chunked), manifests, blobs streamed with their digest checked in the same
 * pass, the referrers API. Every request answers a 401 the way Docker does: the `WWW-Authenticate` challenge names
 * a token endpoint (Bearer realm, service, scope), which is asked, with Basic credentials when there are any, for a
 * token that is then kept per repository. Blob GETs follow redirects (the distributed registry answers them with a
 * 307 to the object store) without sending the registry's credentials to another origin.
 *
 * It runs on undici's `request` over one keep-alive pool; a request costs what a bare `request` costs plus a header
 * merge, so the benchmark's hot loops use it too.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { type Descriptor, MANIFEST_KINDS } from '@lading/oci';
import { basicAuthorization, parseChallenge } from './challenge';
import { loadUndici } from './undici';

/** The Accept header of a manifest GET: every manifest media type the registry serves. */
export const MANIFEST_ACCEPT = Object.keys(MANIFEST_KINDS).join(', ');

/** Credentials for a registry with auth on: a user or robot account and its password or token. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Settings of a client. */
export interface RegistryClientOptions {
  /** The registry's base URL, e.g. http://127.0.0.1:5000. */
  url: string;
  credentials?: RegistryCredentials;
  userAgent?: string;
  /** Headers sent with every request (a `traceparent`, say). */
  headers?: Record<string, string>;
  /** Longest wait for response headers, and for the next piece of a body. */
  timeoutMs?: number;
  /** Keep-alive connections per origin. */
  connections?: number;
}

/** A descriptor as manifests and the referrers API carry it (the OCI one). */
export type { Descriptor };

/** An answer a caller did not expect, with the registry's OCI error code when it sent one. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** Response headers as undici gives them: lower-case names, a list for a repeated header. */
export type AnswerHeaders = Record<string, string | string[] | undefined>;

/** A whole answer: status, the OCI error code of an error body, headers and body. */
export interface Answer {
  status: number;
  code: string | null;
  headers: AnswerHeaders;
  body: Buffer;
}

/** An answer whose body is still to be read (undici's response). */
export type OpenAnswer = Dispatcher.ResponseData;

/** A request body: bytes, or a maker of a fresh stream (called again when a 401 makes the client send it twice). */
export type RequestBody = Buffer | string | (() => Readable);

/** One request's extras. */
export interface RequestOptions {
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Whether a GET or HEAD follows redirects (the default); other methods never do. */
  redirect?: 'follow' | 'manual';
}

/** A blob to push: its bytes and their digest. */
export interface BlobContent {
  digest: string;
  data: Buffer;
}

/** A manifest to push: its bytes and media type. */
export interface ManifestContent {
  mediaType: string;
  body: Buffer | string;
}

/** One piece of a chunked upload: where it starts, how long it is, and its bytes. */
export interface UploadChunk {
  start: number;
  length: number;
  body: Buffer | Readable;
}

/** A client of one registry. Methods that return an `Answer` never throw on a status; the others throw `RegistryError`. */
export interface RegistryClient {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  /** The registry's host as image references name it (`host:port`). */
  readonly host: string;
  /** Sends one request to a path (or a Location the registry gave) and reads the whole answer. */
  send(method: string, target: string, options?: RequestOptions): Promise<Answer>;
  /** Sends one request and leaves its body to the caller, who must read or dump it. */
  open(method: string, target: string, options?: RequestOptions): Promise<OpenAnswer>;

  /** Uploads a whole blob in one request (`POST ?digest=`). */
  uploadBlob(repository: string, blob: BlobContent): Promise<Answer>;
  /** HEAD of a blob. */
  headBlob(repository: string, digest: string): Promise<Answer>;
  /** GET of a blob, redirects followed, read whole (for small blobs; `openBlob` streams). */
  getBlob(repository: string, digest: string): Promise<Answer>;
  /** DELETE of a blob. */
  deleteBlob(repository: string, digest: string): Promise<Answer>;
  /** PUT of a manifest under a tag or digest. */
  putManifest(repository: string, reference: string, manifest: ManifestContent): Promise<Answer>;
  /** GET of a manifest, accepting every manifest media type. */
  getManifest(repository: string, reference: string): Promise<Answer>;
  /** DELETE of a manifest (by digest) or a tag. */
  deleteManifest(repository: string, reference: string): Promise<Answer>;
  /** Uploads an image's blobs and puts its manifest; the first answer that is not 201, or the manifest's. */
  pushImage(repository: string, reference: string, manifest: ManifestContent, blobs: BlobContent[]): Promise<Answer>;

  /** Uploads a blob in one request unless the repository already has it. */
  ensureBlob(repository: string, blob: BlobContent): Promise<void>;
  /** Pushes a blob with POST then one PUT carrying the whole body (streamed when `body` makes a stream). */
  pushBlobStream(repository: string, digest: string, size: number, body: RequestBody): Promise<void>;
  /** Pushes a blob with POST, one PATCH per chunk (Content-Range), then an empty PUT with the digest. */
  pushBlobChunks(repository: string, digest: string, chunks: AsyncIterable<UploadChunk>): Promise<void>;
  /** Fetches a manifest; by digest, checks that its bytes have that digest. */
  readManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string }>;
  /**
   * Streams a blob. Unless `verify` is false, the digest is checked as the bytes pass and the stream fails at its end
   * when they do not match (so reading tampered bytes never completes).
   */
  openBlob(repository: string, digest: string, verify?: boolean): Promise<AsyncIterable<Buffer>>;
  /** Reads a small blob (an image config) whole, digest checked; refuses one larger than `maxBytes`. */
  readBlob(repository: string, digest: string, maxBytes: number): Promise<Buffer>;
  /** The referrers of a manifest, filtered by artifact type (a registry without the API has none). */
  referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[]>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** The repository a registry path is about: what a token's scope names. */
const REPOSITORY_PATH = /^\/v2\/(.+?)\/(?:blobs|manifests|referrers|tags)\//;

/** The OCI error code of an error body, or null. */
export function errorCodeOf(body: Buffer | string): string | null {
  try {
    const code = (JSON.parse(body.toString()) as { errors?: Array<{ code?: unknown }> }).errors?.[0]?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

/** Returns the answer when its status is one of `expected`; throws a `RegistryError` naming `what` otherwise. */
export function expectAnswer(answer: Answer, expected: number | number[], what: string): Answer {
  if ((Array.isArray(expected) ? expected : [expected]).includes(answer.status)) return answer;
  throw errorOf(answer, what);
}

/** The first value of a response header (`name` in lower case). */
export function headerOf(headers: AnswerHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function hashOf(digest: string): { algorithm: string; hex: string } {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') throw new RegistryError(0, null, `unsupported digest algorithm in ${digest}`);
  return { algorithm, hex: digest.slice(colon + 1) };
}

async function answerOf(res: OpenAnswer): Promise<Answer> {
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, code: res.statusCode >= 400 && body.length > 0 ? errorCodeOf(body) : null, headers: res.headers, body };
}

/** Makes a client of the registry at `options.url`. */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { Agent, request } = loadUndici();
  const dispatcher = new Agent({ connections: options.connections ?? 16, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const fixedHeaders: Record<string, string> = { ...options.headers, ...(options.userAgent ? { 'user-agent': options.userAgent } : {}) };
  /** The Authorization header that last worked, by repository ('' for paths about no repository). */
  const authorizations = new Map<string, string>();

  function urlOf(target: string): string {
    return target.startsWith('http://') || target.startsWith('https://') ? target : `${base}${target}`;
  }

  function repositoryOf(url: string): string {
    const path = url.startsWith(base) ? url.slice(base.length) : new URL(url).pathname;
    return REPOSITORY_PATH.exec(path)?.[1] ?? '';
  }

  async function follow(method: string, url: string, headers: Record<string, string>, body: RequestBody | undefined, redirect: boolean): Promise<OpenAnswer> {
    let target = url;
    let sendHeaders = headers;
    for (let hop = 0; ; hop++) {
      const res = await request(target, { method: method as Dispatcher.HttpMethod, headers: sendHeaders, body: typeof body === 'function' ? body() : body, dispatcher });
      if (!redirect || !REDIRECTS.has(res.statusCode)) return res;
      const location = headerOf(res.headers, 'location');
      if (!location) return res;
      if (hop >= MAX_REDIRECTS) throw new RegistryError(res.statusCode, null, `more than ${MAX_REDIRECTS} redirects from ${url}`);
      await res.body.dump();
      const next = new URL(location, target);
      // A presigned object-store URL carries its own authorization; the registry's must not leak to it.
      if (next.origin !== new URL(target).origin) {
        sendHeaders = Object.fromEntries(Object.entries(sendHeaders).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      target = next.toString();
    }
  }

  /** Answers a 401's challenge; returns whether there is now something new to try. */
  async function authenticate(repository: string, res: OpenAnswer): Promise<boolean> {
    await res.body.dump();
    const challenge = parseChallenge(headerOf(res.headers, 'www-authenticate'));
    const scheme = challenge?.scheme.toLowerCase();
    const credentials = options.credentials;
    if (scheme === 'basic') {
      if (!credentials) return false;
      authorizations.set(repository, basicAuthorization(credentials.username, credentials.password));
      return true;
    }
    if (scheme !== 'bearer' || !challenge?.params.realm) return false;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.append('service', challenge.params.service);
    realm.searchParams.append('scope', challenge.params.scope ?? `repository:${repository}:pull`);
    const headers: Record<string, string> = { ...fixedHeaders };
    if (credentials) headers.authorization = basicAuthorization(credentials.username, credentials.password);
    const answer = await answerOf(await request(realm, { headers, dispatcher }));
    const where = `the token endpoint ${realm.origin}${realm.pathname}`;
    expectAnswer(answer, 200, where);
    const body = JSON.parse(answer.body.toString()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(200, null, `${where} answered without a token`);
    authorizations.set(repository, `Bearer ${token}`);
    return true;
  }

  async function open(method: string, target: string, opts: RequestOptions = {}): Promise<OpenAnswer> {
    const url = urlOf(target);
    const redirect = (method === 'GET' || method === 'HEAD') && opts.redirect !== 'manual';
    const attempt = () => {
      // A client that never met a challenge (the benchmark's) does no more per request than build its headers.
      const authorization = authorizations.size === 0 ? undefined : authorizations.get(repositoryOf(url));
      const headers = { ...fixedHeaders, ...opts.headers };
      if (authorization) headers.authorization = authorization;
      return follow(method, url, headers, opts.body, redirect);
    };
    const res = await attempt();
    if (res.statusCode !== 401 || !(await authenticate(repositoryOf(url), res))) return res;
    return attempt();
  }

  const send = async (method: string, target: string, opts?: RequestOptions) => answerOf(await open(method, target, opts));

  /** Opens an upload session; resolves with its absolute Location. */
  async function startUpload(repository: string): Promise<string> {
    const answer = expectAnswer(await send('POST', `/v2/${repository}/blobs/uploads/`, { headers: { 'content-length': '0' } }), 202, `POST upload to ${repository}`);
    return locationOf(answer, `${base}/`);
  }

  async function openBlob(repository: string, digest: string, verify = true): Promise<AsyncIterable<Buffer>> {
    const res = await open('GET', `/v2/${repository}/blobs/${digest}`);
    if (res.statusCode !== 200) throw errorOf(await answerOf(res), `GET blob ${repository}@${digest}`);
    if (!verify) return res.body as AsyncIterable<Buffer>;
    const { algorithm, hex } = hashOf(digest);
    const body = res.body as AsyncIterable<Buffer>;
    return (async function* () {
      const hash = createHash(algorithm);
      for await (const chunk of body) {
        hash.update(chunk);
        yield chunk;
      }
      if (hash.digest('hex') !== hex) throw new RegistryError(200, null, `blob ${digest} does not match its digest`);
    })();
  }

  const client: RegistryClient = {
    url: base,
    host: new URL(base).host,
    send,
    open,
    uploadBlob: (repository, blob) =>
      send('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, { headers: { 'content-type': 'application/octet-stream' }, body: blob.data }),
    headBlob: (repository, digest) => send('HEAD', `/v2/${repository}/blobs/${digest}`),
    getBlob: (repository, digest) => send('GET', `/v2/${repository}/blobs/${digest}`),
    deleteBlob: (repository, digest) => send('DELETE', `/v2/${repository}/blobs/${digest}`),
    putManifest: (repository, reference, manifest) =>
      send('PUT', `/v2/${repository}/manifests/${reference}`, { headers: { 'content-type': manifest.mediaType }, body: manifest.body }),
    getManifest: (repository, reference) => send('GET', `/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT } }),
    deleteManifest: (repository, reference) => send('DELETE', `/v2/${repository}/manifests/${reference}`),
    async pushImage(repository, reference, manifest, blobs) {
      for (const blob of blobs) {
        const up = await client.uploadBlob(repository, blob);
        if (up.status !== 201) return up;
      }
      return client.putManifest(repository, reference, manifest);
    },

    async ensureBlob(repository, blob) {
      if ((await client.headBlob(repository, blob.digest)).status === 200) return;
      expectAnswer(await client.uploadBlob(repository, blob), 201, `upload of ${blob.digest} to ${repository}`);
    },
    async pushBlobStream(repository, digest, size, body) {
      const location = withQuery(await startUpload(repository), 'digest', digest);
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
      expectAnswer(await send('PUT', location, { headers, body }), 201, `PUT blob ${digest}`);
    },
    async pushBlobChunks(repository, digest, chunks) {
      let location = await startUpload(repository);
      for await (const chunk of chunks) {
        const headers = {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${chunk.start}-${chunk.start + chunk.length - 1}`,
        };
        // A stream is sent once: the session's repository already holds a token from the POST.
        const body = Buffer.isBuffer(chunk.body) ? chunk.body : () => chunk.body as Readable;
        location = locationOf(expectAnswer(await send('PATCH', location, { headers, body }), 202, `PATCH chunk at ${chunk.start}`), location);
      }
      expectAnswer(await send('PUT', withQuery(location, 'digest', digest), { headers: { 'content-length': '0' } }), 201, `PUT to close chunked upload ${digest}`);
    },
    async readManifest(repository, reference) {
      const answer = await client.getManifest(repository, reference);
      if (answer.status !== 200) throw errorOf(answer, `GET manifest ${repository}${reference.includes(':') ? '@' : ':'}${reference}`);
      if (reference.includes(':')) {
        const { algorithm, hex } = hashOf(reference);
        if (createHash(algorithm).update(answer.body).digest('hex') !== hex) throw new RegistryError(200, null, `manifest ${reference} does not match its digest`);
      }
      return { bytes: answer.body, mediaType: (headerOf(answer.headers, 'content-type') ?? '').split(';')[0].trim() };
    },
    openBlob,
    async readBlob(repository, digest, maxBytes) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of await openBlob(repository, digest)) {
        size += chunk.length;
        if (size > maxBytes) throw new RegistryError(200, null, `blob ${digest} is larger than ${maxBytes} bytes`);
        chunks.push(chunk);
      }
      return Buffer.concat(chunks);
    },
    async referrers(repository, digest, artifactType) {
      const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
      const answer = await send('GET', `/v2/${repository}/referrers/${digest}${query}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
      if (answer.status === 404) return [];
      if (answer.status !== 200) throw errorOf(answer, `GET referrers of ${repository}@${digest}`);
      const manifests = (JSON.parse(answer.body.toString()) as { manifests?: Descriptor[] }).manifests ?? [];
      // A registry that ignores the filter says so by not sending OCI-Filters-Applied; filter here then.
      return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
    },
    close: () => dispatcher.close(),
  };
  return client;
}

function errorOf(answer: Answer, what: string): RegistryError {
  return new RegistryError(answer.status, answer.code, `${what} answered ${answer.status}${answer.code ? ` ${answer.code}` : ''}`);
}

function locationOf(answer: Answer, base: string): string {
  const value = headerOf(answer.headers, 'location');
  if (!value) throw new RegistryError(answer.status, null, `no Location header in the ${answer.status} answer`);
  return new URL(value, base).toString();
}

function withQuery(location: string, key: string, value: string): string {
  const url = new URL(location);
  url.searchParams.set(key, value);
  return url.toString();
}
