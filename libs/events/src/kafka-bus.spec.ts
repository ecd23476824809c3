import { randomBytes } from 'node:crypto';
import { logLevel } from 'kafkajs';
import { createKafkaClient } from './kafka-client';
import { METADATA_MIGRATIONS, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EVENTS_MIGRATIONS } from './migrations';
import { infraSettings } from '@lading/testing';
import { EventsRefusedError } from './bus';
import { createEventSchemaValidator } from './event-schemas';
import { EVENT_TYPES, LadingEvent } from './event-types';
import { createUuidV7Generator } from './ids';
import { CLOUDEVENTS_JSON, createKafkaBus } from './kafka-bus';
import { appendEvent } from './outbox';
import { createOutboxRelay } from './outbox-relay';

/** The fields a tag.updated must carry; these specs are about outbox rows, not about what the events say. */
const TAG_DATA = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, tag: 't' };

const brokers = infraSettings().kafkaBrokers;

function event(repository: string, sequence: number): LadingEvent {
  return {
    specversion: '1.0',
    id: randomBytes(8).toString('hex'),
    source: '//test/lading/manifest',
    type: 'io.lading.manifest.pushed',
    subject: `${repository}@sha256:${'a'.repeat(64)}`,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    partitionkey: repository,
    sequence: String(sequence).padStart(20, '0'),
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    data: {
      repository, namespace: '', digest: null, mediaType: null, artifactType: null, size: null, tag: null, previousDigest: null,
      references: [], subject: null, fromRepository: null, proxy: null, actor: { name: null, type: 'anonymous' }, request: null,
    },
  };
}

