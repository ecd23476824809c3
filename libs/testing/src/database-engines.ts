/**
 * The two database engines Lading runs on, for specs that must hold on both: PGlite (the embedded registry's) and a
 * database of its own on the real PostgreSQL of `tools/infra`, opened with a pool of connections as the distributed
 * replicas' are.
 */
import { type Database, createPgDatabase, createPgliteDatabase } from '@lading/metadata';
import { createThrowawayDatabase } from './throwaway-database';

/** Opens a fresh, empty database of one engine (the caller migrates it), and how to drop it. */
export type OpenTestDatabase = () => Promise<{ db: Database; drop(): Promise<void> }>;

/**
 * `describe.each` rows, `[engine name, open]`: PGlite, then PostgreSQL (`lading_<label>_<random>`, a pool of
 * `poolSize` connections), so that one suite of checks runs on both engines.
 */
export function databaseEngines(label: string, poolSize = 8): Array<[string, OpenTestDatabase]> {
  return [
    ['PGlite', async () => ({ db: (await createPgliteDatabase()) as Database, drop: async () => undefined })],
    [
      'PostgreSQL',
      async () => {
        const fresh = await createThrowawayDatabase(label);
        return { db: await createPgDatabase({ url: fresh.url, poolSize, statementTimeoutMs: 5000, connectTimeoutMs: 2000 }), drop: fresh.drop };
      },
    ],
  ];
}
