import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Database } from './database';
import { createPgliteDatabase } from './pglite-adapter';
import { createPgliteMaintenance } from './pglite-maintenance';

interface TableStats {
  n_dead_tup: number;
  n_mod_since_analyze: number;
  vacuum_count: number;
  analyze_count: number;
}

describe('PGlite maintenance', () => {
  let dir: string;
  let db: Database;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-maintenance-'));
    db = await createPgliteDatabase(dir);
    await db.exec(`
      CREATE TABLE churned (id int PRIMARY KEY, body text NOT NULL);
      CREATE TABLE untouched (id int PRIMARY KEY, body text NOT NULL);
      CREATE TABLE also_churned (id int PRIMARY KEY, body text NOT NULL);
    `);
    // untouched is filled and then maintained once, so that only the churn after it counts.
    await db.query(`INSERT INTO untouched SELECT n, repeat('u', 100) FROM generate_series(1, 1000) AS n`);
    await createPgliteMaintenance(db).run();
  });
  afterEach(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The statistics Postgres keeps of `table`, its pending counters flushed first. */
  const stats = async (table: string): Promise<TableStats> => {
    await db.query(`SELECT pg_stat_force_next_flush()`);
    const { rows } = await db.query<TableStats>(`SELECT n_dead_tup, n_mod_since_analyze, vacuum_count, analyze_count FROM pg_stat_user_tables WHERE relname = $1`, [table]);
    return rows[0];
  };

  const churn = async (table: string) => {
    await db.query(`INSERT INTO ${table} SELECT n, repeat('x', 200) FROM generate_series(1, 4000) AS n`);
    await db.query(`DELETE FROM ${table} WHERE id % 4 <> 0`);
  };

  it('vacuums a table with many deleted rows: its dead rows are reclaimed and its free space is reused', async () => {
    await churn('churned');
    const before = await stats('churned');
    expect(before.n_dead_tup).toBe(3000);
    const pagesBefore = (await db.query<{ pages: number }>(`SELECT pg_relation_size('churned') / 8192 AS pages`)).rows[0].pages;

    const run = await createPgliteMaintenance(db).run();

    expect(run.tables.map((t) => t.table)).toContain('public.churned');
    expect(run.tables.find((t) => t.table === 'public.churned')).toMatchObject({ deadRows: 3000 });
    const after = await stats('churned');
    expect(after.n_dead_tup).toBe(0);
    expect(after.vacuum_count).toBe(1);
    // The reclaimed space takes new rows: as many again fit without the table growing.
    await db.query(`INSERT INTO churned SELECT n, repeat('y', 200) FROM generate_series(5001, 7000) AS n`);
    const pagesAfter = (await db.query<{ pages: number }>(`SELECT pg_relation_size('churned') / 8192 AS pages`)).rows[0].pages;
    expect(pagesAfter).toBe(pagesBefore);
  });

  it('skips a table that has not changed since it was last maintained', async () => {
    await churn('churned');
    const before = await stats('untouched');

    const run = await createPgliteMaintenance(db).run();

    expect(run.tables.map((t) => t.table)).toEqual(['public.churned']);
    expect(await stats('untouched')).toEqual(before);
  });

  it('gives the planner statistics: row estimates and per-column statistics appear', async () => {
    const planner = async () => {
      const reltuples = (await db.query<{ reltuples: number }>(`SELECT reltuples FROM pg_class WHERE relname = 'churned'`)).rows[0].reltuples;
      const columns = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stats WHERE tablename = 'churned'`)).rows[0].n;
      return { reltuples, columns };
    };
    await churn('churned');
    // Never vacuumed nor analyzed: Postgres does not know the table's size and has no column statistics.
    expect(await planner()).toEqual({ reltuples: -1, columns: 0 });

    await createPgliteMaintenance(db).run();

    expect(await planner()).toEqual({ reltuples: 1000, columns: 2 });
    expect((await stats('churned')).analyze_count).toBe(1);
  });

  it('finishes the table it is vacuuming when stopped mid-run, and vacuums no other', async () => {
    await churn('churned');
    await churn('also_churned');
    const stopping = new AbortController();
    let vacuumsSeen = 0;
    let stopped: Promise<TableStats> | undefined;
    // The real database, watched: the stop is asked for while the first VACUUM is in flight.
    const watched: Database = {
      ...db,
      query: <R>(sql: string, params?: unknown[]) => {
        const result = db.query<R>(sql, params);
        if (sql.startsWith('VACUUM')) {
          vacuumsSeen++;
          stopping.abort();
          // Asked for after the VACUUM was queued: it runs first, as the adapter runs statements in order.
          stopped = stats(sql.includes('also_churned') ? 'also_churned' : 'churned');
        }
        return result;
      },
    };

    const run = await createPgliteMaintenance(watched).run(stopping.signal);

    expect(vacuumsSeen).toBe(1);
    expect(run.tables).toHaveLength(1);
    expect(run.skippedByStop).toBe(1);
    // The running table's VACUUM completed (its counters were read after it), the other is still due.
    expect((await stopped)?.vacuum_count).toBe(1);
    const other = run.tables[0].table === 'public.churned' ? 'also_churned' : 'churned';
    expect(await stats(other)).toMatchObject({ n_dead_tup: 3000, vacuum_count: 0 });
  });

  it('runs nothing when stopped before it starts', async () => {
    await churn('churned');
    const stopping = new AbortController();
    stopping.abort();

    expect(await createPgliteMaintenance(db).run(stopping.signal)).toEqual({ tables: [], skippedByStop: 0, ms: 0 });
    expect((await stats('churned')).vacuum_count).toBe(0);
  });
});
