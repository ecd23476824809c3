/**
 * Single flight across processes through fetch leases, on PGlite (the lease SQL itself is checked on PostgreSQL too,
 * in libs/metadata): each `createFetchLeases` here stands for one process, all over one database.
 */
import { type Database, createPgliteDatabase, migrate } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { createFetchLeases } from './fetch-leases';

const logger = createLogger({ service: 'test', level: 'silent' });
const POLL = { first: 5, max: 20 };

describe('fetch leases', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db);
  });
  afterAll(async () => db.close());

  /** Content "stored" in memory, and a count of fetches (the upstream's requests). */
  function content() {
    let value: string | null = null;
    let fetches = 0;
    return {
      stored: async () => value,
      fetch: async (gate?: Promise<void>) => {
        fetches++;
        await gate;
        value = 'bytes';
        return value;
      },
      get fetches() {
        return fetches;
      },
    };
  }

  it('fetches once for concurrent misses in several processes; the others wait and find it stored', async () => {
    const processes = Array.from({ length: 4 }, () => createFetchLeases({ db, logger, pollMs: POLL }));
    const blob = content();
    let waits = 0;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const results = Promise.all(processes.map((p) => p.once({ key: 'a', stored: blob.stored, fetch: () => blob.fetch(gate), onWait: () => waits++ })));
    while (waits < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    open();
    const answers = await results;
    expect(blob.fetches).toBe(1);
    expect(answers.map((a) => a.value)).toEqual(['bytes', 'bytes', 'bytes', 'bytes']);
    expect(answers.filter((a) => !a.waited)).toHaveLength(1);
    expect((await db.query(`SELECT 1 FROM proxy_fetch_leases WHERE key = 'a'`)).rows).toHaveLength(0);
  });

  it('lets the next miss fetch after a failed fetch, whose lease it released', async () => {
    const leases = createFetchLeases({ db, logger, pollMs: POLL });
    const blob = content();
    await expect(leases.once({ key: 'b', stored: blob.stored, fetch: async () => Promise.reject(new Error('upstream broke off')) })).rejects.toThrow('upstream broke off');
    expect(await leases.once({ key: 'b', stored: blob.stored, fetch: () => blob.fetch() })).toEqual({ value: 'bytes', waited: false });
  });

  it('takes over a lease its holder stopped renewing (a process that died) once it expires', async () => {
    await db.query(`INSERT INTO proxy_fetch_leases (key, holder, expires_at) VALUES ('c', 'died', now() + interval '200 milliseconds')`);
    const blob = content();
    let waited = false;
    const answer = await createFetchLeases({ db, logger, pollMs: POLL }).once({ key: 'c', stored: blob.stored, fetch: () => blob.fetch(), onWait: () => (waited = true) });
    expect(waited).toBe(true);
    expect(answer).toEqual({ value: 'bytes', waited: false });
    expect(blob.fetches).toBe(1);
  });

  it('keeps a fetch that outlasts its lease single: the holder renews it while it runs', async () => {
    const holder = createFetchLeases({ db, logger, leaseMs: 500, pollMs: POLL });
    const other = createFetchLeases({ db, logger, leaseMs: 500, pollMs: POLL });
    const blob = content();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let waiting = false;
    const first = holder.once({ key: 'd', stored: blob.stored, fetch: () => blob.fetch(gate) });
    while (blob.fetches === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = other.once({ key: 'd', stored: blob.stored, fetch: () => blob.fetch(), onWait: () => (waiting = true) });
    // Four lease lengths: without renewal the second would have taken the lease over and fetched again.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(waiting).toBe(true);
    open();
    expect(await Promise.all([first, second])).toEqual([
      { value: 'bytes', waited: false },
      { value: 'bytes', waited: true },
    ]);
    expect(blob.fetches).toBe(1);
  });
});
