/** Real dependencies for service tests: an in-memory PGlite with the real migrations and a temporary filesystem store. */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LadingConfig, LadingConfigInput, parseConfig } from '@lading/config';
import { AUDIT_PARTITION_KEY, EventBus, OutboxContext, createInProcessBus, createOutboxRelay, createUuidV7Generator } from '@lading/events';
import { Database, createPgliteDatabase, migrate } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { BlobStore, createFilesystemBlobStore } from '@lading/storage';
import { Logger, createLogger } from '@lading/telemetry';

/** Everything a service factory needs, made of real parts, plus a way to dispose of them. */
export interface TestDeps {
  db: Database;
  store: BlobStore;
  config: LadingConfig;
  logger: Logger;
  events: OutboxContext;
  bus: EventBus;
  storageRoot: string;
  /** Publishes pending outbox rows to `bus` now. */
  flushEvents(): Promise<number>;
  close(): Promise<void>;
}

/** Builds test dependencies; `overrides` states only what a test changes from the defaults. */
export async function createTestDeps(overrides: LadingConfigInput = {}): Promise<TestDeps> {
  const storageRoot = await mkdtemp(path.join(tmpdir(), 'lading-test-'));
  const config = parseConfig({ ...overrides, data: { dir: storageRoot }, log: { level: 'silent', access: false } });
  const db = await createPgliteDatabase();
  await migrate(db, REGISTRY_MIGRATIONS);
  const store = await createFilesystemBlobStore(path.join(storageRoot, 'blobs'));
  const bus = createInProcessBus();
  const relay = createOutboxRelay({ db, bus });
  return {
    db,
    store,
    config,
    logger: createLogger({ service: 'test', level: 'silent' }),
    events: { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() },
    bus,
    storageRoot,
    flushEvents: () => relay.drain(),
    async close() {
      await bus.close();
      await db.close();
      await rm(storageRoot, { recursive: true, force: true });
    },
  };
}

const SNAPSHOT_TABLES = [
  'repositories',
  'blobs',
  'repository_blobs',
  'manifests',
  'manifest_blob_references',
  'manifest_children',
  'tags',
  'uploads',
  'outbox',
  'gc_blob_review_queue',
  'gc_manifest_review_queue',
];

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(root, full)));
    else out.push(`${path.relative(root, full)}:${(await stat(full)).size}`);
  }
  return out.sort();
}

/**
 * A fingerprint of everything the registry stores: every row of every table and every file with its size.
 * Two equal snapshots mean a request changed nothing. The audit trail's outbox rows are left out: it records
 * attempts (a refused request's login too), not state a request changes.
 */
export async function snapshotState(db: Database, storageRoot: string): Promise<{ tables: Record<string, string>; files: string[] }> {
  const tables: Record<string, string> = {};
  for (const table of SNAPSHOT_TABLES) {
    const rows = await db.query(`SELECT * FROM ${table} ${table === 'outbox' ? `WHERE repository <> '${AUDIT_PARTITION_KEY}'` : ''} ORDER BY 1`);
    tables[table] = createHash('sha256').update(JSON.stringify(rows.rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).digest('hex') + `:${rows.rows.length}`;
  }
  return { tables, files: await listFiles(storageRoot) };
}
