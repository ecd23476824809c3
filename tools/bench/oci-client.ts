/**
 * A small OCI Distribution client for the benchmark: monolithic (POST + PUT) and chunked (POST, PATCH..., PUT) blob
 * pushes with streamed bodies, manifest PUT/GET and blob GET following a redirect (the distributed mode answers blob
 * GETs with a presigned storage URL). Only what the benchmark needs; it speaks to Lading and Distribution alike.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';

/** Accept header a pulling client sends for manifests. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** A body the client can send: bytes, or a stream with a known length. */
export type Body = Buffer | Readable;

/** The result of a blob download: bytes read and, when asked for, the digest of them. */
export interface Download {
  bytes: number;
  digest?: string;
}

/** Client of one registry at a base URL such as `http://127.0.0.1:5000`. */
export interface OciClient {
  /** Pushes a blob with POST then one PUT carrying the whole body. */
  pushBlobMonolithic(repo: string, digest: string, size: number, body: () => Body): Promise<void>;
  /** Pushes a blob with POST, one PATCH per chunk (Content-Range), then an empty PUT with the digest. */
  pushBlobChunked(repo: string, digest: string, chunks: AsyncIterable<{ start: number; body: Body; length: number }>): Promise<void>;
  /** Puts a manifest under a tag or digest. */
  putManifest(repo: string, reference: string, mediaType: string, body: Buffer): Promise<void>;
  /** Gets a manifest's bytes. */
  getManifest(repo: string, reference: string): Promise<Buffer>;
  /** Downloads a blob to nowhere, counting its bytes (and hashing them when `hash` is set). */
  downloadBlob(repo: string, digest: string, hash?: boolean): Promise<Download>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/** Makes a client of the registry at `baseUrl` with up to `connections` keep-alive connections per origin. */
export function createOciClient(baseUrl: string, connections = 16): OciClient {
  const dispatcher = new Agent({ connections, keepAliveTimeout: 30_000, bodyTimeout: 600_000, headersTimeout: 600_000 });

  async function call(method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, headers: Record<string, string>, body?: Body) {
    return request(url, { method, headers, body, dispatcher });
  }

  async function expect(res: Awaited<ReturnType<typeof call>>, status: number[], what: string): Promise<void> {
    if (status.includes(res.statusCode)) return;
    const text = (await res.body.text()).slice(0, 300);
    throw new Error(`${what}: HTTP ${res.statusCode} ${text}`);
  }

  async function startUpload(repo: string): Promise<string> {
    const res = await call('POST', `${baseUrl}/v2/${repo}/blobs/uploads/`, { 'content-length': '0' });
    await expect(res, [202], `POST upload to ${repo}`);
    await res.body.dump();
    return locationOf(res.headers.location, baseUrl, 'POST upload');
  }

  return {
    async pushBlobMonolithic(repo, digest, size, body) {
      const location = await startUpload(repo);
      const url = withQuery(location, 'digest', digest);
      const res = await call('PUT', url, { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body());
      await expect(res, [201], `PUT blob ${digest}`);
      await res.body.dump();
    },
    async pushBlobChunked(repo, digest, chunks) {
      let location = await startUpload(repo);
      for await (const chunk of chunks) {
        const res = await call('PATCH', location, {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${chunk.start}-${chunk.start + chunk.length - 1}`,
        }, chunk.body);
        await expect(res, [202], `PATCH chunk at ${chunk.start}`);
        await res.body.dump();
        location = locationOf(res.headers.location, baseUrl, 'PATCH');
      }
      const res = await call('PUT', withQuery(location, 'digest', digest), { 'content-length': '0' });
      await expect(res, [201], `PUT to close chunked upload ${digest}`);
      await res.body.dump();
    },
    async putManifest(repo, reference, mediaType, body) {
      const res = await call('PUT', `${baseUrl}/v2/${repo}/manifests/${reference}`, { 'content-type': mediaType }, body);
      await expect(res, [201], `PUT manifest ${repo}:${reference}`);
      await res.body.dump();
    },
    async getManifest(repo, reference) {
      const res = await call('GET', `${baseUrl}/v2/${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
      await expect(res, [200], `GET manifest ${repo}:${reference}`);
      return Buffer.from(await res.body.arrayBuffer());
    },
    async downloadBlob(repo, digest, hash = false) {
      let url = `${baseUrl}/v2/${repo}/blobs/${digest}`;
      for (let hop = 0; hop < 3; hop++) {
        const res = await call('GET', url, {});
        if ([301, 302, 303, 307, 308].includes(res.statusCode)) {
          await res.body.dump();
          url = locationOf(res.headers.location, url, 'blob GET redirect');
          continue;
        }
        await expect(res, [200], `GET blob ${digest}`);
        const hasher = hash ? createHash('sha256') : undefined;
        let bytes = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          hasher?.update(chunk);
        }
        return { bytes, digest: hasher ? `sha256:${hasher.digest('hex')}` : undefined };
      }
      throw new Error(`GET blob ${digest}: more than 3 redirects`);
    },
    async close() {
      await dispatcher.close();
    },
  };
}

function locationOf(header: string | string[] | undefined, base: string, what: string): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) throw new Error(`${what}: no Location header`);
  return new URL(value, base).toString();
}

function withQuery(location: string, key: string, value: string): string {
  const url = new URL(location);
  url.searchParams.set(key, value);
  return url.toString();
}
