/**
 * An embedded registry (every service, the in-process bus and the in-process webhook worker) on a fresh database of
 * the real PostgreSQL of tools/infra, listening on 127.0.0.1, with a small client to push images and call the
 * admin API. The webhook end-to-end test and the fault runs use it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRegistryClient } from '@lading/client';
import { LadingConfigInput, parseConfig } from '@lading/config';
import { EmbeddedRegistry, createEmbeddedRegistry } from '@lading/embedded';
import { Logger, createLogger } from '@lading/telemetry';
import { startTestRegistryMetrics } from '@lading/telemetry/testing';
import type { TestManifest } from '@lading/testing';
import { FreshPostgres, freshPostgres } from '@lading/webhooks/test/fresh-postgres';
import { pushImage } from './push-image';

/** The first admin of the registry under test. */
export const ADMIN = { user: 'root', password: 'root-password-7' };

/** A running registry and its client. */
export interface RegistryOnPostgres {
  registry: EmbeddedRegistry;
  pg: FreshPostgres;
  url: string;
  /** Pushes a fresh image (two blobs and a manifest) by tag; resolves with the manifest. */
  pushImage(repository: string, tag: string): Promise<TestManifest>;
  /** Calls the admin API with the admin's credentials; resolves with status and JSON body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the admin API answers with bodies of many shapes
  admin(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** The registry's metrics in the Prometheus text format, as its debug port would serve them. */
  scrapeMetrics(): Promise<string>;
  close(): Promise<void>;
}

/** Starts the registry; `config` states what the test changes. */
export async function startRegistryOnPostgres(label: string, config: LadingConfigInput, logger: Logger = createLogger({ service: 'test', level: 'silent' })): Promise<RegistryOnPostgres> {
  const pg = await freshPostgres(label);
  const dir = await mkdtemp(path.join(tmpdir(), `lading-${label}-`));
  const telemetry = startTestRegistryMetrics();
  const registry = await createEmbeddedRegistry(
    parseConfig({ ...config, data: { dir }, database: { driver: 'postgres', url: pg.url }, admin: ADMIN, log: { level: 'silent', access: false } }),
    logger,
    { metrics: telemetry.metrics },
  );
  const server: Server = registry.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = createRegistryClient({ url });
  const authorization = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;

  return {
    registry,
    pg,
    url,
    pushImage: (repository, tag) => pushImage(client, repository, tag),
    async admin(method, apiPath, body) {
      const res = await fetch(`${url}/admin/v1${apiPath}`, {
        method,
        headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    scrapeMetrics: () => telemetry.scrape(),
    async close() {
      await client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await registry.close();
      await telemetry.shutdown();
      await pg.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
