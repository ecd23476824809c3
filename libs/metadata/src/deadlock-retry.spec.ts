import { createThrowawayDatabase } from '@lading/testing';
import { Database, PG_ERRORS, SqlExecutor, sqlState, transactionRetryingDeadlocks } from './database';
import { createPgDatabase } from './pg-adapter';

/** Resolves when `open` is called: lets two transactions take their first locks before either takes its second. */
function gate(): { open(): void; passed: Promise<void> } {
  let open!: () => void;
  const passed = new Promise<void>((resolve) => (open = resolve));
  return { open, passed };
}

describe('transactions retried after a deadlock, on a real PostgreSQL', () => {
  let fresh: { url: string; drop(): Promise<void> };
  let db: Database;

  beforeAll(async () => {
    fresh = await createThrowawayDatabase('deadlock');
    db = await createPgDatabase({ url: fresh.url, poolSize: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 2000 });
    // Postgres looks for a deadlock after deadlock_timeout (1 s by default) and ends one of the transactions in it.
    await db.exec(`CREATE TABLE rows_to_lock (id int PRIMARY KEY, touched_by text[] NOT NULL DEFAULT '{}');
                   INSERT INTO rows_to_lock (id) VALUES (1), (2);`);
  });
  afterAll(async () => {
    await db.close();
    await fresh.drop();
  });

  /** Locks `first`, waits until the other transaction holds its first row, then updates `second`. */
  function crossing(name: string, first: number, second: number, mine: ReturnType<typeof gate>, theirs: ReturnType<typeof gate>, attempts: string[]) {
    return async (tx: SqlExecutor): Promise<string> => {
      attempts.push(name);
      await tx.query(`UPDATE rows_to_lock SET touched_by = touched_by || $2::text WHERE id = $1`, [first, name]);
      mine.open();
      await theirs.passed;
      await tx.query(`UPDATE rows_to_lock SET touched_by = touched_by || $2::text WHERE id = $1`, [second, name]);
      return name;
    };
  }

  it('runs the deadlock victim again so that both transactions commit, each exactly once', async () => {
    await db.query(`UPDATE rows_to_lock SET touched_by = '{}'`);
    const a = gate();
    const b = gate();
    const attempts: string[] = [];
    const results = await Promise.all([
      transactionRetryingDeadlocks(db, crossing('a', 1, 2, a, b, attempts)),
      transactionRetryingDeadlocks(db, crossing('b', 2, 1, b, a, attempts)),
    ]);
    expect(results).toEqual(['a', 'b']);
    // One of the two was Postgres' victim and ran a second time; its first attempt left nothing behind.
    expect(attempts).toHaveLength(3);
    const rows = await db.query<{ id: number; touched_by: string[] }>(`SELECT id, touched_by FROM rows_to_lock ORDER BY id`);
    for (const row of rows.rows) expect([...row.touched_by].sort()).toEqual(['a', 'b']);
  });

  it('answers the deadlock once the retries are spent', async () => {
    const a = gate();
    const b = gate();
    const attempts: string[] = [];
    const outcomes = await Promise.allSettled([
      transactionRetryingDeadlocks(db, crossing('a', 1, 2, a, b, attempts), 0),
      transactionRetryingDeadlocks(db, crossing('b', 2, 1, b, a, attempts), 0),
    ]);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failures).toHaveLength(1);
    expect(sqlState(failures[0].reason)).toBe(PG_ERRORS.deadlockDetected);
    expect(attempts).toHaveLength(2);
  });

  it('does not run a transaction again for any other error', async () => {
    let runs = 0;
    await expect(
      transactionRetryingDeadlocks(db, async (tx) => {
        runs++;
        await tx.query(`INSERT INTO rows_to_lock (id) VALUES (1)`);
      }),
    ).rejects.toMatchObject({ code: PG_ERRORS.uniqueViolation });
    expect(runs).toBe(1);
  });
});
