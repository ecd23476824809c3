/** The PGlite adapter: Postgres compiled to WebAssembly, in-process, for the embedded mode and fast tests. */
import { mkdir } from 'node:fs/promises';
import { PGlite, types } from '@electric-sql/pglite';
import type { Database, QueryResult, SqlExecutor } from './database';

const parsers = {
  [types.INT8]: (value: string) => Number(value),
};

interface PgliteQueryable {
  query<R>(sql: string, params?: unknown[], options?: unknown): Promise<{ rows: R[]; affectedRows?: number }>;
}

function executor(target: PgliteQueryable): SqlExecutor {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      const result = await target.query<R>(sql, params, { parsers });
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  };
}

/** Opens (creating if needed) a PGlite database in `dataDir`, or in memory when `dataDir` is undefined. */
export async function createPgliteDatabase(dataDir?: string): Promise<Database> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const db = new PGlite(dataDir);
  await db.waitReady;
  const root = executor(db as unknown as PgliteQueryable);
  return {
    driverName: 'pglite',
    query: root.query,
    transaction: (work) => db.transaction((tx) => work(executor(tx as unknown as PgliteQueryable))),
    exec: async (sql) => {
      await db.exec(sql);
    },
    close: () => db.close(),
  };
}
