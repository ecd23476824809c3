import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { infraSettings } from '@lading/testing';
import type { LadingEvent } from './event-types';
import { CLOUDEVENTS_JSON, createKafkaBus } from './kafka-bus';

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
      references: [], subject: null, fromRepository: null, actor: { name: null, type: 'anonymous' }, request: null,
    },
  };
}

describe('kafka bus on a real broker', () => {
  it('creates its topic and publishes structured CloudEvents keyed by repository, readable by a plain Kafka client', async () => {
    const topic = `lading-test-${randomBytes(4).toString('hex')}`;
    const bus = await createKafkaBus({ brokers, topic, partitions: 3, clientId: 'lading-test' });
    const sent = [event('team/a', 1), event('team/b', 1), event('team/a', 2), event('team/a', 3)];
    await bus.publish(sent);

    const kafka = new Kafka({ clientId: 'plain-reader', brokers, logLevel: logLevel.NOTHING });
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
});
