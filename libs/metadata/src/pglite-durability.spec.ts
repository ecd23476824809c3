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
});
