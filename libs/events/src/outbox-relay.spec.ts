import { Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EventBus, createInProcessBus } from './bus';
import { EVENT_TYPES, LadingEvent } from './event-types';
import { createUuidV7Generator } from './ids';
import { OutboxContext, appendEvent } from './outbox';
import { createOutboxRelay } from './outbox-relay';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
const REPOSITORIES = ['alpha', 'beta/app', 'gamma'];

interface OutboxRow {
  id: string;
  repository: string;
  published_at: Date | null;
  attempts: number;
  last_error: string | null;
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
    return (await db.query<OutboxRow>(`SELECT id, repository, published_at, attempts, last_error FROM outbox ORDER BY repository, sequence`)).rows;
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
    expect(rows.every((r) => r.published_at instanceof Date && r.attempts === 1 && r.last_error === null)).toBe(true);
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

  it('records the failed attempt and its error on the rows when the bus refuses the batch', async () => {
    await appendEvents(2);
    const { bus } = await recordingBus();
    const relay = createOutboxRelay({ db, bus: flakyBus(bus, 1) });
    await expect(relay.drain()).rejects.toThrow('broker unavailable');
    expect((await outboxRows()).map((r) => [r.published_at, r.attempts, r.last_error])).toEqual([
      [null, 1, 'broker unavailable'],
      [null, 1, 'broker unavailable'],
    ]);
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
});
