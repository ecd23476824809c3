/**
 * The registry's schema: every lib's migration set, applied in one sequence on PGlite and on a real PostgreSQL, and a
 * database migrated before the migrations moved beside their owners (every file recorded, from one directory) runs
 * nothing. How sets are ordered and refused is specified in libs/metadata/src/migrate.spec.ts.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Database, createPgDatabase, createPgliteDatabase, migrate, planMigrations } from '@lading/metadata';
import { createThrowawayDatabase } from '@lading/testing';
import { REGISTRY_MIGRATIONS } from './migrations';

/** The migrations every database had before they moved beside their owners, in the order they ran then. */
const SHIPPED_BEFORE_THE_MOVE = ['0001_registry.sql', '0002_auth.sql', '0003_gc.sql', '0004_events.sql', '0005_webhooks.sql', '0006_auth_hardening.sql'];

const recorded = async (db: Database) => (await db.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name`)).rows.map((r) => r.name);

describe('the registry migrations', () => {
  it('apply every set in one sequence by number on PGlite, once, the outbox columns of libs/events included', async () => {
    const db = await createPgliteDatabase();
    try {
      const applied = await migrate(db, REGISTRY_MIGRATIONS);
      expect(applied.slice(0, SHIPPED_BEFORE_THE_MOVE.length)).toEqual(SHIPPED_BEFORE_THE_MOVE);
      expect(applied).toEqual([...applied].sort());
      expect(await migrate(db, REGISTRY_MIGRATIONS)).toEqual([]);
      const columns = await db.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_name = 'outbox' AND column_name IN ('parked_at', 'repository_hash') ORDER BY 1`);
      expect(columns.rows.map((r) => r.column_name)).toEqual(['parked_at', 'repository_hash']);
    } finally {
      await db.close();
    }
  });

  it('run nothing on a database migrated when every migration lived in libs/metadata/migrations', async () => {
    const oneDirectory = await mkdtemp(path.join(tmpdir(), 'lading-old-migrations-'));
    const db = await createPgliteDatabase();
    try {
      for (const m of await planMigrations(REGISTRY_MIGRATIONS)) await copyFile(m.file, path.join(oneDirectory, m.name));
      expect(await migrate(db, [{ owner: 'metadata', dir: oneDirectory }])).toEqual(await recordedNames());
      expect((await recorded(db)).slice(0, SHIPPED_BEFORE_THE_MOVE.length)).toEqual(SHIPPED_BEFORE_THE_MOVE);
      expect(await migrate(db, REGISTRY_MIGRATIONS)).toEqual([]);
    } finally {
      await db.close();
      await rm(oneDirectory, { recursive: true, force: true });
    }
  });

  /** The names of every registry migration, in order. */
  async function recordedNames(): Promise<string[]> {
    return (await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name);
  }

  describe('on a real PostgreSQL', () => {
    let fresh: { url: string; drop(): Promise<void> };
    let db: Database;

    beforeAll(async () => {
      fresh = await createThrowawayDatabase('test');
      db = await createPgDatabase({ url: fresh.url, poolSize: 4, statementTimeoutMs: 5000, connectTimeoutMs: 2000 });
    });
    afterAll(async () => {
      await db.close();
      await fresh.drop();
    });

    // Moved from libs/metadata/src/pg-adapter.spec.ts with the migrations: `shipped` is now every set's files.
    it('applies the same migrations as PGlite, once', async () => {
      const shipped = (await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name).sort();
      expect(shipped.length).toBeGreaterThanOrEqual(5);
      expect(await migrate(db, REGISTRY_MIGRATIONS)).toEqual(shipped);
      expect(await migrate(db, REGISTRY_MIGRATIONS)).toEqual([]);
    });
  });
});