describe('kafka bus on a real broker', () => {
  it('creates its topic and publishes structured CloudEvents keyed by repository, readable by a plain Kafka client', async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const bus = await createKafkaBus({ brokers, topic, partitions: 3, clientId: 'lading-test' });
    const sent = [event('team/a', 1), event('team/b', 1), event('team/a', 2), event('team/a', 3)];
    await bus.publish(sent);

    const kafka = createKafkaClient({ clientId: 'plain-reader', brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `reader-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: Array<{ key: string; contentType: string; traceparent: string; event: LadingEvent }> = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${sent.length} messages arrived`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          received.push({
            key: message.key!.toString(),
            contentType: message.headers!['content-type']!.toString(),
            traceparent: message.headers!.traceparent!.toString(),
            event: JSON.parse(message.value!.toString()),
          });
          if (received.length === sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    await bus.close();

    expect(received.every((r) => r.contentType === CLOUDEVENTS_JSON && r.key === r.event.partitionkey)).toBe(true);
    expect(received[0].traceparent).toBe(sent[0].traceparent);
    expect(received.filter((r) => r.key === 'team/a').map((r) => r.event.sequence)).toEqual(sent.filter((e) => e.partitionkey === 'team/a').map((e) => e.sequence));
    expect(new Set(received.map((r) => r.event.id))).toEqual(new Set(sent.map((e) => e.id)));
  });

  it('delivers published events to a subscriber in its consumer group', async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const bus = await createKafkaBus({ brokers, topic, partitions: 1, clientId: 'lading-test' });
    const got: string[] = [];
    const done = new Promise<void>((resolve) => {
      void bus.subscribe(
        (e) => {
          got.push(e.id);
          if (got.length === 2) resolve();
        },
        { group: `sub-${topic}`, fromBeginning: true },
      );
    });
    const sent = [event('r', 1), event('r', 2)];
    await bus.publish(sent);
    await done;
    expect(got).toEqual(sent.map((e) => e.id));
    await bus.close();
  });

  /** Reads every record of a topic with a plain kafkajs consumer (no Lading code): key, headers and raw value. */
  async function readRaw(topic: string, count: number): Promise<Array<{ key: string; headers: Record<string, string>; value: string }>> {
    const kafka = createKafkaClient({ clientId: 'plain-reader', brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `raw-${topic}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const records: Array<{ key: string; headers: Record<string, string>; value: string }> = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${records.length} of ${count} records arrived`)), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
            records.push({ key: message.key?.toString('utf8') ?? '', headers, value: message.value?.toString('utf8') ?? '' });
            if (records.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    return records;
  }

  it('relays outbox events as records any Kafka client reads: structured CloudEvents that conform to the published schemas', async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    const ctx = { source: '//registry.test/lading/manifest', ids: createUuidV7Generator(), now: () => new Date() };
    const context = { actor: { name: null, type: 'anonymous' as const }, request: { id: 'r1', addr: '127.0.0.1', method: 'PUT' as const, useragent: 'test' }, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    const digest = `sha256:${'b'.repeat(64)}`;
    const sent = await db.transaction(async (tx) => {
      await ensureRepository(tx, 'team/app');
      return [
        await appendEvent(tx, ctx, { type: EVENT_TYPES.repositoryCreated, repository: 'team/app', subject: 'team/app', context }),
        await appendEvent(tx, ctx, { type: EVENT_TYPES.manifestPushed, repository: 'team/app', subject: `team/app@${digest}`, context, data: { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 321, tag: 'v1' } }),
        await appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: 'team/app', subject: 'team/app:v1', context, data: { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 321, tag: 'v1' } }),
      ];
    });
    const bus = await createKafkaBus({ brokers, topic, partitions: 2, clientId: 'lading-test' });
    expect(await createOutboxRelay({ db, bus }).drain()).toBe(3);
    await bus.close();
    await db.close();

    const validate = await createEventSchemaValidator();
    const records = await readRaw(topic, 3);
    expect(records.map((r) => r.key)).toEqual(['team/app', 'team/app', 'team/app']);
    expect(records.every((r) => r.headers['content-type'] === CLOUDEVENTS_JSON)).toBe(true);
    expect(records.every((r) => r.headers.traceparent === context.traceparent)).toBe(true);
    const events = records.map((r) => JSON.parse(r.value) as LadingEvent);
    expect(events.map((e) => e.id)).toEqual(sent.map((e) => e.id));
    expect(events.flatMap((e) => validate(e))).toEqual([]);
  });

  it("refuses, as EventsRefusedError, a record larger than the broker's max.message.bytes, and keeps publishing afterwards", async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const bus = await createKafkaBus({ brokers, topic, partitions: 1, clientId: 'lading-test' });
    const huge = event('big/one', 1);
    huge.subject = 'x'.repeat(2 * 1024 * 1024);
    const refused = await bus.publish([huge]).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(EventsRefusedError);
    expect((refused as Error).message).toContain('MESSAGE_TOO_LARGE');
    const fine = event('big/one', 2);
    await bus.publish([fine]);
    const records = await readRaw(topic, 1);
    expect(JSON.parse(records[0].value).id).toBe(fine.id);
    await bus.close();
  });

  it('reports an unreachable broker as an outage, never as a refusal of the records', async () => {
    const bus = await createKafkaBus({ brokers: ['127.0.0.1:1'], topic: 'lading-unreachable', partitions: 1, clientId: 'lading-test', connectionTimeoutMs: 500 });
    const err = await bus.publish([event('r', 1)]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(EventsRefusedError);
    await bus.close();
  }, 60_000);

  it('parks an outbox row Kafka refuses after maxAttempts and relays the others, on a real broker', async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    const ctx = { source: '//registry.test/lading/manifest', ids: createUuidV7Generator(), now: () => new Date() };
    const context = { actor: { name: null, type: 'anonymous' as const }, request: null };
    const ids = await db.transaction(async (tx) => {
      await ensureRepository(tx, 'poison/repo');
      const out: string[] = [];
      for (let i = 0; i < 3; i++) out.push((await appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: 'poison/repo', subject: `poison/repo:t${i}`, context, data: TAG_DATA })).id);
      return out;
    });
    // A record no broker limit admits (written straight into the row: no service writes one this large).
    await db.query(`UPDATE outbox SET event = jsonb_set(event, '{data,namespace}', to_jsonb(repeat('x', 2 * 1024 * 1024))) WHERE id = $1`, [ids[1]]);
    const bus = await createKafkaBus({ brokers, topic, partitions: 1, clientId: 'lading-test' });
    const relay = createOutboxRelay({ db, bus, maxAttempts: 2 });
    expect(await relay.drain()).toBe(1);
    expect(await relay.drain()).toBe(1);
    const rows = (await db.query<{ id: string; published: boolean; attempts: number; parked: boolean; last_error: string | null }>(
      `SELECT id::text AS id, published_at IS NOT NULL AS published, attempts, parked_at IS NOT NULL AS parked, last_error FROM outbox ORDER BY sequence`,
    )).rows;
    expect(rows.map((r) => [r.id, r.published, r.attempts, r.parked])).toEqual([
      [ids[0], true, 0, false],
      [ids[1], false, 2, true],
      [ids[2], true, 0, false],
    ]);
    expect(rows[1].last_error).toContain('MESSAGE_TOO_LARGE');
    const records = await readRaw(topic, 2);
    expect(records.map((r) => JSON.parse(r.value).id)).toEqual([ids[0], ids[2]]);
    await bus.close();
    await db.close();
  });
});
