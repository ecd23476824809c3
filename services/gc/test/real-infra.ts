/**
 * Real Postgres (and MinIO) for the collector's race tests and soak, isolated from everything else on the same
 * servers: a database of their own (created from the `tools/infra` settings, dropped at the end) and a bucket of
 * their own (emptied at the start and the end). Log lines at warn and above are kept for the figures.
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import * as Minio from 'minio';
import { LadingConfig, LadingConfigInput, parseConfig } from '@lading/config';
import { OutboxContext, createUuidV7Generator } from '@lading/events';
import { Database, createPgDatabase, migrate } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { BlobStore, createFilesystemBlobStore, createS3BlobStore } from '@lading/storage';
import { Logger, createLogger } from '@lading/telemetry';
import { InfraSettings, createThrowawayDatabase, infraSettings } from '@lading/testing';

/** A logged line at warn level or above. */
export interface LoggedProblem {
  level: number;
  msg: string;
  code?: string;
  service?: string;
}

/** The parts of a test registry on real servers. */
export interface RealParts {
  db: Database;
  store: BlobStore;
  config: LadingConfig;
  logger: Logger;
  events: OutboxContext;
  databaseName: string;
  /** Opens another connection pool to the same database (a second collector process, the checker). */
  openPool(poolSize: number): Promise<Database>;
  /** Warn-and-above log lines seen so far. */
  problems: LoggedProblem[];
  /** The bucket's client and name (s3 storage only). */
  s3: { client: Minio.Client; bucket: string } | null;
  close(): Promise<void>;
}

/** What to open. */
export interface RealPartsOptions {
  /** A short name for the database and bucket (`lading_gc_<name>_<pid>`, `lading-gc-<name>`). */
  name: string;
  storage: 'filesystem' | 's3';
  /** The filesystem store's root (filesystem storage only). */
  storageRoot?: string;
  poolSize: number;
  config: LadingConfigInput;
}

async function emptyBucket(client: Minio.Client, bucket: string): Promise<void> {
  if (!(await client.bucketExists(bucket))) return;
  const names: string[] = [];
  for await (const item of client.listObjectsV2(bucket, '', true) as AsyncIterable<Minio.BucketItem>) if (item.name) names.push(item.name);
  for (let i = 0; i < names.length; i += 1000) await client.removeObjects(bucket, names.slice(i, i + 1000));
}

/**
 * The servers to use: those of `tools/infra` (`.infra/env`), or those named by an env file of the same format in
 * GC_TEST_INFRA_ENV (for a machine whose default ports are taken by another checkout's infra).
 */
export function gcInfraSettings(): Pick<InfraSettings, 'databaseUrl' | 'storage'> {
  const file = process.env.GC_TEST_INFRA_ENV;
  if (!file) return infraSettings();
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return {
    databaseUrl: env.LADING_DATABASE_URL,
    storage: {
      endpoint: env.LADING_STORAGE_ENDPOINT,
      accessKey: env.LADING_STORAGE_ACCESSKEY,
      secretKey: env.LADING_STORAGE_SECRETKEY,
      bucket: env.LADING_STORAGE_BUCKET ?? 'lading',
      region: env.LADING_STORAGE_REGION ?? 'us-east-1',
    },
  };
}

/** Opens a fresh database (migrated) and store on the servers of `tools/infra`. */
export async function openRealParts(options: RealPartsOptions): Promise<RealParts> {
  const infra = gcInfraSettings();
  const database = await createThrowawayDatabase('gc', { serverUrl: infra.databaseUrl, name: `lading_gc_${options.name}_${process.pid}` });
  const { url } = database;
  const problems: LoggedProblem[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        try {
          const entry = JSON.parse(line) as { level: number; msg: string; service?: string; err?: { code?: string; sqlState?: string } };
          if (entry.level >= 40) problems.push({ level: entry.level, msg: entry.msg, code: entry.err?.sqlState ?? entry.err?.code, service: entry.service });
        } catch {
          // not a log line
        }
      }
      cb();
    },
  });
  const config = parseConfig({ ...options.config, log: { level: 'warn', access: false } });
  const logger = createLogger({ service: `gc-${options.name}`, level: 'warn', destination: sink });
  const openPool = (poolSize: number) =>
    createPgDatabase({ url, poolSize, statementTimeoutMs: 30_000, connectTimeoutMs: 5_000, onIdleError: (err) => logger.warn({ err }, 'idle connection failed') });
  const db = await openPool(options.poolSize);
  await migrate(db, REGISTRY_MIGRATIONS);
  let store: BlobStore;
  let s3: RealParts['s3'] = null;
  if (options.storage === 's3') {
    const bucket = `lading-gc-${options.name}`;
    const endpoint = new URL(infra.storage.endpoint);
    const client = new Minio.Client({
      endPoint: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      useSSL: endpoint.protocol === 'https:',
      accessKey: infra.storage.accessKey,
      secretKey: infra.storage.secretKey,
      region: infra.storage.region,
      pathStyle: true,
    });
    await emptyBucket(client, bucket);
    store = await createS3BlobStore({ ...infra.storage, bucket });
    s3 = { client, bucket };
  } else {
    if (!options.storageRoot) throw new Error('filesystem storage needs storageRoot');
    store = await createFilesystemBlobStore(options.storageRoot);
  }
  const pools: Database[] = [];
  return {
    db,
    store,
    config,
    logger,
    events: { source: `//test/lading/gc-${options.name}`, ids: createUuidV7Generator(), now: () => new Date() },
    databaseName: database.name,
    problems,
    s3,
    async openPool(poolSize) {
      const pool = await openPool(poolSize);
      pools.push(pool);
      return pool;
    },
    async close() {
      for (const pool of pools) await pool.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      if (s3) await emptyBucket(s3.client, s3.bucket).catch(() => undefined);
      await database.drop().catch(() => undefined);
    },
  };
}

/** Deadlocks Postgres has counted in a database (pg_stat_database; flushed by backends within about a second). */
export async function deadlocksOf(db: Database, databaseName: string): Promise<number> {
  const r = await db.query<{ deadlocks: number }>(`SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, [databaseName]);
  return Number(r.rows[0]?.deadlocks ?? 0);
}
