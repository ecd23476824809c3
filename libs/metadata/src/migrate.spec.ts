/**
 * Migration sets on PGlite, with sets written for the test in temporary directories: their files run in one sequence
 * by number whichever set holds them, each recorded by its file name; a number taken twice (or a file without one)
 * is refused before anything runs. The schema version (the highest number) is checked: a database that recorded a
 * migration the sets do not have is refused before anything runs, and `verifySchema` refuses an older one too. The
 * registry's real sets are applied in libs/runtime/src/migrations.spec.ts, and on a real PostgreSQL (concurrent
 * migrators, the verify mode) in libs/runtime/src/schema-version.spec.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Database } from './database';
import { MigrationSet, applyMigrations, migrate, planMigrations, verifySchema } from './migrate';
import { SchemaVersionError } from './schema-version';
import { createPgliteDatabase } from './pglite-adapter';

describe('migrate with several migration sets', () => {
  let root: string;
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-migrations-'));
    await db.query(`DROP TABLE IF EXISTS schema_migrations, migration_log`);
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  /** A set named `owner` holding the given files; each one logs its name into migration_log when it runs. */
  async function set(owner: string, files: string[]): Promise<MigrationSet> {
    const dir = await mkdtemp(path.join(root, `${owner}-`));
    for (const name of files) {
      await writeFile(
        path.join(dir, name),
        `-- ${owner}'s ${name}\nCREATE TABLE IF NOT EXISTS migration_log (n serial PRIMARY KEY, name text NOT NULL);\nINSERT INTO migration_log (name) VALUES ('${name}');\n`,
      );
    }
    return { owner, dir };
  }

  const ran = async () => (await db.query<{ name: string }>(`SELECT name FROM migration_log ORDER BY n`)).rows.map((r) => r.name);
  const recorded = async () => (await db.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name);

  it('runs the files of every set in one sequence by their numbers, recording each by its file name, once', async () => {
    const sets = [await set('webhooks', ['0005_webhooks.sql']), await set('events', ['0004_events.sql', '0010_later.sql']), await set('metadata', ['0001_registry.sql', '0002_auth.sql', '0006_auth_hardening.sql'])];
    const order = ['0001_registry.sql', '0002_auth.sql', '0004_events.sql', '0005_webhooks.sql', '0006_auth_hardening.sql', '0010_later.sql'];
    expect(await migrate(db, sets)).toEqual(order);
    expect(await ran()).toEqual(order);
    expect(await recorded()).toEqual(order);
    expect(await migrate(db, sets)).toEqual([]);
    expect(await ran()).toEqual(order);
  });

  it('orders by the number, not by the text, and runs a later set file added between earlier ones', async () => {
    const metadata = await set('metadata', ['0001_a.sql', '0003_c.sql']);
    expect(await migrate(db, [metadata])).toEqual(['0001_a.sql', '0003_c.sql']);
    const events = await set('events', ['0002_b.sql', '10_j.sql', '9_i.sql']);
    expect((await planMigrations([metadata, events])).map((m) => `${m.owner}/${m.name}`)).toEqual(['metadata/0001_a.sql', 'events/0002_b.sql', 'metadata/0003_c.sql', 'events/9_i.sql', 'events/10_j.sql']);
    expect(await migrate(db, [metadata, events])).toEqual(['0002_b.sql', '9_i.sql', '10_j.sql']);
  });

  it('refuses a number taken twice across sets, naming both files, before running anything', async () => {
    const sets = [await set('metadata', ['0001_registry.sql', '0004_quotas.sql']), await set('events', ['0004_events.sql'])];
    await expect(migrate(db, sets)).rejects.toThrow('migration number 4 is taken twice: events/0004_events.sql and metadata/0004_quotas.sql; give one of them the next free number');
    expect((await db.query(`SELECT 1 FROM pg_tables WHERE tablename IN ('schema_migrations', 'migration_log')`)).rows).toEqual([]);
  });

  it('refuses a number taken twice within one set, and a file without a number', async () => {
    await expect(migrate(db, [await set('metadata', ['0007_a.sql', '0007_b.sql'])])).rejects.toThrow('migration number 7 is taken twice: metadata/0007_a.sql and metadata/0007_b.sql');
    await expect(migrate(db, [await set('events', ['0001_a.sql', 'outbox.sql'])])).rejects.toThrow('migration events/outbox.sql has no numeric prefix (NNNN_name.sql)');
    expect((await db.query(`SELECT 1 FROM pg_tables WHERE tablename IN ('schema_migrations', 'migration_log')`)).rows).toEqual([]);
  });

  it('runs nothing for a file recorded under its name, whichever set holds it now (a migration moved to its owner)', async () => {
    const before = await set('metadata', ['0001_registry.sql', '0004_events.sql']);
    expect(await migrate(db, [before])).toEqual(['0001_registry.sql', '0004_events.sql']);
    const after = [await set('metadata', ['0001_registry.sql']), await set('events', ['0004_events.sql'])];
    expect(await migrate(db, after)).toEqual([]);
    expect(await ran()).toEqual(['0001_registry.sql', '0004_events.sql']);
  });

  describe('the schema version', () => {
    it('is the highest number of the sets; a run reports the version it found and the one it leaves', async () => {
      const sets = [await set('metadata', ['0001_a.sql', '0003_c.sql']), await set('events', ['0002_b.sql'])];
      expect(await applyMigrations(db, [sets[0]])).toEqual({ from: 0, to: 3, applied: ['0001_a.sql', '0003_c.sql'] });
      expect(await applyMigrations(db, sets)).toEqual({ from: 3, to: 3, applied: ['0002_b.sql'] });
      expect(await applyMigrations(db, sets)).toEqual({ from: 3, to: 3, applied: [] });
    });

    it('refuses a database that recorded a migration the sets do not know (a newer release), before running anything', async () => {
      const newer = await set('metadata', ['0001_a.sql', '0002_b.sql', '0007_later.sql']);
      await migrate(db, [newer]);
      const older = await set('metadata', ['0001_a.sql', '0002_b.sql', '0003_c.sql']);
      const refusal = await applyMigrations(db, [older]).catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(SchemaVersionError);
      expect(refusal).toMatchObject({ mismatch: 'newer', status: { databaseVersion: 7, codeVersion: 3, pending: ['0003_c.sql'], unknown: ['0007_later.sql'] } });
      expect((refusal as Error).message).toBe(
        "the database's schema is version 7, newer than this Lading's schema version 3: it has migrations this release does not know (0007_later.sql), applied by a newer release. Lading does not run on a schema it does not know and cannot downgrade one: run that release or a later one (or restore the backup taken before the upgrade)",
      );
      expect(await ran()).toEqual(['0001_a.sql', '0002_b.sql', '0007_later.sql']);
      expect(await recorded()).toEqual(['0001_a.sql', '0002_b.sql', '0007_later.sql']);
    });

    it('refuses an unknown migration below the version too: the database is not the schema the code knows', async () => {
      await migrate(db, [await set('metadata', ['0001_a.sql', '0002_other.sql'])]);
      const refusal = applyMigrations(db, [await set('metadata', ['0001_a.sql', '0002_b.sql'])]);
      await expect(refusal).rejects.toMatchObject({ mismatch: 'newer', status: { databaseVersion: 2, codeVersion: 2, unknown: ['0002_other.sql'] } });
      await expect(refusal).rejects.toThrow(/^the database's schema \(version 2\) has migrations this Lading \(schema version 2\) does not know \(0002_other\.sql\), applied by another release\. /);
    });

    it('verifies without changing anything: an empty or older schema is refused naming lading-migrate, the same one passes', async () => {
      const sets = [await set('metadata', ['0001_a.sql', '0002_b.sql'])];
      await expect(verifySchema(db, sets)).rejects.toThrow(
        "the database's schema is version 0, older than this Lading's schema version 2 (2 migrations pending: 0001_a.sql, 0002_b.sql); database.migrations is verify, so this process does not migrate: run lading-migrate (node dist/migrate/main.cjs) with the same database settings first",
      );
      expect((await db.query(`SELECT 1 FROM pg_tables WHERE tablename = 'schema_migrations'`)).rows).toEqual([]);
      await migrate(db, [await set('metadata', ['0001_a.sql'])]);
      await expect(verifySchema(db, sets)).rejects.toMatchObject({ mismatch: 'older', status: { databaseVersion: 1, codeVersion: 2, pending: ['0002_b.sql'] } });
      expect(await recorded()).toEqual(['0001_a.sql']);
      await migrate(db, sets);
      expect(await verifySchema(db, sets)).toEqual({ codeVersion: 2, databaseVersion: 2, pending: [], unknown: [] });
      await expect(verifySchema(db, [await set('metadata', ['0001_a.sql'])])).rejects.toMatchObject({ mismatch: 'newer', status: { unknown: ['0002_b.sql'] } });
    });
  });
});
