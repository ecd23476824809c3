/**
 * The maintenance loop of the embedded database on a hand-driven sleep: it starts on PGlite and not on PostgreSQL nor
 * with an interval of 0s, a run vacuums what churned and logs it, and a stop during a run awaits the table being
 * vacuumed and vacuums no other. What a run chooses is specified in libs/metadata (pglite-maintenance.spec.ts).
 */
import { type LadingConfig, parseConfig } from '@lading/config';
import { type Database, createPgliteDatabase } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import { databaseEngines } from '@lading/testing';
import { startDatabaseMaintenance } from './database-maintenance';
import type { InterruptibleSleep } from './polling-loop';

/** A sleep the test ends by hand; `asleep()` resolves once the loop is sleeping (again). */
function manualSleep() {
  let pending: (() => void) | null = null;
  let sleepers: Array<() => void> = [];
  const sleep: InterruptibleSleep = (_ms, signal) =>
    new Promise((resolve) => {
      const done = () => {
        pending = null;
        resolve();
      };
      if (signal.aborted) return done();
      pending = done;
      signal.addEventListener('abort', done, { once: true });
      for (const wake of sleepers) wake();
      sleepers = [];
    });
  return {
    sleep,
    asleep: () => (pending ? Promise.resolve() : new Promise<void>((resolve) => sleepers.push(resolve))),
    /** Ends the sleep in progress as if its time had passed. */
    elapse() {
      if (!pending) throw new Error('nothing sleeps');
      pending();
    },
  };
}

/** A logger that keeps its debug lines. */
function recordingLogger() {
  const debug: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const logger = {
    debug: (fields: Record<string, unknown>, msg: string) => debug.push({ msg, fields }),
    info: () => undefined,
    warn: () => undefined,
  } as unknown as Logger;
  return { debug, logger };
}

/** A database whose statements are counted and may be watched. */
function watched(db: Database, onQuery: (sql: string, result: Promise<unknown>) => void = () => undefined) {
  const statements: string[] = [];
  const database: Database = {
    ...db,
    query: <R>(sql: string, params?: unknown[]) => {
      statements.push(sql);
      const result = db.query<R>(sql, params);
      onQuery(sql, result);
      return result;
    },
  };
  return { database, statements };
}

const churn = async (db: Database, table: string) => {
  await db.exec(`CREATE TABLE ${table} (id int PRIMARY KEY, body text NOT NULL)`);
  await db.query(`INSERT INTO ${table} SELECT n, repeat('x', 100) FROM generate_series(1, 2000) AS n`);
  await db.query(`DELETE FROM ${table} WHERE id % 2 = 0`);
};

describe('the database maintenance loop', () => {
  const config: LadingConfig = parseConfig({});
  let db: Database;

  beforeEach(async () => {
    db = await createPgliteDatabase();
  });
  afterEach(async () => db.close());

  it('runs on PGlite every database.maintenanceInterval (5m by default), first after one interval, logging the tables at debug', async () => {
    await churn(db, 'churned');
    const clock = manualSleep();
    const { debug, logger } = recordingLogger();
    const maintenance = startDatabaseMaintenance(db, { config, logger, sleep: clock.sleep });
    expect(maintenance).not.toBeNull();
    expect(config.database.maintenanceInterval).toBe('5m');

    await clock.asleep();
    expect(debug).toEqual([]);
    clock.elapse();
    await new Promise<void>((resolve) => setImmediate(resolve));
    await clock.asleep();

    expect(debug).toEqual([
      {
        msg: 'database maintenance: vacuumed and analyzed tables',
        fields: { tables: [{ table: 'public.churned', deadRows: 1000, modifiedSinceAnalyze: 3000, ms: expect.any(Number) }], skippedByStop: 0, ms: expect.any(Number) },
      },
    ]);
    await maintenance?.stop();
  });

  it('never runs with an interval of 0s', async () => {
    await churn(db, 'churned');
    const { database, statements } = watched(db);
    const clock = manualSleep();

    expect(startDatabaseMaintenance(database, { config: parseConfig({ database: { maintenanceInterval: '0s' } }), logger: recordingLogger().logger, sleep: clock.sleep })).toBeNull();
    expect(() => clock.elapse()).toThrow('nothing sleeps');
    expect(statements).toEqual([]);
  });

  it('awaits the table being vacuumed when stopped during a run, and vacuums no other', async () => {
    await churn(db, 'churned');
    await churn(db, 'also_churned');
    const clock = manualSleep();
    let vacuums = 0;
    let stopped: Promise<boolean> | undefined;
    const { database } = watched(db, (sql, result) => {
      if (!sql.startsWith('VACUUM')) return;
      vacuums++;
      let vacuumDone = false;
      void result.then(() => (vacuumDone = true));
      // Stopped while the first VACUUM runs: the stop resolves only after it, telling whether it had finished.
      stopped = maintenance!.stop().then(() => vacuumDone);
    });
    const maintenance = startDatabaseMaintenance(database, { config, logger: recordingLogger().logger, sleep: clock.sleep });

    await clock.asleep();
    clock.elapse();
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (stopped === undefined) await new Promise<void>((resolve) => setImmediate(resolve));

    expect(await stopped).toBe(true);
    expect(vacuums).toBe(1);
    const { rows } = await db.query<{ relname: string; vacuum_count: number }>(`SELECT relname, vacuum_count FROM pg_stat_user_tables ORDER BY relname`);
    expect(rows.map((r) => r.vacuum_count).sort()).toEqual([0, 1]);
  });
});

describe.each(databaseEngines('maintenance', 1).filter(([engine]) => engine === 'PostgreSQL'))('on %s', (_engine, open) => {
  it('starts no maintenance loop: the server has autovacuum', async () => {
    const { db, drop } = await open();
    try {
      const { database, statements } = watched(db);
      expect(startDatabaseMaintenance(database, { config: parseConfig({}), logger: recordingLogger().logger })).toBeNull();
      expect(statements).toEqual([]);
    } finally {
      await db.close();
      await drop();
    }
  });
});
