import { createThrowawayDatabase } from '@lading/testing';
import { isUnavailable } from '@lading/oci';
import { DATABASE_UNAVAILABLE, Database } from './database';
import { migrate } from './migrate';
import { createPgDatabase } from './pg-adapter';
import { ensureRepository } from './repositories';


/** A throwaway database on the real server, so tests never see each other's rows. */
const freshDatabase = () => createThrowawayDatabase('test');

describe('pg adapter on a real PostgreSQL', () => {
  let fresh: { url: string; drop(): Promise<void> };
  let db: Database;

  beforeAll(async () => {
    fresh = await freshDatabase();
    db = await createPgDatabase({ url: fresh.url, poolSize: 4, statementTimeoutMs: 5000, connectTimeoutMs: 2000 });
    // libs/metadata's own tables; the whole schema (every lib's sets) is applied on a real PostgreSQL in
    // libs/runtime/src/migrations.spec.ts.
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await fresh.drop();
  });

  it('parses int8 columns as numbers', async () => {
    const r = await db.query<{ n: number }>(`SELECT 9007199254740991::int8 AS n`);
    expect(r.rows[0].n).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await db.transaction((tx) => ensureRepository(tx, 'kept'));
    await expect(
      db.transaction(async (tx) => {
        await ensureRepository(tx, 'rolled/back');
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    const names = (await db.query<{ name: string }>(`SELECT name FROM repositories ORDER BY name`)).rows.map((r) => r.name);
    expect(names).toEqual(['kept']);
  });

  it('lets two transactions claim different rows with FOR UPDATE SKIP LOCKED', async () => {
    for (const name of ['q1', 'q2']) await db.transaction((tx) => ensureRepository(tx, name));
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = db.transaction(async (tx) => {
      const r = await tx.query<{ name: string }>(`SELECT name FROM repositories WHERE name IN ('q1','q2') ORDER BY name LIMIT 1 FOR UPDATE SKIP LOCKED`);
      await held;
      return r.rows.map((x) => x.name);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await db.transaction(async (tx) => {
      const r = await tx.query<{ name: string }>(`SELECT name FROM repositories WHERE name IN ('q1','q2') ORDER BY name LIMIT 1 FOR UPDATE SKIP LOCKED`);
      return r.rows.map((x) => x.name);
    });
    release();
    expect([await first, second]).toEqual([['q1'], ['q2']]);
  });

  it('runs a statement with parameters many times on every connection, with its results each time', async () => {
    await db.exec(`CREATE TABLE prepared_items (name text PRIMARY KEY, size int8 NOT NULL)`);
    await Promise.all(Array.from({ length: 20 }, (_, i) => db.query(`INSERT INTO prepared_items (name, size) VALUES ($1, $2)`, [`p${i}`, i])));
    const sizes = await Promise.all(Array.from({ length: 40 }, (_, i) => db.query<{ size: number }>(`SELECT size FROM prepared_items WHERE name = $1`, [`p${i % 20}`])));
    expect(sizes.map((r) => r.rows[0].size)).toEqual(Array.from({ length: 40 }, (_, i) => i % 20));
  });

  it('prepares a statement afresh when its table changes columns under it', async () => {
    await db.exec(`CREATE TABLE changing (name text PRIMARY KEY)`);
    await db.exec(`INSERT INTO changing VALUES ('a')`);
    const select = `SELECT * FROM changing WHERE name = $1`;
    // Prepared on every connection of the pool first.
    await Promise.all(Array.from({ length: 8 }, () => db.query(select, ['a'])));
    await db.exec(`ALTER TABLE changing ADD COLUMN note text`);
    const after = await Promise.all(Array.from({ length: 8 }, () => db.query(select, ['a'])));
    for (const r of after) expect(r.rows[0]).toEqual({ name: 'a', note: null });
    // In a transaction the error stands (PostgreSQL aborted it), and the statement is fresh afterwards.
    await db.exec(`ALTER TABLE changing DROP COLUMN note`);
    await Promise.all(Array.from({ length: 8 }, () => db.query(`SELECT name FROM changing WHERE name = $1`, ['a'])));
    const inTx = await Promise.allSettled(Array.from({ length: 4 }, () => db.transaction((tx) => tx.query(select, ['a']))));
    for (const r of inTx) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: '0A000' });
    expect((await db.transaction((tx) => tx.query(select, ['a']))).rows[0]).toEqual({ name: 'a' });
  });

  it('fails fast, marked as unavailable, when the server cannot be reached', async () => {
    const unreachable = await createPgDatabase({ url: 'postgres://x:y@127.0.0.1:1/none', poolSize: 1, statementTimeoutMs: 1000, connectTimeoutMs: 500 });
    await expect(unreachable.query('SELECT 1')).rejects.toMatchObject({ code: DATABASE_UNAVAILABLE, sqlState: 'ECONNREFUSED' });
    expect(isUnavailable(await unreachable.query('SELECT 1').catch((err: unknown) => err))).toBe(true);
    await unreachable.close();
  });
});
