/**
 * Test support: a throwaway, migrated database on the real PostgreSQL of `tools/infra`, so that the webhook tests
 * run on the server production uses (row locks, SKIP LOCKED, several pools) and never see each other's rows.
 */
import { EVENTS_MIGRATIONS } from '@lading/events';
import { Database, METADATA_MIGRATIONS, createPgDatabase, migrate } from '@lading/metadata';
import { createThrowawayDatabase } from '@lading/testing';
import { WEBHOOKS_MIGRATIONS } from '../src/migrations';

/** A fresh database and a way to drop it. */
export interface FreshPostgres {
  url: string;
  db: Database;
  /** Opens another pool on the same database (another process, in effect). */
  openPool(poolSize?: number): Promise<Database>;
  drop(): Promise<void>;
}

/** Creates and migrates a database named `lading_<label>_<random>` on the tools/infra server. */
export async function freshPostgres(label: string, poolSize = 8): Promise<FreshPostgres> {
  const database = await createThrowawayDatabase(label);
  const { url } = database;
  const open = (size: number) => createPgDatabase({ url, poolSize: size, statementTimeoutMs: 30_000, connectTimeoutMs: 5_000 });
  const db = await open(poolSize);
  await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS, WEBHOOKS_MIGRATIONS]);
  const pools: Database[] = [db];
  return {
    url,
    db,
    async openPool(size = 4) {
      const pool = await open(size);
      pools.push(pool);
      return pool;
    },
    async drop() {
      for (const pool of pools) await pool.close().catch(() => undefined);
      await database.drop();
    },
  };
}
