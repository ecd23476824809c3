import { fsyncSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Database } from './database';
import { createPgliteDatabase } from './pglite-adapter';

/** An fsync that really flushes and counts its calls. */
function countingFsync(): { fsyncFd: (fd: number) => void; count: () => number } {
  let calls = 0;
  return {
    fsyncFd: (fd) => {
      calls++;
      fsyncSync(fd);
    },
    count: () => calls,
  };
}

describe('PGlite durability on a data directory', () => {
  let dir: string;
  let db: Database | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-pglite-durable-'));
  });
  afterEach(async () => {
    await db?.close();
    db = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('flushes the database it creates, then each committed transaction and nothing for a read', async () => {
    const fsync = countingFsync();
    db = await createPgliteDatabase(path.join(dir, 'metadata'), { fsyncFd: fsync.fsyncFd });
    // The new database's files (hundreds) are flushed before it is used.
    expect(fsync.count()).toBeGreaterThan(100);
    await db.exec(`CREATE TABLE kept (v int)`);

    const before = fsync.count();
    await db.query(`INSERT INTO kept VALUES (1)`);
    const afterStatement = fsync.count();
    expect(afterStatement).toBeGreaterThan(before);
    await db.transaction(async (tx) => {
      await tx.query(`INSERT INTO kept VALUES (2)`);
      await tx.query(`INSERT INTO kept VALUES (3)`);
    });
    const afterTransaction = fsync.count();
    expect(afterTransaction).toBeGreaterThan(afterStatement);

    expect((await db.query(`SELECT count(*)::int AS n FROM kept`)).rows).toEqual([{ n: 3 }]);
    expect(fsync.count()).toBe(afterTransaction);
    const settings = await db.query<{ fsync: string; method: string }>(
      `SELECT current_setting('fsync') AS fsync, current_setting('wal_sync_method') AS method`,
    );
    expect(settings.rows).toEqual([{ fsync: 'on', method: 'fsync' }]);
  });

  it('never flushes when fsync is off', async () => {
    const fsync = countingFsync();
    db = await createPgliteDatabase(path.join(dir, 'metadata'), { fsync: false, fsyncFd: fsync.fsyncFd });
    await db.exec(`CREATE TABLE kept (v int)`);
    await db.query(`INSERT INTO kept VALUES (1)`);
    await db.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES (2)`));
    await db.close();
    db = undefined;
    expect(fsync.count()).toBe(0);
  });

  it('keeps what a durable database committed across a reopen with fsync off and back', async () => {
    const dataDir = path.join(dir, 'metadata');
    db = await createPgliteDatabase(dataDir);
    await db.exec(`CREATE TABLE kept (v text)`);
    await db.query(`INSERT INTO kept VALUES ($1)`, ['durable']);
    await db.close();
    db = await createPgliteDatabase(dataDir, { fsync: false });
    await db.query(`INSERT INTO kept VALUES ($1)`, ['throwaway']);
    await db.close();
    db = await createPgliteDatabase(dataDir);
    expect((await db.query(`SELECT v FROM kept ORDER BY v`)).rows).toEqual([{ v: 'durable' }, { v: 'throwaway' }]);
  });

  it('answers a transaction that wrote only after a flush that followed its COMMIT, and a read-only one with none', async () => {
    const fsync = countingFsync();
    db = await createPgliteDatabase(path.join(dir, 'metadata'), { fsyncFd: fsync.fsyncFd });
    await db.exec(`CREATE TABLE kept (v int)`);
    let atLastStatement = -1;
    await db.transaction(async (tx) => {
      await tx.query(`INSERT INTO kept VALUES (1)`);
      atLastStatement = fsync.count();
    });
    expect(fsync.count()).toBeGreaterThan(atLastStatement);

    const beforeRead = fsync.count();
    await db.transaction(async (tx) => tx.query(`SELECT count(*) FROM kept`));
    expect(fsync.count()).toBe(beforeRead);
    // Outside transactions commits stay synchronous; inside, the adapter's shared flush stands in for COMMIT's own.
    const inside = await db.transaction(async (tx) => (await tx.query<{ s: string }>(`SELECT current_setting('synchronous_commit') AS s`)).rows[0].s);
    const outside = (await db.query<{ s: string }>(`SELECT current_setting('synchronous_commit') AS s`)).rows[0].s;
    expect([inside, outside]).toEqual(['off', 'on']);
  });

  it('commits with the question whether the transaction wrote in the same trip: an aborted one and a COMMIT that fails keep nothing', async () => {
    db = await createPgliteDatabase(path.join(dir, 'metadata'));
    await db.exec(`CREATE TABLE kept (v int UNIQUE DEFERRABLE INITIALLY DEFERRED)`);
    await db.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES (1)`));
    // A statement failed: the question fails too, and COMMIT rolls back.
    const aborted = await db
      .transaction(async (tx) => {
        await tx.query(`INSERT INTO kept VALUES (2)`);
        await tx.query(`SELECT 1/0`).catch(() => undefined);
      })
      .catch((e: unknown) => e);
    expect(aborted).toBeInstanceOf(Error);
    // The deferred unique check fails at COMMIT itself: its error reaches the caller.
    const atCommit = await db.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES (3), (1)`)).catch((e: unknown) => e);
    expect((atCommit as { code?: string }).code).toBe('23505');
    // The connection is usable after both, and only the first transaction's row is there.
    await db.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES (4)`));
    expect((await db.query<{ v: number }>(`SELECT v FROM kept ORDER BY v`)).rows.map((r) => r.v)).toEqual([1, 4]);
  });

  it('lets concurrent transactions share flushes (group commit) and loses none of them', async () => {
    const fsync = countingFsync();
    db = await createPgliteDatabase(path.join(dir, 'metadata'), { fsyncFd: fsync.fsyncFd });
    await db.exec(`CREATE TABLE kept (v int)`);
    const open = db;
    const before = fsync.count();
    const writers = 40;
    await Promise.all(Array.from({ length: writers }, (_, i) => open.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES ($1)`, [i]))));
    const flushes = fsync.count() - before;
    expect(flushes).toBeGreaterThan(0);
    expect(flushes).toBeLessThan(writers / 2);
    await db.close();
    db = await createPgliteDatabase(path.join(dir, 'metadata'), { fsyncFd: fsync.fsyncFd });
    expect((await db.query(`SELECT count(*)::int AS n FROM kept`)).rows).toEqual([{ n: writers }]);
  });

  it('refuses a transaction whose flush failed, so no caller is told a write is safe when it may not be', async () => {
    let failing = false;
    db = await createPgliteDatabase(path.join(dir, 'metadata'), {
      fsyncFd: (fd) => {
        if (failing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5 });
        fsyncSync(fd);
      },
    });
    await db.exec(`CREATE TABLE kept (v int)`);
    failing = true;
    await expect(db.transaction(async (tx) => tx.query(`INSERT INTO kept VALUES (1)`))).rejects.toThrow();
  });
});
