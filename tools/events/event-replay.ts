/**
 * Replaying the events topic from any point: the start is the beginning, a time (Kafka's timestamp index: the first
 * record at or after it in each partition) or explicit `partition:offset` pairs. Either the records are read once,
 * up to the end the topic had when the replay started, by a throwaway consumer (no committed offsets, group deleted
 * afterwards), or a consumer group's committed offsets are moved to the start so that the group's own consumers
 * (a scanner, a CI bridge) process everything again from there at their next start.
 */
import { randomUUID } from 'node:crypto';
import { Admin, Kafka, logLevel } from 'kafkajs';
import { createKafkaClient } from '@lading/events';

/** Where a replay starts. */
export type ReplayStart = { kind: 'beginning' } | { kind: 'time'; at: Date } | { kind: 'offsets'; offsets: Map<number, string> };

/** A partition's offset. */
export interface PartitionOffset {
  partition: number;
  offset: string;
}

/** A replayed record: the event as its JSON value, and where it was. */
export interface ReplayedRecord {
  partition: number;
  offset: string;
  /** The record's Kafka timestamp (when it was published). */
  timestamp: Date;
  event: { id?: string; type?: string; data?: { repository?: string } } & Record<string, unknown>;
}

/** What to replay. */
export interface ReplayOptions {
  brokers: string[];
  topic: string;
  from: ReplayStart;
  /** Stop a partition at its first record published after this time. */
  until?: Date;
  /** Only events of this repository. */
  repository?: string;
  /** Only events of these types. */
  types?: string[];
  /** Receives each record, in order within its partition. */
  write: (record: ReplayedRecord) => Promise<void> | void;
  /** Give up when no record arrived for this long although partitions are unfinished (default 15 s). */
  idleTimeoutMs?: number;
}

/** What a replay did. */
export interface ReplaySummary {
  written: number;
  /** Records read but left out by `repository`/`types`. */
  filtered: number;
  /** Partitions that did not reach their end before the idle timeout (empty when the replay is complete). */
  unfinished: number[];
}

function kafkaOf(brokers: string[]): Kafka {
  return createKafkaClient({ clientId: 'lading-replay', brokers, logLevel: logLevel.ERROR });
}

/** Parses `0:42,1:17` into a map of partition → offset. */
export function parsePartitionOffsets(text: string): Map<number, string> {
  const offsets = new Map<number, string>();
  for (const pair of text.split(',')) {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(pair);
    if (!m) throw new Error(`"${pair}" is not partition:offset`);
    offsets.set(Number(m[1]), m[2]);
  }
  return offsets;
}

/** The first offset to read in each partition (partitions an explicit offset list leaves out are not replayed). */
export async function startOffsets(admin: Admin, topic: string, from: ReplayStart): Promise<PartitionOffset[]> {
  if (from.kind === 'time') return (await admin.fetchTopicOffsetsByTimestamp(topic, from.at.getTime())).map(({ partition, offset }) => ({ partition, offset }));
  const bounds = await admin.fetchTopicOffsets(topic);
  if (from.kind === 'beginning') return bounds.map(({ partition, low }) => ({ partition, offset: low }));
  return [...from.offsets].map(([partition, offset]) => {
    const bound = bounds.find((b) => b.partition === partition);
    if (!bound) throw new Error(`the topic ${topic} has no partition ${partition}`);
    // An offset below the oldest kept record starts at the oldest (retention has removed the others).
    return { partition, offset: BigInt(offset) < BigInt(bound.low) ? bound.low : offset };
  });
}

/** Reads the topic from `from` to the end it has now, handing matching records to `write`. */
export async function replayEvents(options: ReplayOptions): Promise<ReplaySummary> {
  const kafka = kafkaOf(options.brokers);
  const admin = kafka.admin();
  await admin.connect();
  const summary: ReplaySummary = { written: 0, filtered: 0, unfinished: [] };
  try {
    const starts = await startOffsets(admin, options.topic, options.from);
    const ends = new Map((await admin.fetchTopicOffsets(options.topic)).map((p) => [p.partition, BigInt(p.high)]));
    // Per partition: the next offset wanted and the end (exclusive); a partition with nothing to read is done.
    const pending = new Map<number, { next: bigint; end: bigint }>();
    for (const { partition, offset } of starts) {
      const end = ends.get(partition) ?? 0n;
      if (BigInt(offset) < end) pending.set(partition, { next: BigInt(offset), end });
    }
    if (pending.size === 0) return summary;

    const groupId = `lading-replay-${randomUUID()}`;
    const consumer = kafka.consumer({ groupId });
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let lastProgress = Date.now();
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: options.topic, fromBeginning: false });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const state = pending.get(partition);
          const offset = BigInt(message.offset);
          // Before the seek takes effect, or past the end the replay started with: not part of this replay.
          if (!state || offset < state.next || offset >= state.end) return;
          lastProgress = Date.now();
          const timestamp = new Date(Number(message.timestamp));
          if (options.until && timestamp > options.until) {
            pending.delete(partition);
          } else {
            state.next = offset + 1n;
            if (state.next >= state.end) pending.delete(partition);
            const event = parseEvent(message.value);
            const repository = event?.data?.repository ?? message.key?.toString('utf8');
            if (event && (!options.repository || repository === options.repository) && (!options.types || options.types.includes(String(event.type)))) {
              await options.write({ partition, offset: message.offset, timestamp, event });
              summary.written++;
            } else summary.filtered++;
          }
          if (pending.size === 0) finish();
        },
      });
      for (const [partition, { next }] of pending) consumer.seek({ topic: options.topic, partition, offset: next.toString() });
      const idleTimeoutMs = options.idleTimeoutMs ?? 15_000;
      const watchdog = setInterval(() => {
        if (Date.now() - lastProgress > idleTimeoutMs) finish();
      }, 250);
      await finished;
      clearInterval(watchdog);
      summary.unfinished = [...pending.keys()].sort((a, b) => a - b);
    } finally {
      await consumer.disconnect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    return summary;
  } finally {
    await admin.disconnect();
  }
}

function parseEvent(value: Buffer | null): ReplayedRecord['event'] | null {
  try {
    const doc = JSON.parse(value?.toString('utf8') ?? '') as unknown;
    return doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as ReplayedRecord['event']) : null;
  } catch {
    return null;
  }
}

/**
 * Moves a consumer group's committed offsets to `from`, so that its consumers re-read from there. Kafka refuses
 * while the group has running members: stop them first. Returns the offsets set.
 */
export async function resetGroupOffsets(options: { brokers: string[]; topic: string; group: string; from: ReplayStart }): Promise<PartitionOffset[]> {
  const admin = kafkaOf(options.brokers).admin();
  await admin.connect();
  try {
    const [description] = (await admin.describeGroups([options.group])).groups;
    if (description && description.members.length > 0) {
      throw new Error(`the group ${options.group} has ${description.members.length} running member(s) (state ${description.state}): stop them first`);
    }
    const partitions = await startOffsets(admin, options.topic, options.from);
    await admin.setOffsets({ groupId: options.group, topic: options.topic, partitions });
    return partitions;
  } finally {
    await admin.disconnect();
  }
}
