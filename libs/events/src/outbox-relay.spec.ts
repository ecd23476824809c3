import { Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EventBus, EventsRefusedError, createInProcessBus } from './bus';
import { EVENT_TYPES, LadingEvent } from './event-types';
import { createUuidV7Generator } from './ids';
import { OutboxContext, appendEvent } from './outbox';
import { renderOutboxMetrics } from './outbox-metrics';
import { createOutboxRelay } from './outbox-relay';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
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
    await migrate(db);
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
        appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository, subject: `${repository}:t${i}`, context: { actor: { name: null, type: 'anonymous' }, request: null } }),
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
    const relay = createOutboxRelay({ db, bus });
    expect(await relay.drain()).toBe(7);
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

  it('reports a failed background drain through onError once started, instead of rejecting', async () => {
    await appendEvents(1);
    const { bus } = await recordingBus();
    const errors: string[] = [];
    let failed!: () => void;
    const reportedOnce = new Promise<void>((resolve) => (failed = resolve));
    const relay = createOutboxRelay({
      db,
      bus: flakyBus(bus, 1),
      intervalMs: 3_600_000,
      onError: (err) => {
        errors.push((err as Error).message);
        failed();
      },
    });
    relay.start();
    await reportedOnce;
    await relay.stop();
    expect(errors[0]).toBe('broker unavailable');
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

    const metrics = await renderOutboxMetrics(db, relay.counters);
    expect(metrics).toContain('\nlading_outbox_parked 1\n');
    expect(metrics).toContain('\nlading_outbox_backlog 0\n');
    expect(metrics).toContain('\nlading_outbox_published_total 8\n');
    expect(metrics).toContain('\nlading_outbox_publish_failures_total 0\n');
    expect(metrics).toContain('\nlading_outbox_refused_total 3\n');
    expect(metrics).toMatch(/\nlading_outbox_oldest_unpublished_age_seconds 0\n/);
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
    const metrics = await renderOutboxMetrics(db, relay.counters);
    expect(metrics).toContain('\nlading_outbox_backlog 4\n');
    expect(metrics).toContain('\nlading_outbox_publish_failures_total 1\n');
    const lag = Number(/\nlading_outbox_oldest_unpublished_age_seconds ([0-9.]+)\n/.exec(metrics)?.[1]);
    expect(lag).toBeGreaterThanOrEqual(90);
    expect(lag).toBeLessThan(120);
    expect(metrics).toContain('# TYPE lading_outbox_published_total counter');
    await bus.close();
  });
});
