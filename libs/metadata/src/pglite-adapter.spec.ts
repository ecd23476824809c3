import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Database, PG_ERRORS, sqlState } from './database';
import { createPgliteDatabase } from './pglite-adapter';

describe('PGlite adapter', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await db.exec(`CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, payload bytea, tags text[], size bigint)`);
  });
  afterAll(async () => db.close());

  const names = async () => (await db.query<{ name: string }>(`SELECT name FROM items ORDER BY name`)).rows.map((r) => r.name);

  it('round-trips bytea, text arrays, int8 and nulls through a statement run many times', async () => {
    const payload = Buffer.from([0, 1, 2, 254, 255]);
    for (let i = 0; i < 3; i++) {
      await db.query(`INSERT INTO items (name, payload, tags, size) VALUES ($1, $2, $3, $4)`, [`r${i}`, payload, ['a', 'b"c', 'd e'], 2 ** 40 + i]);
    }
    const r = await db.query<{ name: string; payload: Buffer; tags: string[]; size: number }>(
      `SELECT name, payload, tags, size FROM items WHERE name = ANY($1::text[]) ORDER BY name`,
      [['r0', 'r2', 'missing']],
    );
    expect(r.rows).toEqual([
      { name: 'r0', payload, tags: ['a', 'b"c', 'd e'], size: 2 ** 40 },
      { name: 'r2', payload, tags: ['a', 'b"c', 'd e'], size: 2 ** 40 + 2 },
    ]);
    expect(Buffer.isBuffer(r.rows[0].payload)).toBe(true);
    expect((await db.query(`SELECT payload, tags FROM items WHERE name = $1`, ['none'])).rows).toEqual([]);
    await db.query(`INSERT INTO items (name) VALUES ($1)`, ['nulls']);
    expect((await db.query(`SELECT payload, tags, size FROM items WHERE name = $1`, ['nulls'])).rows).toEqual([{ payload: null, tags: null, size: null }]);
  });

  it('counts the rows a statement changed or returned', async () => {
    await db.query(`INSERT INTO items (name) SELECT 'c' || n FROM generate_series(1, 4) AS n`);
    expect((await db.query(`UPDATE items SET size = 1 WHERE name LIKE 'c%'`)).rowCount).toBe(4);
    expect((await db.query(`SELECT name FROM items WHERE name LIKE 'c%'`)).rowCount).toBe(4);
    expect((await db.query(`DELETE FROM items WHERE name LIKE 'c%'`)).rowCount).toBe(4);
  });

  it('rolls back a transaction whose work throws, and its statements still run afterwards', async () => {
    const insert = `INSERT INTO items (name) VALUES ($1)`;
    await expect(
      db.transaction(async (tx) => {
        await tx.query(insert, ['rolled-back']);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    await db.query(insert, ['after-rollback']);
    expect(await names()).toContain('after-rollback');
    expect(await names()).not.toContain('rolled-back');
  });

  it('refuses to commit a transaction that a failed statement aborted, and keeps nothing of it', async () => {
    const err = await db
      .transaction(async (tx) => {
        await tx.query(`INSERT INTO items (name) VALUES ($1)`, ['aborted-1']);
        await tx.query(`INSERT INTO items (name) VALUES ($1)`, ['r0']).catch(() => undefined);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await names()).not.toContain('aborted-1');
  });

  it('reports a statement error with its SQLSTATE and leaves the connection usable', async () => {
    const err = await db.query(`INSERT INTO items (name) VALUES ($1)`, ['r0']).catch((e: unknown) => e);
    expect(sqlState(err)).toBe(PG_ERRORS.uniqueViolation);
    const syntax = await db.query(`SELEC 1`).catch((e: unknown) => e);
    expect(sqlState(syntax)).toBe('42601');
    expect((await db.query<{ n: number }>(`SELECT 1 AS n`)).rows).toEqual([{ n: 1 }]);
  });

  it('runs statements asked for together inside their transaction, so a rollback takes them all back', async () => {
    await expect(
      db.transaction(async (tx) => {
        await Promise.all(['together-1', 'together-2', 'together-3'].map((name) => tx.query(`INSERT INTO items (name) VALUES ($1)`, [name])));
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect((await names()).filter((n) => n.startsWith('together'))).toEqual([]);
    const kept = await db.transaction((tx) => Promise.all(['together-4', 'together-5'].map((name) => tx.query(`INSERT INTO items (name) VALUES ($1) RETURNING name`, [name]))));
    expect(kept.map((r) => r.rows[0])).toEqual([{ name: 'together-4' }, { name: 'together-5' }]);
  });

  it('resolves a transaction that ran no statement with the value of its work', async () => {
    await expect(db.transaction(async () => 'nothing to do')).resolves.toBe('nothing to do');
    expect((await db.query<{ n: number }>(`SELECT 1 AS n`)).rows).toEqual([{ n: 1 }]);
  });

  it('refuses statements of a transaction that has ended', async () => {
    let kept: { query: Database['query'] } | undefined;
    await db.transaction(async (tx) => {
      kept = tx;
    });
    await expect(kept!.query(`SELECT 1`)).rejects.toThrow('the transaction is closed');
  });

  it('runs a statement prepared before a schema change against the new schema', async () => {
    const select = `SELECT * FROM items WHERE name = $1`;
    expect(Object.keys((await db.query(select, ['r0'])).rows[0]).sort()).toEqual(['id', 'name', 'payload', 'size', 'tags']);
    await db.exec(`ALTER TABLE items ADD COLUMN note text`);
    expect(Object.keys((await db.query(select, ['r0'])).rows[0]).sort()).toEqual(['id', 'name', 'note', 'payload', 'size', 'tags']);
  });

  it('prepares a statement afresh when a schema change made by a statement changes its result', async () => {
    const select = `SELECT * FROM items WHERE name = $1`;
    await db.query(select, ['r0']);
    await db.query(`ALTER TABLE items ADD COLUMN extra int`);
    expect((await db.query(select, ['r0'])).rows[0]).toHaveProperty('extra', null);
    // In a transaction the statement's error stands (the transaction is aborted) and the next one is fresh.
    await db.query(`ALTER TABLE items DROP COLUMN extra`);
    await expect(db.transaction((tx) => tx.query(select, ['r0']))).rejects.toMatchObject({ code: '0A000' });
    expect((await db.query(select, ['r0'])).rows[0]).not.toHaveProperty('extra');
  });

  it('serialises concurrent statements and transactions on its one connection', async () => {
    await db.query(`CREATE TABLE counter (n int NOT NULL)`);
    await db.query(`INSERT INTO counter VALUES (0)`);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? db.transaction(async (tx) => {
              const n = (await tx.query<{ n: number }>(`SELECT n FROM counter`)).rows[0].n;
              await new Promise((resolve) => setImmediate(resolve));
              await tx.query(`UPDATE counter SET n = $1`, [n + 1]);
            })
          : db.query(`UPDATE counter SET n = n + 1`),
      ),
    );
    expect((await db.query<{ n: number }>(`SELECT n FROM counter`)).rows[0].n).toBe(20);
  });
});

describe('PGlite adapter on a data directory', () => {
  it('creates the database on first open and finds its rows again on the next', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lading-pglite-'));
    try {
      const dataDir = path.join(dir, 'metadata');
      const first = await createPgliteDatabase(dataDir);
      await first.exec(`CREATE TABLE kept (v text)`);
      await first.query(`INSERT INTO kept VALUES ($1)`, ['still here']);
      await first.close();
      expect((await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8')).trim()).toMatch(/^\d+$/);

      const second = await createPgliteDatabase(dataDir);
      try {
        expect((await second.query(`SELECT v FROM kept`)).rows).toEqual([{ v: 'still here' }]);
        expect((await second.query<{ setting: string }>(`SELECT current_setting('shared_buffers') AS setting`)).rows[0].setting).toBe('4MB');
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the cause when the database cannot be created: a full disk reads ENOSPC, not [object Object]', async () => {
    // A 2 MB tmpfs is a real full disk for initdb (needs root, as CI on this project's machines runs).
    const dir = await mkdtemp(path.join(tmpdir(), 'lading-pglite-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    try {
      await expect(createPgliteDatabase(path.join(dir, 'metadata'))).rejects.toThrow(/creating the PGlite database in .* failed: ENOSPC: no space left on device/);
    } finally {
      execFileSync('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
