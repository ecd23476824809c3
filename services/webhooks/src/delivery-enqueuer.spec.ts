/**
 * The enqueuer as a Kafka consumer (real broker and PostgreSQL of tools/infra): events published before the group
 * first joined are not skipped, and a message the broker delivers twice queues one delivery.
 */
import { randomBytes } from 'node:crypto';
import { AUDIT_EVENT_TYPES, AUDIT_PARTITION_KEY, EVENT_TYPES, LadingEvent, createInProcessBus, createKafkaBus, createUuidV7Generator } from '@lading/events';
import type { Database } from '@lading/metadata';
import { infraSettings } from '@lading/testing';
import { WEBHOOKS_CONSUMER_GROUP, enqueueEvent, enqueueEvents, subscribeEnqueuer } from './delivery-enqueuer';
import { generateWebhookSecret, insertSubscription, listDeliveries } from '@lading/webhooks';
import { FreshPostgres, freshPostgres } from '@lading/webhooks/test/fresh-postgres';

const ids = createUuidV7Generator();

function makeEvent(repository: string): LadingEvent {
  return {
    specversion: '1.0',
    id: ids(),
    source: '//test/lading/manifest',
    type: EVENT_TYPES.manifestPushed,
    subject: `${repository}@sha256:${'d'.repeat(64)}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: repository,
    sequence: '00000000000000000001',
    data: {
      repository, namespace: repository.split('/')[0], digest: `sha256:${'d'.repeat(64)}`, mediaType: null, artifactType: null, size: null, tag: null,
      previousDigest: null, references: [], subject: null, fromRepository: null, proxy: null, actor: { name: null, type: 'anonymous' }, request: null,
    },
  };
}

describe('the webhook enqueuer on Kafka', () => {
  let pg: FreshPostgres;

  beforeAll(async () => {
    pg = await freshPostgres('webhooks_enqueuer');
  });
  afterAll(async () => {
    await pg.drop();
  });

  it('consumes as its own group from the oldest event, and queues a redelivered message once', async () => {
    expect(WEBHOOKS_CONSUMER_GROUP).toBe('lading-webhooks');
    const subscription = await insertSubscription(pg.db, {
      id: ids(), name: 'k', namespace: '', url: 'https://93.184.216.34/', format: 'cloudevents', eventTypes: [], secret: generateWebhookSecret(), enabled: true,
    });
    const topic = `lading-webhooks-test-${randomBytes(4).toString('hex')}`;
    const bus = await createKafkaBus({ brokers: infraSettings().kafkaBrokers, topic, partitions: 2, clientId: 'lading-webhooks-test' });
    try {
      const early = makeEvent('team/early');
      await bus.publish([early]);
      let queued = 0;
      const unsubscribe = await subscribeEnqueuer(bus, { db: pg.db, ids, group: `lading-webhooks-test-${topic}`, onQueued: (n) => (queued += n) });
      const late = makeEvent('team/late');
      await bus.publish([late, late, early]);
      const deadline = Date.now() + 30_000;
      let rows = await listDeliveries(pg.db, subscription.id, { limit: 10 });
      while (rows.length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await listDeliveries(pg.db, subscription.id, { limit: 10 });
      }
      // Give the duplicates time to arrive too.
      await new Promise((r) => setTimeout(r, 1000));
      rows = await listDeliveries(pg.db, subscription.id, { limit: 10 });
      expect(rows.map((d) => d.eventId).sort()).toEqual([early.id, late.id].sort());
      expect(queued).toBe(2);
      await unsubscribe();
    } finally {
      await bus.close();
    }
  });

  it('queues no delivery for an audit event, even to a subscription of every type and repository', async () => {
    const subscription = await insertSubscription(pg.db, {
      id: ids(), name: 'all', namespace: '', url: 'https://93.184.216.34/all', format: 'cloudevents', eventTypes: [], secret: generateWebhookSecret(), enabled: true,
    });
    const login = {
      specversion: '1.0', id: ids(), source: '//test/lading/auth', type: AUDIT_EVENT_TYPES.login, subject: 'alice', time: new Date().toISOString(),
      datacontenttype: 'application/json', partitionkey: AUDIT_PARTITION_KEY, sequence: '00000000000000000001',
      data: { actor: { type: 'user', name: 'alice' }, result: 'success', reason: null, method: 'password', request: null },
    } as unknown as LadingEvent;
    expect(await enqueueEvent({ db: pg.db, ids }, login)).toBe(0);
    expect(await listDeliveries(pg.db, subscription.id, { limit: 10 })).toEqual([]);
  });

  it('matches a batch in one statement, and queues only the events a subscription matches, in order', async () => {
    // The subscriptions of every repository above would match everything.
    await pg.db.query(`UPDATE webhook_subscriptions SET enabled = false`);
    const subscription = await insertSubscription(pg.db, {
      id: ids(), name: 'ns', namespace: 'batch-ns', url: 'https://93.184.216.34/ns', format: 'cloudevents', eventTypes: [EVENT_TYPES.manifestPushed], secret: generateWebhookSecret(), enabled: true,
    });
    const statements: string[] = [];
    const counted: Database = {
      ...pg.db,
      query: (sql, params) => {
        statements.push(sql);
        return pg.db.query(sql, params);
      },
    };
    const other = [makeEvent('elsewhere/a'), { ...makeEvent('batch-ns/a'), type: EVENT_TYPES.blobUploaded }, makeEvent('elsewhere/b')];
    expect(await enqueueEvents({ db: counted, ids }, other)).toBe(0);
    expect(statements).toHaveLength(1);
    const first = makeEvent('batch-ns/a');
    const second = makeEvent('batch-ns/b');
    expect(await enqueueEvents({ db: pg.db, ids }, [makeEvent('elsewhere/c'), first, ...other, second])).toBe(2);
    const rows = await listDeliveries(pg.db, subscription.id, { limit: 10 });
    expect(rows.map((d) => d.eventId).sort()).toEqual([first.id, second.id].sort());
  });

  it('queues deliveries from the in-process bus a published batch at a time', async () => {
    const subscription = await insertSubscription(pg.db, {
      id: ids(), name: 'in-process', namespace: 'inproc', url: 'https://93.184.216.34/ip', format: 'cloudevents', eventTypes: [], secret: generateWebhookSecret(), enabled: true,
    });
    const bus = createInProcessBus();
    let calls = 0;
    const unsubscribe = await subscribeEnqueuer(bus, { db: pg.db, ids, onQueued: () => calls++ });
    const events = [makeEvent('inproc/a'), makeEvent('other/a'), makeEvent('inproc/b')];
    await bus.publish(events);
    await bus.settled?.();
    await unsubscribe();
    await bus.close();
    expect(calls).toBe(1);
    const rows = await listDeliveries(pg.db, subscription.id, { limit: 10 });
    expect(rows.map((d) => d.eventId).sort()).toEqual([events[0].id, events[2].id].sort());
  });
});
