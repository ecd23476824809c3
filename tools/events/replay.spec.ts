/**
 * Replay against real Kafka (tools/infra): known events written to a fresh three-partition topic with known
 * timestamps are replayed from a time in the middle (exactly the later ones, in order within each partition), up
 * to a time, filtered, from explicit offsets, by the command line, and by moving a consumer group's offsets.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Partitioners, logLevel } from 'kafkajs';
import { createKafkaClient, EVENT_TYPES, LadingEvent, toKafkaMessage } from '@lading/events';
import { REPO_ROOT, infraSettings } from '@lading/testing';
import { ReplayedRecord, parsePartitionOffsets, replayEvents, resetGroupOffsets } from './event-replay';

const REPOSITORIES = ['team/a', 'team/b', 'team/c', 'ops/d'];
const COUNT = 24;
/** Event i is published with Kafka timestamp base + i seconds (ten minutes ago onwards). */
const base = Date.now() - 10 * 60_000;
const timeOf = (i: number) => new Date(base + i * 1000);

/** Event i: repository i % 4, published at base + i seconds; its type alternates. */
function knownEvent(i: number): LadingEvent {
  const repository = REPOSITORIES[i % REPOSITORIES.length];
  return {
    specversion: '1.0',
    id: `event-${String(i).padStart(2, '0')}`,
    source: '//test/lading/manifest',
    type: i % 3 === 0 ? EVENT_TYPES.tagUpdated : EVENT_TYPES.manifestPushed,
    subject: `${repository}@sha256:${String(i).padStart(64, '0')}`,
    time: timeOf(i).toISOString(),
    datacontenttype: 'application/json',
    partitionkey: repository,
    sequence: String(Math.floor(i / REPOSITORIES.length)).padStart(20, '0'),
    data: {
      repository,
      namespace: repository.split('/')[0],
      digest: `sha256:${String(i).padStart(64, '0')}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: null,
      size: 100,
      tag: null,
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      proxy: null,
      actor: { name: null, type: 'anonymous' },
      request: null,
    },
  };
}

/** The ids, grouped by partition, in the order read. */
function byPartition(records: ReplayedRecord[]): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const r of records) (out[r.partition] ??= []).push(String(r.event.id));
  return out;
}

describe('replaying the events topic', () => {
  const infra = infraSettings();
  const kafka = createKafkaClient({ clientId: 'replay-test', brokers: infra.kafkaBrokers, logLevel: logLevel.NOTHING });
  const topic = `lading.replay-test.${process.pid}.${Date.now()}`;
  /** Where each event landed, from the produce acknowledgements. */
  const written: Array<{ id: string; partition: number; offset: string }> = [];
  /** The ids a correct replay from event `i` (inclusive) to `j` (inclusive) yields, grouped by partition, in offset order. */
  const expected = (i: number, j = COUNT - 1, keep: (n: number) => boolean = () => true) => {
    const out: Record<number, string[]> = {};
    for (const w of written) {
      const n = Number(w.id.slice(6));
      if (n >= i && n <= j && keep(n)) (out[w.partition] ??= []).push(w.id);
    }
    return out;
  };

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    // One at a time, so that offsets follow the event numbers within each partition.
    for (let i = 0; i < COUNT; i++) {
      const [ack] = await producer.send({ topic, messages: [{ ...toKafkaMessage(knownEvent(i)), timestamp: String(timeOf(i).getTime()) }] });
      written.push({ id: knownEvent(i).id, partition: ack.partition, offset: String(ack.baseOffset) });
    }
    await producer.disconnect();
    // The repositories spread over more than one partition (else per-partition order would prove little).
    expect(new Set(written.map((w) => w.partition)).size).toBeGreaterThan(1);
  }, 60_000);
  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([`${topic}.group`, `${topic}.busy`]).catch(() => undefined);
    await admin.disconnect();
  });

  async function replay(options: Partial<Parameters<typeof replayEvents>[0]>): Promise<ReplayedRecord[]> {
    const records: ReplayedRecord[] = [];
    const summary = await replayEvents({ brokers: infra.kafkaBrokers, topic, from: { kind: 'beginning' }, ...options, write: (r) => void records.push(r) });
    expect(summary.unfinished).toEqual([]);
    return records;
  }

  it('from a time in the middle yields exactly the later events, in order within each partition', async () => {
    const records = await replay({ from: { kind: 'time', at: timeOf(10) } });
    expect(records).toHaveLength(COUNT - 10);
    expect(byPartition(records)).toEqual(expected(10));
    // Within a repository the order is the order of the pushes.
    for (const repository of REPOSITORIES) {
      const ids = records.filter((r) => r.event.data?.repository === repository).map((r) => String(r.event.id));
      expect(ids).toEqual([...ids].sort());
    }
  }, 60_000);

  it('stops at --until, and filters by repository and type', async () => {
    expect(byPartition(await replay({ from: { kind: 'time', at: timeOf(10) }, until: timeOf(15) }))).toEqual(expected(10, 15));
    const filtered = await replay({ repository: 'team/b', types: [EVENT_TYPES.tagUpdated] });
    expect(filtered.map((r) => r.event.id)).toEqual(written.map((w) => w.id).filter((id) => Number(id.slice(6)) % 4 === 1 && Number(id.slice(6)) % 3 === 0));
    expect(filtered.length).toBeGreaterThan(0);
  }, 60_000);

  it('starts each named partition at its offset, and reads nothing of the others', async () => {
    const partition = written[0].partition;
    const inPartition = written.filter((w) => w.partition === partition);
    const start = inPartition[2];
    const records = await replay({ from: { kind: 'offsets', offsets: parsePartitionOffsets(`${partition}:${start.offset}`) } });
    expect(records.map((r) => r.event.id)).toEqual(inPartition.slice(2).map((w) => w.id));
    expect(() => parsePartitionOffsets('0:1,x')).toThrow('"x" is not partition:offset');
  }, 60_000);

  it('prints one CloudEvent JSON per line from the command line', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'tools/events/replay.ts', '--brokers', infra.kafkaBrokers.join(','), '--topic', topic, '--from-time', timeOf(20).toISOString()],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect({ code, stderr }).toEqual({ code: 0, stderr: 'replay: 4 event(s) written, 0 filtered out\n' });
    const lines = stdout.trim().split('\n');
    const events = lines.map((line) => JSON.parse(line) as LadingEvent);
    expect(events.map((e) => e.id).sort()).toEqual(['event-20', 'event-21', 'event-22', 'event-23']);
    expect(events.find((e) => e.id === 'event-21')).toEqual(knownEvent(21));
  }, 60_000);

  it('moves a consumer group back to a time, so its consumer gets exactly the later events again', async () => {
    const group = `${topic}.group`;
    const consumeAll = async (count: number): Promise<string[]> => {
      const consumer = kafka.consumer({ groupId: group });
      const seen: string[] = [];
      let done: () => void = () => undefined;
      const enough = new Promise<void>((resolve) => (done = resolve));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(String((JSON.parse(String(message.value)) as LadingEvent).id));
          if (seen.length >= count) done();
        },
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([enough, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
      // A moment more: anything beyond `count` would show up here.
      await new Promise((r) => setTimeout(r, 1000));
      await consumer.disconnect();
      return seen;
    };
    expect((await consumeAll(COUNT)).sort()).toEqual(written.map((w) => w.id).sort());
    const offsets = await resetGroupOffsets({ brokers: infra.kafkaBrokers, topic, group, from: { kind: 'time', at: timeOf(18) } });
    expect(offsets).toHaveLength(3);
    expect((await consumeAll(COUNT - 18)).sort()).toEqual(written.slice(18).map((w) => w.id).sort());
  }, 90_000);

  it('refuses to move a group that has running consumers', async () => {
    const group = `${topic}.busy`;
    const consumer = kafka.consumer({ groupId: group });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let joined: () => void = () => undefined;
    const inGroup = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    await consumer.run({ eachMessage: async () => undefined });
    await inGroup;
    try {
      await expect(resetGroupOffsets({ brokers: infra.kafkaBrokers, topic, group, from: { kind: 'beginning' } })).rejects.toThrow(/running member\(s\).*stop them first/);
    } finally {
      await consumer.disconnect();
    }
  }, 60_000);
});
