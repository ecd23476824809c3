/**
 * An embedded registry on loopback with a registry client of it, for the specs that pull through it from a real
 * upstream (pull-through, mirror, eviction, stored proxies), and the little they all do to an upstream: push an
 * image, read a streamed body.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RegistryClient, createRegistryClient } from '@lading/client';
import { type LadingConfigInput, parseConfig } from '@lading/config';
import { type Logger, type RegistryMetrics, createLogger } from '@lading/telemetry';
import type { TestBlob, TestManifest } from '@lading/testing';
import { type EmbeddedRegistry, createEmbeddedRegistry } from '../src/embedded-registry';

/** An embedded registry listening on loopback, with a client of it. */
export interface ServedRegistry {
  /** Its data directory (blobs under `blobs/`, scratch uploads under `blobs/uploads/`). */
  dir: string;
  registry: EmbeddedRegistry;
  client: RegistryClient;
  url: string;
  /** Stops the client, the server and the registry, and deletes the data directory. */
  close(): Promise<void>;
}

/** What a served registry is started with besides its configuration. */
export interface ServeOptions {
  /** Silent when not given; the configuration's `log` is then silent too unless it says otherwise. */
  logger?: Logger;
  metrics?: RegistryMetrics;
  /** The port on 127.0.0.1 (e.g. one that freePort of @lading/testing handed out, for a configuration that must name its own URL); any free one when not given. */
  port?: number;
}

/** Starts an embedded registry with `config` (its data in a fresh temp directory) on 127.0.0.1. */
export async function serveEmbeddedRegistry(config: LadingConfigInput, options: ServeOptions = {}): Promise<ServedRegistry> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lading-served-'));
  const logger = options.logger ?? createLogger({ service: 'test', level: 'silent' });
  let registry: EmbeddedRegistry;
  try {
    registry = await createEmbeddedRegistry(parseConfig({ log: { level: 'silent', access: false }, ...config, data: { dir } }), logger, { metrics: options.metrics });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const server: Server = registry.app.listen(options.port ?? 0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createRegistryClient({ url, timeoutMs: 20_000 });
  return {
    dir,
    registry,
    client,
    url,
    async close() {
      await client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await registry.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Pushes an image (its blobs unless held, then its manifest under `reference`) and resolves with the manifest PUT's
 * status. Blobs go up as POST then PUT: Distribution v3 has no single-request upload.
 */
export async function pushImage(client: RegistryClient, repository: string, reference: string, manifest: TestManifest, blobs: readonly TestBlob[]): Promise<number> {
  for (const blob of blobs) {
    if ((await client.headBlob(repository, blob.digest)).status !== 200) await client.pushBlobStream(repository, blob.digest, blob.size, blob.data);
  }
  return (await client.putManifest(repository, reference, { mediaType: manifest.mediaType, body: manifest.body })).status;
}

/** A streamed body, whole. */
export async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}
