import { METADATA_MIGRATIONS, Database, createPgDatabase, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EVENTS_MIGRATIONS } from './migrations';
import { createThrowawayDatabase } from '@lading/testing';
import { EventBus, EventsRefusedError, createInProcessBus } from './bus';
import { EVENT_TYPES, LadingEvent } from './event-types';
import { createUuidV7Generator } from './ids';
import { OutboxContext, appendEvent } from './outbox';
import { readOutboxGauges } from './outbox-metrics';
import { createOutboxRelay } from './outbox-relay';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
/** The fields a tag.updated must carry; these specs are about outbox rows, not about what the events say. */
const TAG_DATA = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, tag: 't' };
const REPOSITORIES = ['alpha', 'beta/app', 'gamma'];

interface OutboxRow {
  id: string;
  repository: string;
  published_at: Date | null;
  attempts: number;
  last_error: string | null;
  parked_at: Date | null;
}

describe('outbox relay', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    await db.transaction(async (tx) => {
      for (const name of REPOSITORIES) await ensureRepository(tx, name);
    });
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await db.query(`DELETE FROM outbox`);
  });

  /** Appends `count` events, interleaving the repositories, each in its own transaction; returns their ids. */
  async function appendEvents(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const repository = REPOSITORIES[i % REPOSITORIES.length];
      const event = await db.transaction((tx) =>
        appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository, subject: `${repository}:t${i}`, context: { actor: { name: null, type: 'anonymous' }, request: null }, data: TAG_DATA }),
      );
      ids.push(event.id);
    }
    return ids;
  }

  async function outboxRows(): Promise<OutboxRow[]> {
    return (await db.query<OutboxRow>(`SELECT id::text AS id, repository, published_at, attempts, last_error, parked_at FROM outbox ORDER BY repository, sequence`)).rows;
  }

  /** An in-process bus with one subscriber that records what it is given. */
  async function recordingBus(): Promise<{ bus: EventBus; delivered: LadingEvent[] }> {
    const bus = createInProcessBus();
    const delivered: LadingEvent[] = [];
    await bus.subscribe((e) => {
      delivered.push(e);
    });
    return { bus, delivered };
  }

  function expectPerRepositoryOrder(delivered: LadingEvent[]): void {
    for (const repository of REPOSITORIES) {
      const sequences = delivered.filter((e) => e.partitionkey === repository).map((e) => e.sequence);
      expect(sequences).toEqual([...sequences].sort());
    }
  }

  it('publishes every pending row once, in per-repository sequence order, and marks them published', async () => {
    const ids = await appendEvents(7);
    const { bus, delivered } = await recordingBus();
    const told: string[] = [];
    const relay = createOutboxRelay({ db, bus, onPublished: (events) => told.push(...events.map((e) => e.id)) });
    expect(await relay.drain()).toBe(7);
    expect(told.sort()).toEqual([...ids].sort());
    await bus.close();
    expect(delivered.map((e) => e.id).sort()).toEqual([...ids].sort());
    expectPerRepositoryOrder(delivered);
    const rows = await outboxRows();
    expect(rows.every((r) => r.published_at instanceof Date && r.attempts === 0 && r.last_error === null)).toBe(true);
  });

  it('publishes nothing more on a second drain', async () => {
    await appendEvents(3);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus });
    expect(await relay.drain()).toBe(3);
    expect(await relay.drain()).toBe(0);
    await bus.close();
    expect(delivered).toHaveLength(3);
  });

  it('drains more rows than one batch holds, batch after batch, keeping the order', async () => {
    const ids = await appendEvents(8);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus, batchSize: 3 });
    expect(await relay.drain()).toBe(8);
    await bus.close();
    expect(delivered.map((e) => e.id).sort()).toEqual([...ids].sort());
    expectPerRepositoryOrder(delivered);
    expect((await outboxRows()).filter((r) => r.published_at === null)).toEqual([]);
  });

  it('never publishes the same row twice when one relay is drained twice at once', async () => {
    await appendEvents(6);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus, batchSize: 2 });
    await Promise.all([relay.drain(), relay.drain()]);
    await bus.close();
    const ids = delivered.map((e) => e.id);
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(6);
  });

  it('never publishes the same row twice when two relays drain the same outbox at once', async () => {
    await appendEvents(6);
    const { bus, delivered } = await recordingBus();
    const first = createOutboxRelay({ db, bus, batchSize: 2 });
    const second = createOutboxRelay({ db, bus, batchSize: 2 });
    const [a, b] = await Promise.all([first.drain(), second.drain()]);
    await bus.close();
    expect(a + b).toBe(6);
    const ids = delivered.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(6);
    expect((await outboxRows()).filter((r) => r.published_at === null)).toEqual([]);
  });

  /** A bus that refuses the first `failures` publishes, then delegates to a real in-process bus. */
  function flakyBus(inner: EventBus, failures: number): EventBus {
    let left = failures;
    return {
      driverName: 'flaky',
      async publish(events) {
        if (left-- > 0) throw new Error('broker unavailable');
        await inner.publish(events);
      },
      subscribe: (handler, options) => inner.subscribe(handler, options),
      close: () => inner.close(),
    };
  }

  it('leaves rows unpublished, and rejects the drain, when the bus refuses the batch', async () => {
    await appendEvents(3);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus: flakyBus(bus, 1) });
    await expect(relay.drain()).rejects.toThrow('broker unavailable');
    await bus.close();
    expect(delivered).toEqual([]);
    expect((await outboxRows()).map((r) => r.published_at)).toEqual([null, null, null]);
  });

  it('counts no attempt and records no error on the rows while the bus is unavailable, however often it fails', async () => {
    await appendEvents(2);
    const { bus } = await recordingBus();
    const relay = createOutboxRelay({ db, bus: flakyBus(bus, 25), maxAttempts: 2 });
    for (let i = 0; i < 25; i++) await expect(relay.drain()).rejects.toThrow('broker unavailable');
    expect((await outboxRows()).map((r) => [r.published_at, r.attempts, r.last_error, r.parked_at])).toEqual([
      [null, 0, null, null],
      [null, 0, null, null],
    ]);
    expect(relay.counters.publishFailures).toBe(25);
    expect(await relay.drain()).toBe(2);
  });

  it('publishes on a later drain the rows a refused publish left behind', async () => {
    const ids = await appendEvents(3);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus: flakyBus(bus, 1) });
    await expect(relay.drain()).rejects.toThrow();
    expect(await relay.drain()).toBe(3);
    await bus.close();
    expect(delivered.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect((await outboxRows()).every((r) => r.published_at !== null)).toBe(true);
  });

  it('keeps publishing to the other handlers when one handler throws', async () => {
    await appendEvents(3);
    const reported: string[] = [];
    const bus = createInProcessBus((err) => reported.push((err as Error).message));
    const delivered: string[] = [];
    await bus.subscribe(() => {
      throw new Error('scanner crashed');
    });
    await bus.subscribe((e) => {
      delivered.push(e.id);
    });
    const relay = createOutboxRelay({ db, bus });
    expect(await relay.drain()).toBe(3);
    await bus.close();
    expect(delivered).toHaveLength(3);
    expect(reported).toEqual(['scanner crashed', 'scanner crashed', 'scanner crashed']);
    expect((await outboxRows()).every((r) => r.published_at !== null)).toBe(true);
  });

  /** A bus that refuses (as a bus refuses a record itself) any publish containing one of `poison`; records what it accepts. */
  function refusingBus(poison: Set<string>, options: { maxBatch?: number } = {}) {
    const accepted: LadingEvent[] = [];
    const calls: number[] = [];
    const bus: EventBus = {
      driverName: 'refusing',
      async publish(events) {
        calls.push(events.length);
        if (events.some((e) => poison.has(e.id))) throw new EventsRefusedError('MESSAGE_TOO_LARGE');
        if (options.maxBatch !== undefined && events.length > options.maxBatch) throw new EventsRefusedError('RECORD_LIST_TOO_LARGE');
        accepted.push(...events);
      },
      subscribe: async () => async () => undefined,
      close: async () => undefined,
    };
    return { bus, accepted, calls };
  }

  it('parks a record the bus refuses after maxAttempts drains, holding its repository back until then, while others publish', async () => {
    const ids = await appendEvents(9); // alpha 0,3,6; beta/app 1,4,7; gamma 2,5,8
    const poison = ids[4]; // beta/app's second event
    const { bus, accepted } = refusingBus(new Set([poison]));
    const parked: string[] = [];
    const relay = createOutboxRelay({ db, bus, maxAttempts: 3, onParked: (row) => parked.push(row.id) });

    expect(await relay.drain()).toBe(7);
    const rowsAfterFirst = await outboxRows();
    const beta = rowsAfterFirst.filter((r) => r.repository === 'beta/app');
    expect(beta.map((r) => [r.id, r.published_at !== null, r.attempts, r.parked_at])).toEqual([
      [ids[1], true, 0, null],
      [ids[4], false, 1, null],
      [ids[7], false, 0, null], // held back behind the refused row: order
    ]);
    expect(beta[1].last_error).toContain('MESSAGE_TOO_LARGE');

    expect(await relay.drain()).toBe(0);
    expect((await outboxRows()).find((r) => r.id === poison)?.attempts).toBe(2);
    // The third refusal parks it, and the row it held back goes out in the same drain.
    expect(await relay.drain()).toBe(1);
    expect(parked).toEqual([poison]);
    const poisonRow = (await outboxRows()).find((r) => r.id === poison)!;
    expect([poisonRow.attempts, poisonRow.parked_at instanceof Date, poisonRow.published_at]).toEqual([3, true, null]);
    expect(accepted.map((e) => e.id).sort()).toEqual(ids.filter((id) => id !== poison).sort());
    expectPerRepositoryOrder(accepted);
    expect(await relay.drain()).toBe(0);

    // What lading_outbox_* (exported by @lading/telemetry's observeOutbox / observeRelay) read.
    expect(await readOutboxGauges(db)).toEqual({ backlog: 0, oldestUnpublishedAgeSeconds: 0, parked: 1 });
    expect(relay.counters).toEqual({ published: 8, publishFailures: 0, refused: 3, parked: 1 });
  });

  it('counts no attempt against any row when the bus refuses a batch that it accepts record by record', async () => {
    const ids = await appendEvents(6);
    const { bus, accepted } = refusingBus(new Set(), { maxBatch: 2 });
    const relay = createOutboxRelay({ db, bus, maxAttempts: 1 });
    expect(await relay.drain()).toBe(6);
    expect(accepted.map((e) => e.id).sort()).toEqual([...ids].sort());
    expectPerRepositoryOrder(accepted);
    expect((await outboxRows()).map((r) => [r.attempts, r.parked_at])).toEqual(ids.map(() => [0, null]));
  });

  it('parks a row that holds no publishable event record, and publishes the rest', async () => {
    const ids = await appendEvents(3);
    await db.query(`UPDATE outbox SET event = '{"not":"an event"}' WHERE id = $1`, [ids[0]]);
    const { bus, delivered } = await recordingBus();
    const relay = createOutboxRelay({ db, bus, maxAttempts: 1 });
    expect(await relay.drain()).toBe(2);
    await bus.close();
    expect(delivered.map((e) => e.id).sort()).toEqual(ids.slice(1).sort());
    const row = (await outboxRows()).find((r) => r.id === ids[0])!;
    expect([row.attempts, row.parked_at instanceof Date, row.last_error]).toEqual([1, true, 'the outbox row holds no publishable event record']);
  });

  it('shows the lag of the oldest unpublished row and the backlog in its metrics', async () => {
    await appendEvents(4);
    await db.query(`UPDATE outbox SET created_at = now() - interval '90 seconds'`);
    const { bus } = await recordingBus();
    const relay = createOutboxRelay({ db, bus: flakyBus(bus, 1) });
    await expect(relay.drain()).rejects.toThrow();
    const gauges = await readOutboxGauges(db);
    expect(gauges.backlog).toBe(4);
    expect(relay.counters.publishFailures).toBe(1);
    expect(gauges.oldestUnpublishedAgeSeconds).toBeGreaterThanOrEqual(90);
    expect(gauges.oldestUnpublishedAgeSeconds).toBeLessThan(120);
    await bus.close();
  });
});

