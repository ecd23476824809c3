/**
 * A registry for the collector's tests: the real blob and manifest services behind the real gateway, on whatever
 * database and store the test hands in (PGlite and the filesystem, or Postgres and MinIO), listening on an
 * ephemeral loopback port, with a small client for the API calls the tests make.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { RequestHandler } from 'express';
import { createBlobService } from '@lading/blob';
import type { LadingConfig } from '@lading/config';
import type { OutboxContext } from '@lading/events';
import { createGateway } from '@lading/gateway';
import { createManifestService } from '@lading/manifest';
import type { Database } from '@lading/metadata';
import type { BlobStore } from '@lading/storage';
import type { TestBlob, TestManifest } from '@lading/testing';
import type { Logger } from '@lading/telemetry';

/** What the registry under test runs on. */
export interface RegistryParts {
  db: Database;
  store: BlobStore;
  config: LadingConfig;
  logger: Logger;
  events: OutboxContext;
  onEventsCommitted?: () => void;
}

/** A listening registry and its client. */
export interface RegistryUnderTest {
  url: string;
  client: RegistryClient;
  close(): Promise<void>;
}

/** Starts the blob and manifest services behind a gateway on 127.0.0.1 (auth off). */
export async function startRegistry(parts: RegistryParts): Promise<RegistryUnderTest> {
  const blob = createBlobService({ ...parts, logger: parts.logger.child({ service: 'lading-blob' }) });
  const manifest = createManifestService({ ...parts, logger: parts.logger.child({ service: 'lading-manifest' }) });
  const noAuth: RequestHandler = (_req, res) => {
    res.status(404).end();
  };
  const app = createGateway({ dispatch: { blob, manifest, auth: noAuth }, logger: parts.logger });
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    client: new RegistryClient(url),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An API answer: status, the OCI error code if any, headers and body. */
export interface Answer {
  status: number;
  code: string | null;
  headers: Headers;
  body: Buffer;
}

/** A small OCI Distribution client over fetch. */
export class RegistryClient {
  constructor(readonly url: string) {}

  /** Sends one request and reads the whole answer. */
  async send(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<Answer> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : new Uint8Array(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    let code: string | null = null;
    if (res.status >= 400 && bytes.length > 0) {
      try {
        code = (JSON.parse(bytes.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code ?? null;
      } catch {
        code = null;
      }
    }
    return { status: res.status, code, headers: res.headers, body: bytes };
  }

  /** Uploads a whole blob in one POST (`?digest=`). */
  uploadBlob(repository: string, blob: TestBlob): Promise<Answer> {
    return this.send('POST', `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`, blob.data, { 'Content-Type': 'application/octet-stream' });
  }

  /** Uploads a blob as POST, PATCH, PUT. */
  async uploadBlobChunked(repository: string, blob: TestBlob): Promise<Answer> {
    const start = await this.send('POST', `/v2/${repository}/blobs/uploads/`);
    if (start.status !== 202) return start;
    const location = start.headers.get('location') as string;
    const patched = await this.send('PATCH', location, blob.data, { 'Content-Type': 'application/octet-stream' });
    if (patched.status !== 202) return patched;
    const sep = location.includes('?') ? '&' : '?';
    return this.send('PUT', `${patched.headers.get('location')}${sep}digest=${blob.digest}`);
  }

  /** Opens an upload session and writes `bytes` to it, leaving it unfinished; resolves with its Location. */
  async abandonUpload(repository: string, bytes: Buffer): Promise<string> {
    const start = await this.send('POST', `/v2/${repository}/blobs/uploads/`);
    if (start.status !== 202) throw new Error(`upload start answered ${start.status}`);
    const location = start.headers.get('location') as string;
    const patched = await this.send('PATCH', location, bytes, { 'Content-Type': 'application/octet-stream' });
    if (patched.status !== 202) throw new Error(`upload PATCH answered ${patched.status}`);
    return location;
  }

  /** Mounts a blob from another repository. */
  mount(repository: string, digest: string, from: string): Promise<Answer> {
    return this.send('POST', `/v2/${repository}/blobs/uploads/?mount=${digest}&from=${from}`);
  }

  headBlob(repository: string, digest: string): Promise<Answer> {
    return this.send('HEAD', `/v2/${repository}/blobs/${digest}`);
  }

  getBlob(repository: string, digest: string): Promise<Answer> {
    return this.send('GET', `/v2/${repository}/blobs/${digest}`);
  }

  deleteBlob(repository: string, digest: string): Promise<Answer> {
    return this.send('DELETE', `/v2/${repository}/blobs/${digest}`);
  }

  putManifest(repository: string, reference: string, manifest: TestManifest): Promise<Answer> {
    return this.send('PUT', `/v2/${repository}/manifests/${reference}`, manifest.body, { 'Content-Type': manifest.mediaType });
  }

  getManifest(repository: string, reference: string): Promise<Answer> {
    return this.send('GET', `/v2/${repository}/manifests/${reference}`, undefined, { Accept: '*/*' });
  }

  deleteManifest(repository: string, reference: string): Promise<Answer> {
    return this.send('DELETE', `/v2/${repository}/manifests/${reference}`);
  }

  /** Uploads an image's blobs and pushes its manifest under `reference`. */
  async pushImage(repository: string, reference: string, manifest: TestManifest, blobs: TestBlob[]): Promise<Answer> {
    for (const blob of blobs) {
      const up = await this.uploadBlob(repository, blob);
      if (up.status !== 201) return up;
    }
    return this.putManifest(repository, reference, manifest);
  }
}
