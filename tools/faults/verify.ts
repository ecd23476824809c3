/**
 * After the faults: every acknowledged manifest must be pullable (by tag and by digest) with every blob byte-exact,
 * must have exactly one outbox event of each kind, and every outbox event of the run must be on the Kafka topic
 * (duplicates allowed when they are the same event), in sequence order per repository.
 */
import { digestOf } from '@lading/oci';
import { logLevel } from 'kafkajs';
import { createKafkaClient } from '@lading/events';
import type pg from 'pg';
import { HttpClient, describe, header, isRetryable, sleep } from './http';
import type { Ack } from './pusher';

/** What the pull check found. */
export interface PullReport {
  manifests: number;
  blobs: number;
  bytes: number;
  lost: string[];
}

/** GETs with a few retries (the cluster has just been through faults; a transient 503 is not a loss). */
async function getWithRetry(http: HttpClient, url: string, headers: Record<string, string> = {}) {
  for (let attempt = 0; ; attempt++) {
    const res = await http.call('GET', url, { headers, label: 'verify' });
    if (!isRetryable(res) || attempt >= 4) return res;
    await sleep(500 * (attempt + 1));
  }
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

/** Pulls every acknowledged manifest by tag and by digest, and every blob it references (following redirects). */
export async function verifyPulls(http: HttpClient, baseUrl: string, acks: Ack[]): Promise<PullReport> {
  const report: PullReport = { manifests: 0, blobs: 0, bytes: 0, lost: [] };
  const lose = (message: string) => {
    if (report.lost.length < 100) report.lost.push(message);
  };
  const lostAcks = new Set<Ack>();
  await pool(acks, 10, async (ack) => {
    for (const ref of [ack.tag, ack.digest]) {
      const res = await getWithRetry(http, `${baseUrl}/v2/${ack.repository}/manifests/${ref}`, { accept: ack.mediaType });
      if (res.status !== 200 || !res.body.equals(ack.manifest) || header(res, 'docker-content-digest') !== ack.digest) {
        lose(`manifest ${ack.repository}:${ref}: ${describe(res)}${res.status === 200 ? ' (different bytes)' : ''}`);
        lostAcks.add(ack);
      }
    }
    report.manifests++;
    for (const blob of ack.blobs) {
      let res = await getWithRetry(http, `${baseUrl}/v2/${ack.repository}/blobs/${blob.digest}`);
      for (let hops = 0; (res.status === 307 || res.status === 302) && hops < 3; hops++) {
        const location = header(res, 'location');
        if (!location) break;
        res = await getWithRetry(http, new URL(location, baseUrl).toString());
      }
      const actual = res.status === 200 ? digestOf(res.body) : null;
      if (actual !== blob.digest || res.body.length !== blob.size) {
        lose(`blob ${ack.repository}@${blob.digest}: ${describe(res)}${res.status === 200 ? ` (${res.body.length} bytes, ${actual})` : ''}`);
        lostAcks.add(ack);
      } else report.bytes += res.body.length;
      report.blobs++;
    }
  });
  report.lost.unshift(...(lostAcks.size ? [`${lostAcks.size} acknowledged manifests lost`] : []));
  return report;
}

/** One outbox row of this run. */
export interface OutboxRow {
  id: string;
  repository: string;
  sequence: number;
  type: string;
  event: { data?: { digest?: string | null; tag?: string | null } };
}

/** The outbox rows of the repositories under a prefix. */
export async function outboxRows(db: pg.Pool, prefix: string): Promise<OutboxRow[]> {
  const r = await db.query(`SELECT id::text AS id, repository, sequence, type, event FROM outbox WHERE repository LIKE $1 ORDER BY repository, sequence`, [
    `${prefix}%`,
  ]);
  return r.rows.map((row) => ({ ...row, sequence: Number(row.sequence) })) as OutboxRow[];
}

/** Exactly one manifest.pushed per acknowledged (repository, digest) and one tag.updated per tag. */
export function verifyEventCounts(rows: OutboxRow[], acks: Ack[]): string[] {
  const count = new Map<string, number>();
  const bump = (key: string) => count.set(key, (count.get(key) ?? 0) + 1);
  for (const row of rows) {
    const data = row.event.data ?? {};
    if (row.type === 'io.lading.manifest.pushed') bump(`m ${row.repository}@${data.digest}`);
    if (row.type === 'io.lading.tag.updated') bump(`t ${row.repository}:${data.tag}`);
    if (row.type === 'io.lading.blob.uploaded') bump(`b ${row.repository}@${data.digest}`);
  }
  const problems: string[] = [];
  for (const ack of acks) {
    const m = count.get(`m ${ack.repository}@${ack.digest}`) ?? 0;
    const t = count.get(`t ${ack.repository}:${ack.tag}`) ?? 0;
    if (m !== 1) problems.push(`${ack.repository}@${ack.digest}: ${m} manifest.pushed events`);
    if (t !== 1) problems.push(`${ack.repository}:${ack.tag}: ${t} tag.updated events`);
    for (const blob of ack.blobs) {
      if (!count.get(`b ${ack.repository}@${blob.digest}`)) problems.push(`${ack.repository}@${blob.digest}: no blob.uploaded event`);
    }
  }
  return problems;
}

/** What the bus check found. */
export interface BusReport {
  messagesRead: number;
  ours: number;
  duplicates: number;
  /** Committed outbox events not on the bus (lost). */
  missing: number;
  /** Events on the bus without an outbox row (invented). */
  invented: number;
  /** Repositories whose events, deduplicated by id, are out of sequence order. */
  outOfOrder: number;
  /** Duplicates whose payload differs from the first copy, or events that differ from their outbox row. */
  differing: number;
  problems: string[];
  ms: number;
}

/**
 * Reads the events topic from the beginning with a fresh consumer group up to the end offsets taken now (the
 * outbox has drained, so every event of the run is below them) and checks the run's events against the outbox.
 */
export async function verifyBus(brokers: string[], topic: string, group: string, prefix: string, rows: OutboxRow[]): Promise<BusReport> {
  const started = Date.now();
  const report: BusReport = { messagesRead: 0, ours: 0, duplicates: 0, missing: 0, invented: 0, outOfOrder: 0, differing: 0, problems: [], ms: 0 };
  const problem = (message: string) => {
    if (report.problems.length < 50) report.problems.push(message);
  };
  const kafka = createKafkaClient({ clientId: 'lading-faults', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 5000, requestTimeout: 30_000 });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<number, bigint>();
  try {
    for (const p of await admin.fetchTopicOffsets(topic)) ends.set(p.partition, BigInt(p.high));
  } finally {
    await admin.disconnect();
  }
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([partition]) => partition));
  const seen = new Map<string, string>(); // id -> message value
  const order = new Map<string, string[]>(); // repository -> ids in bus order (first occurrences)
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 30_000, maxBytes: 16 * 1024 * 1024 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    if (pending.size === 0) done();
    await consumer.run({
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          report.messagesRead++;
          const value = message.value?.toString('utf8') ?? '';
          const key = message.key?.toString('utf8') ?? '';
          if (key.startsWith(prefix) || value.includes(`"partitionkey":"${prefix}`)) {
            report.ours++;
            let id = '';
            let repository = key;
            try {
              const event = JSON.parse(value) as { id: string; partitionkey: string };
              id = event.id;
              repository = event.partitionkey;
            } catch {
              problem(`unparsable message at ${batch.partition}/${message.offset}`);
            }
            const before = seen.get(id);
            if (before !== undefined) {
              report.duplicates++;
              if (before !== value) {
                report.differing++;
                problem(`duplicate ${id} with a different payload`);
              }
            } else {
              seen.set(id, value);
              const list = order.get(repository) ?? [];
              list.push(id);
              order.set(repository, list);
            }
          }
          if (BigInt(message.offset) + 1n >= (ends.get(batch.partition) ?? 0n)) pending.delete(batch.partition);
        }
        if (pending.size === 0) done();
      },
    });
    const timeout = sleep(180_000).then(() => 'timeout' as const);
    if ((await Promise.race([finished, timeout])) === 'timeout') problem(`did not reach the end offsets within 180 s (${report.messagesRead} read)`);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const row of rows) {
    const value = seen.get(row.id);
    if (value === undefined) {
      report.missing++;
      problem(`outbox event ${row.id} (${row.type} ${row.repository} #${row.sequence}) is not on the bus`);
    } else if (value !== JSON.stringify(row.event)) {
      report.differing++;
      problem(`event ${row.id} on the bus differs from its outbox row`);
    }
  }
  for (const id of seen.keys()) {
    if (!byId.has(id)) {
      report.invented++;
      problem(`event ${id} on the bus has no outbox row`);
    }
  }
  for (const [repository, ids] of order) {
    let last = -1;
    for (const id of ids) {
      const seq = byId.get(id)?.sequence ?? -1;
      if (seq < last) {
        report.outOfOrder++;
        problem(`${repository}: sequence ${seq} after ${last} on the bus`);
        break;
      }
      last = seq;
    }
  }
  report.ms = Date.now() - started;
  return report;
}