/** A throwaway database on the real server of tools/infra, so that the test sees only its own rows. */
async function freshPostgres(): Promise<{ open(poolSize: number): Promise<Database>; drop(): Promise<void> }> {
  const database = await createThrowawayDatabase('relay');
  return {
    open: (poolSize) => createPgDatabase({ url: database.url, poolSize, statementTimeoutMs: 60_000, connectTimeoutMs: 5000 }),
    drop: () => database.drop(),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const anonymous = { actor: { name: null, type: 'anonymous' as const }, request: null };

describe('outbox relay on a real PostgreSQL', () => {
  let server: Awaited<ReturnType<typeof freshPostgres>>;
  let db: Database;

  beforeAll(async () => {
    server = await freshPostgres();
    db = await server.open(40);
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
  });
  afterAll(async () => {
    await db.close();
    await server.drop();
  });

  it('publishes every committed event exactly once, in per-repository order, and no rolled-back one, with 32 writers and 3 relays racing', async () => {
    const repositories = Array.from({ length: 12 }, (_, i) => `race/r${i}`);
    await db.transaction(async (tx) => {
      for (const name of repositories) await ensureRepository(tx, name);
    });
    const published: LadingEvent[] = [];
    const bus: EventBus = {
      driverName: 'recording',
      async publish(events) {
        await sleep(Math.random() * 3);
        published.push(...events);
      },
      subscribe: async () => async () => undefined,
      close: async () => undefined,
    };
    const relayDbs = await Promise.all([1, 2, 3].map(() => server.open(2)));
    const relays = relayDbs.map((rdb) => createOutboxRelay({ db: rdb, bus, partitions: 4, batchSize: 16 }));
    let writing = true;
    const relayLoops = relays.map(async (relay) => {
      while (writing) {
        await relay.drain();
        await sleep(2);
      }
    });

    const committed: string[] = [];
    const rolledBack: string[] = [];
    const writers = Array.from({ length: 32 }, async () => {
      for (let i = 0; i < 12; i++) {
        const ids: string[] = [];
        const rollBack = Math.random() < 0.25;
        try {
          await db.transaction(async (tx) => {
            // Random length, 1-3 events (possibly of different repositories, in a fixed order to avoid deadlocks).
            const picked = [...new Set(Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => repositories[Math.floor(Math.random() * repositories.length)]))].sort();
            for (const repository of picked) {
              await tx.query(`SELECT pg_sleep($1)`, [Math.random() * 0.02]);
              ids.push((await appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository, subject: `${repository}:t`, context: anonymous, data: TAG_DATA })).id);
            }
            await tx.query(`SELECT pg_sleep($1)`, [Math.random() * 0.03]);
            if (rollBack) throw new Error('rolled back on purpose');
          });
          committed.push(...ids);
        } catch (err) {
          if ((err as Error).message !== 'rolled back on purpose') throw err;
          rolledBack.push(...ids);
        }
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(relayLoops);
    await relays[0].drain();
    await Promise.all(relayDbs.map((rdb) => rdb.close()));

    expect(committed.length).toBeGreaterThan(300);
    expect(rolledBack.length).toBeGreaterThan(20);
    const publishedIds = published.map((e) => e.id);
    expect(publishedIds.length).toBe(new Set(publishedIds).size); // exactly once
    expect([...publishedIds].sort()).toEqual([...committed].sort()); // none skipped, none invented
    const rolled = new Set(rolledBack);
    expect(publishedIds.filter((id) => rolled.has(id))).toEqual([]);
    for (const repository of repositories) {
      const sequences = published.filter((e) => e.partitionkey === repository).map((e) => Number(e.sequence));
      expect(sequences).toEqual(sequences.map((_, i) => i + 1)); // in order, from 1, no gap
    }
    const pending = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL`);
    expect(pending.rows[0].n).toBe(0);
    // Every relay took part.
    expect(relays.every((r) => r.counters.published > 0)).toBe(true);
  }, 180_000);

  it('lets two relays publish disjoint slices at the same time, each repository in order', async () => {
    await db.query(`DELETE FROM outbox`);
    const partitions = 4;
    const repositories = Array.from({ length: 16 }, (_, i) => `slices/r${i}`);
    await db.transaction(async (tx) => {
      for (const name of repositories) await ensureRepository(tx, name);
    });
    for (let round = 0; round < 6; round++) {
      await db.transaction(async (tx) => {
        for (const repository of repositories) await appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository, subject: `${repository}:t${round}`, context: anonymous, data: TAG_DATA });
      });
    }
    const sliceOf = new Map<string, number>();
    for (const repository of repositories) {
      const r = await db.query<{ slice: number }>(`SELECT mod(hashtext($1)::bigint + 2147483648, $2) AS slice`, [repository, partitions]);
      sliceOf.set(repository, Number(r.rows[0].slice));
    }
    expect(new Set(sliceOf.values()).size).toBeGreaterThan(1);

    const calls: Array<{ relay: number; slices: Set<number>; start: number; end: number }> = [];
    const published: LadingEvent[] = [];
    const slowBus = (relay: number): EventBus => ({
      driverName: 'slow',
      async publish(events) {
        const start = performance.now();
        await sleep(40);
        published.push(...events);
        calls.push({ relay, slices: new Set(events.map((e) => sliceOf.get(e.partitionkey) as number)), start, end: performance.now() });
      },
      subscribe: async () => async () => undefined,
      close: async () => undefined,
    });
    const relayDbs = [await server.open(2), await server.open(2)];
    const relays = relayDbs.map((rdb, i) => createOutboxRelay({ db: rdb, bus: slowBus(i), partitions, batchSize: 4 }));
    const drained = await Promise.all(relays.map((r) => r.drain()));
    await Promise.all(relayDbs.map((rdb) => rdb.close()));

    expect(drained[0] + drained[1]).toBe(96);
    expect(drained.every((n) => n > 0)).toBe(true);
    let overlapping = 0;
    for (const a of calls.filter((c) => c.relay === 0)) {
      for (const b of calls.filter((c) => c.relay === 1)) {
        if (a.start < b.end && b.start < a.end) {
          overlapping++;
          expect([...a.slices].filter((s) => b.slices.has(s))).toEqual([]);
        }
      }
    }
    expect(overlapping).toBeGreaterThan(0); // they really ran side by side
    expect(new Set(published.map((e) => e.id)).size).toBe(96);
    for (const repository of repositories) {
      const sequences = published.filter((e) => e.partitionkey === repository).map((e) => Number(e.sequence));
      expect(sequences).toEqual([1, 2, 3, 4, 5, 6]);
    }
  }, 120_000);

  it('never counts attempts while the bus is down, and parks a refused record after maxAttempts, on Postgres too', async () => {
    await db.query(`DELETE FROM outbox`);
    await db.transaction((tx) => ensureRepository(tx, 'park/pg'));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await db.transaction((tx) => appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: 'park/pg', subject: 'park/pg:t', context: anonymous, data: TAG_DATA }))).id);
    let down = true;
    const accepted: string[] = [];
    const bus: EventBus = {
      driverName: 'stub',
      async publish(events) {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
        if (events.some((e) => e.id === ids[0])) throw new EventsRefusedError('kafka refused the records: INVALID_RECORD');
        accepted.push(...events.map((e) => e.id));
      },
      subscribe: async () => async () => undefined,
      close: async () => undefined,
    };
    const relay = createOutboxRelay({ db, bus, maxAttempts: 2 });
    for (let i = 0; i < 5; i++) await expect(relay.drain()).rejects.toThrow('ECONNREFUSED');
    const attempts = async () => (await db.query<{ attempts: number; parked: boolean }>(`SELECT attempts, parked_at IS NOT NULL AS parked FROM outbox ORDER BY sequence`)).rows;
    expect(await attempts()).toEqual([0, 0, 0].map((n) => ({ attempts: n, parked: false })));
    down = false;
    expect(await relay.drain()).toBe(0); // refused once; the later rows wait behind it
    expect(await relay.drain()).toBe(2); // parked on the second refusal; the rest go out
    expect(accepted).toEqual([ids[1], ids[2]]);
    expect(await attempts()).toEqual([
      { attempts: 2, parked: true },
      { attempts: 0, parked: false },
      { attempts: 0, parked: false },
    ]);
  }, 60_000);
});
