/**
 * The schema version on a real PostgreSQL, each test on a fresh database of its own: replicas that start together on
 * an empty database apply each migration once between them; a process refuses a database a newer release migrated;
 * in the verify mode it refuses an older schema, and waits for a migration in progress instead of racing it.
 * How versions are compared and refused is specified on PGlite in libs/metadata/src/migrate.spec.ts.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { LadingConfig, parseConfig } from '@lading/config';
import { Database, MIGRATION_LOCK_KEY, SchemaVersionError, applyMigrations, createPgDatabase, planMigrations, verifySchema } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { ThrowawayDatabase, createThrowawayDatabase } from '@lading/testing';
import { REGISTRY_MIGRATIONS } from './migrations';
import { prepareSchema } from './parts';

const logger = createLogger({ service: 'test', level: 'silent' });

/** How many processes start at once in the race. */
const REPLICAS = 8;

describe('the schema version on PostgreSQL', () => {
  let fresh: ThrowawayDatabase;
  const opened: Database[] = [];
  let names: string[];

  /** A pool of its own on the test's database, as a separate process would have. */
  async function connect(): Promise<Database> {
    const db = await createPgDatabase({ url: fresh.url, poolSize: 2, statementTimeoutMs: 30_000, connectTimeoutMs: 5000 });
    opened.push(db);
    return db;
  }

  const configFor = (migrations: 'auto' | 'verify'): LadingConfig =>
    parseConfig({ database: { driver: 'postgres', url: fresh.url, migrations }, log: { level: 'silent', access: false } });

  const recorded = async (db: Database) => (await db.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name);

  beforeAll(async () => {
    names = (await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name);
  });
  beforeEach(async () => {
    fresh = await createThrowawayDatabase('schema');
  });
  afterEach(async () => {
    for (const db of opened.splice(0)) await db.close();
    await fresh.drop();
  });

  it(`lets ${REPLICAS} processes migrate an empty database at once: each migration applied by exactly one, none failing`, async () => {
    const replicas = await Promise.all(Array.from({ length: REPLICAS }, () => connect()));
    const settled = await Promise.allSettled(replicas.map((db) => applyMigrations(db, REGISTRY_MIGRATIONS)));
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    const reports = settled.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<typeof applyMigrations>>>).value);
    // Every migration appears in exactly one process's report: the others waited for the lock and found it done.
    expect(reports.flatMap((r) => r.applied).sort()).toEqual([...names].sort());
    expect(reports.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(reports.filter((r) => r.applied.length === 0).map((r) => r.from)).toEqual(Array(REPLICAS - 1).fill(reports[0].to));
    expect(await recorded(replicas[0])).toEqual([...names].sort());
    expect(await verifySchema(replicas[0], REGISTRY_MIGRATIONS)).toMatchObject({ pending: [], unknown: [] });
  });

  it('refuses to start on a database a newer release migrated, in either mode, naming both versions', async () => {
    const db = await connect();
    await applyMigrations(db, REGISTRY_MIGRATIONS);
    await db.query(`INSERT INTO schema_migrations (name) VALUES ('9999_from_the_future.sql')`);
    const { codeVersion } = await verifySchema(db, REGISTRY_MIGRATIONS).catch((err: SchemaVersionError) => err.status);
    for (const mode of ['auto', 'verify'] as const) {
      const refusal = prepareSchema(db, configFor(mode), logger);
      await expect(refusal).rejects.toBeInstanceOf(SchemaVersionError);
      await expect(refusal).rejects.toThrow(
        `the database's schema is version 9999, newer than this Lading's schema version ${codeVersion}: it has migrations this release does not know (9999_from_the_future.sql), applied by a newer release.`,
      );
    }
    expect(await recorded(db)).toEqual([...names, '9999_from_the_future.sql'].sort());
  });

  it('in the verify mode refuses an older schema naming lading-migrate, changes nothing, and starts once it is migrated', async () => {
    const db = await connect();
    // The previous release: every migration but the last, in one directory.
    const previous = await mkdtemp(path.join(tmpdir(), 'lading-previous-schema-'));
    try {
      for (const m of (await planMigrations(REGISTRY_MIGRATIONS)).slice(0, -1)) await copyFile(m.file, path.join(previous, m.name));
      await applyMigrations(db, [{ owner: 'previous', dir: previous }]);
    } finally {
      await rm(previous, { recursive: true, force: true });
    }
    const verify = configFor('verify');
    await expect(prepareSchema(db, verify, logger)).rejects.toThrow(/older than this Lading's schema version \d+ \(1 migration pending: .*\); database\.migrations is verify, so this process does not migrate: run lading-migrate/);
    expect(await recorded(db)).toEqual(names.slice(0, -1).sort());
    await prepareSchema(db, configFor('auto'), logger);
    await expect(prepareSchema(db, verify, logger)).resolves.toBeUndefined();
  });

  it('in the verify mode waits for a migration in progress and sees the schema it commits', async () => {
    const db = await connect();
    const holder = new pg.Client({ connectionString: fresh.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      const verified = verifySchema(db, REGISTRY_MIGRATIONS).then(
        (status) => ({ status }),
        (err: unknown) => ({ err }),
      );
      await untilWaitingForTheMigrationLock(holder);
      // What a migrator commits: here only the record of every migration, which is all the check reads.
      await holder.query(`CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      await holder.query(`INSERT INTO schema_migrations (name) SELECT unnest($1::text[])`, [names]);
      await holder.query('COMMIT');
      expect(await verified).toEqual({ status: expect.objectContaining({ pending: [], unknown: [] }) });
    } finally {
      await holder.end();
    }
  });
});

/** Resolves once another session waits for the migration lock that `holder` holds (pg_locks shows it not granted). */
async function untilWaitingForTheMigrationLock(holder: pg.Client): Promise<void> {
  for (;;) {
    const waiting = await holder.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`, [MIGRATION_LOCK_KEY]);
    if (waiting.rowCount) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
