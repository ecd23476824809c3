/**
 * The outbox relay and pruner run over time on a real (PGlite) outbox: the relay drains when kicked and reports a
 * failed background drain instead of rejecting; the pruner prunes on its schedule; both stop. What one drain and one
 * prune do is specified in libs/events (outbox-relay.spec.ts, outbox-pruner.spec.ts).
 */
import { EVENT_TYPES, EventBus, LadingEvent, OutboxContext, appendEvent, createInProcessBus, createOutboxPruner, createOutboxRelay, createUuidV7Generator } from '@lading/events';
import { Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { REGISTRY_MIGRATIONS } from './migrations';
import { runOutboxPruner, runOutboxRelay } from './outbox-loops';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
const HOUR = 3_600_000;
const REPOSITORY = 'loops/app';

describe('the outbox loops', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, REGISTRY_MIGRATIONS);
    await db.transaction((tx) => ensureRepository(tx, REPOSITORY));
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await db.query(`DELETE FROM outbox`);
  });

  const TAG_DATA = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, tag: 't' };

  /** Appends one event in its own transaction; returns its id. */
  async function appendOne(): Promise<string> {
    const event = await db.transaction((tx) =>
      appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: REPOSITORY, subject: `${REPOSITORY}:t`, context: { actor: { name: null, type: 'anonymous' }, request: null }, data: TAG_DATA }),
    );
    return event.id;
  }

  const remaining = async () => (await db.query<{ id: string }>(`SELECT id::text AS id FROM outbox ORDER BY id`)).rows.map((r) => r.id);

  /**
   * An in-process bus with one subscriber that records what it is given; each publish first calls `before`, which may
   * throw as an unavailable broker does.
   */
  async function testBus(before: () => void = () => undefined): Promise<{ bus: EventBus; delivered: LadingEvent[] }> {
    const inner = createInProcessBus();
    const delivered: LadingEvent[] = [];
    await inner.subscribe((e) => {
      delivered.push(e);
    });
    const bus: EventBus = {
      driverName: 'test',
      async publish(events) {
        before();
        await inner.publish(events);
      },
      subscribe: (handler, options) => inner.subscribe(handler, options),
      close: () => inner.close(),
    };
    return { bus, delivered };
  }

  it('reports a failed background drain through onError once started, instead of rejecting', async () => {
    await appendOne();
    let failures = 1;
    const { bus } = await testBus(() => {
      if (failures-- > 0) throw new Error('broker unavailable');
    });
    const errors: string[] = [];
    let failed!: () => void;
    const reportedOnce = new Promise<void>((resolve) => (failed = resolve));
    const relay = runOutboxRelay(createOutboxRelay({ db, bus }), {
      intervalMs: 3_600_000,
      onError: (err) => {
        errors.push((err as Error).message);
        failed();
      },
    });
    await reportedOnce;
    await relay.stop();
    expect(errors[0]).toBe('broker unavailable');
  });

  it('drains at once when kicked, long before its interval, and not after it stopped', async () => {
    const { bus, delivered } = await testBus();
    const relay = runOutboxRelay(createOutboxRelay({ db, bus }), { intervalMs: 3_600_000 });
    const first = await appendOne();
    relay.kick();
    const until = Date.now() + 10_000;
    while (delivered.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(delivered.map((e) => e.id)).toEqual([first]);
    expect(relay.counters.published).toBe(1);
    await relay.stop();
    await appendOne();
    relay.kick();
    await new Promise((r) => setTimeout(r, 100));
    expect(delivered).toHaveLength(1);
    expect(await relay.drain()).toBe(1);
    await bus.close();
  });

  it('with a kick delay, drains once for the kicks that come within it, and carries all their events', async () => {
    const { bus, delivered } = await testBus();
    const inner = createOutboxRelay({ db, bus });
    let drains = 0;
    const counting = { drain: () => (drains++, inner.drain()), get counters() { return inner.counters; } };
    const relay = runOutboxRelay(counting, { intervalMs: 3_600_000, kickDelayMs: 50 });
    // The loop's first drain, at start, finds nothing.
    while (drains === 0) await new Promise((r) => setTimeout(r, 5));
    const ids = [await appendOne(), await appendOne(), await appendOne()];
    relay.kick();
    relay.kick();
    relay.kick();
    const until = Date.now() + 10_000;
    while (delivered.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await relay.stop();
    expect(delivered.map((e) => e.id)).toEqual(ids);
    expect(drains).toBe(2);
    await bus.close();
  });

  it('prunes on its schedule once started, and stops', async () => {
    const id = await appendOne();
    await db.query(`UPDATE outbox SET published_at = now() - interval '5 hours' WHERE id = $1`, [id]);
    const pruner = runOutboxPruner(createOutboxPruner({ db, retentionMs: HOUR }), { intervalMs: 50 });
    const until = Date.now() + 10_000;
    while ((await remaining()).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await pruner.stop();
    expect(await remaining()).toEqual([]);
  });
});
