/**
 * Faults: nothing acknowledged is lost. Brings up tools/infra and tools/cluster, runs 16 concurrent pushers through
 * the load balancer, and meanwhile kills service processes (kill -9) and stops Postgres, MinIO and Kafka; then checks
 * that every manifest that got a 201 is pullable with every blob byte-exact, that each committed change has exactly
 * one outbox event, and that every outbox event reached the Kafka topic.
 *
 *   node --import tsx tools/faults/fault-test.ts [--short|--soak]
 *
 * --short (default, for `npm test`): about 2-3 minutes, every process killed once (plus a relay holder during the drain after a 30-40 s Kafka outage), one
 * Postgres restart, one MinIO restart and one Kafka stop/start. --soak: 10 minutes of random faults.
 * The cluster is stopped at the end; tools/infra is left running (every component stopped is started again).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { HttpClient, Resp, Result, errorCode, header, sleep } from './http';
import {
  Component,
  PORTS,
  PROCESSES,
  ProcessName,
  ROOT,
  backlog,
  cluster,
  infra,
  infraEnv,
  livePid,
  openPool,
  refusedRows,
  relayHolders,
} from './control';
import { makeBlob } from '@lading/testing';
import { Ack, PushStats, Pusher } from './pusher';
import { outboxRows, verifyBus, verifyEventCounts, verifyPulls } from './verify';

const MODE = process.argv.includes('--soak') ? 'soak' : 'short';
const PUSHERS = 16;
const REQUEST_TIMEOUT_MS = 35_000;
/** The blob service's upload lease (services/blob/src/blob-service.ts, uploadLeaseMs default). */
const LEASE_MS = 60_000;
/** A request to a service whose dependency is down must be answered within this (the pool's connect timeout is 5 s). */
const PROBE_LIMIT_MS = 10_000;
const SOAK_MS = 10 * 60_000;
/** How long Kafka stays stopped under the push load (the issue's fault: 2 minutes; the short form keeps CI quick). */
const KAFKA_DOWN_MS: [number, number] = MODE === 'soak' ? [120_000, 120_000] : [30_000, 40_000];
/** The longest the outbox may take to drain once Kafka is back. */
const DRAIN_LIMIT_MS = 60_000;
const TOPIC = 'lading.events';
const LOGS = path.join(ROOT, '.infra', 'logs');

const rand = (min: number, max: number) => min + Math.random() * (max - min);
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
const shuffle = <T>(items: readonly T[]): T[] => {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
};
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (message: string) => console.log(`[${elapsed().padStart(6)}] ${message}`);

// ------------------------------------------------------------------------------------------------ checks
const results: Array<{ ok: boolean; name: string; detail: string }> = [];
function check(ok: boolean, name: string, detail = ''): boolean {
  results.push({ ok, name, detail });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

// ------------------------------------------------------------------------------------------------ figures
const kills: Record<string, number> = Object.fromEntries(PROCESSES.map((p) => [p, 0]));
let relayKills = 0;
let relayCaught = 0;
const depRestarts: Record<Component, number> = { postgres: 0, minio: 0, kafka: 0 };
const restartTimes: Array<{ name: string; readyMs: number | null; lbMs: number | null }> = [];
const depRecoveries: Array<{ component: Component; downMs: number; recoverMs: number | null }> = [];
const probeFigures = { total: 0, ok: 0, maxMs: 0 };
let maxBacklog = 0;
const kafkaDrains: number[] = [];
const gatewayOutages: Array<[number, number]> = [];
const unexpectedExits: string[] = [];

function stats(values: number[]): string {
  if (values.length === 0) return 'n/a';
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return `${sorted[0]} / ${median} / ${sorted[sorted.length - 1]} ms`;
}

// ------------------------------------------------------------------------------------------------ the run
async function main(): Promise<number> {
  log(`== faults (${MODE}): tools/infra up`);
  const up = await infra('up');
  if (!check(up.code === 0, 'tools/infra up', up.code === 0 ? '' : up.stderr.slice(-500))) return finish();
  const env = infraEnv();
  await cluster('down');
  // Fresh process logs: scanned for crashes at the end.
  for (const file of readdirSync(LOGS)) if (/^cluster-.*\.log$/.test(file)) rmSync(path.join(LOGS, file), { force: true });
  log('tools/cluster up');
  const cl = await cluster('up');
  const lbLine = cl.stdout.trim().split('\n').pop() ?? '';
  if (!check(cl.code === 0 && lbLine.startsWith('LADING_URL='), 'tools/cluster up', cl.code === 0 ? lbLine : cl.stderr.slice(-800))) {
    await cluster('down');
    return finish();
  }
  const baseUrl = lbLine.slice('LADING_URL='.length);

  const db = openPool(env.LADING_DATABASE_URL);
  const http = new HttpClient(REQUEST_TIMEOUT_MS);
  const pollHttp = new HttpClient(5_000, 8); // readiness polls: refused connections are expected there
  const runId = `r${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const prefix = `faults/${runId}/`;
  const stats = new PushStats();
  const acks: Ack[] = [];
  const stoppedComponents = new Set<Component>();
  const transition = new Set<string>();
  let stopping = false;
  let monitors: NodeJS.Timeout[] = [];
  log(`run ${runId}: ${PUSHERS} pushers through ${baseUrl}, repositories ${prefix}*`);

  try {
    // A seed image, for the probes.
    const seedAcks: Ack[] = [];
    const seed = new Pusher(0, { http, baseUrl, repository: `${prefix}seed`, stats: new PushStats(), acks: seedAcks, stopping: () => seedAcks.length > 0, leaseMs: LEASE_MS });
    await Promise.race([seed.run(), sleep(60_000)]);
    if (!check(seedAcks.length === 1, 'seed image pushed')) return finish();
    const seedAck = seedAcks[0];
    const seedRepo = seedAck.repository;
    const seedBlob = seedAck.blobs[1];

    // Monitors: outbox backlog, processes that exit without being killed.
    monitors = [
      setInterval(() => {
        backlog(db)
          .then((n) => (maxBacklog = Math.max(maxBacklog, n)))
          .catch(() => undefined);
      }, 1000),
      setInterval(() => {
        for (const name of PROCESSES) {
          if (transition.has(name) || livePid(name)) continue;
          unexpectedExits.push(`${name} at ${elapsed()}`);
          transition.add(name);
          log(`${name} exited on its own; restarting it`);
          void cluster('start', name).finally(() => transition.delete(name));
        }
      }, 1000),
    ];

    const pushers = Array.from({ length: PUSHERS }, (_, i) =>
      new Pusher(i + 1, { http, baseUrl, repository: `${prefix}p${i + 1}`, stats, acks, stopping: () => stopping, leaseMs: LEASE_MS }).run(),
    );

    /** Polls until `probe` answers 2xx; ms from `since`, or null. */
    const firstOk = async (probe: () => Promise<Result>, since: number, limitMs: number, everyMs = 100): Promise<number | null> => {
      while (Date.now() - since < limitMs) {
        const res = await probe();
        if (res.status >= 200 && res.status < 300) return Date.now() - since;
        await sleep(everyMs);
      }
      return null;
    };
    const lbProbe = (name: ProcessName) => (): Promise<Result> => {
      if (name.startsWith('gateway')) return pollHttp.call('GET', `${baseUrl}/v2/`);
      if (name.startsWith('blob')) return pollHttp.call('HEAD', `${baseUrl}/v2/${seedRepo}/blobs/${seedBlob.digest}`);
      return pollHttp.call('HEAD', `${baseUrl}/v2/${seedRepo}/manifests/${seedAck.tag}`, { headers: { accept: seedAck.mediaType } });
    };

    const killAndRestart = async (name: ProcessName, why: string) => {
      transition.add(name);
      try {
        const killedAt = Date.now();
        const k = await cluster('kill', name);
        kills[name]++;
        log(`kill -9 ${name}${why ? ` (${why})` : ''}`);
        await sleep(rand(500, 3000));
        const restartAt = Date.now();
        const [s, readyMs, lbMs] = await Promise.all([
          cluster('start', name),
          firstOk(() => pollHttp.call('GET', `http://127.0.0.1:${PORTS[name]}/readyz`, { timeoutMs: 2000 }), restartAt, 60_000, 50),
          firstOk(lbProbe(name), restartAt, 60_000),
        ]);
        if (name.startsWith('gateway')) gatewayOutages.push([killedAt, Date.now()]);
        restartTimes.push({ name, readyMs, lbMs });
        check(k.code === 0 && s.code === 0 && readyMs !== null, `kill -9 ${name}${why ? ` (${why})` : ''}: restarted`, `first 2xx: /readyz ${readyMs} ms, through the LB ${lbMs} ms`);
      } finally {
        transition.delete(name);
      }
    };

    /** Kills a process whose relay holds a slice lock (is publishing) right now; any relay process when none is caught. */
    const killRelayHolder = async () => {
      let holder: ProcessName | null = null;
      const until = Date.now() + 8000;
      while (!holder && Date.now() < until) {
        holder = (await relayHolders(db).catch(() => []))[0] ?? null;
        if (!holder) await sleep(20);
      }
      relayKills++;
      if (holder) relayCaught++;
      await killAndRestart(holder ?? pick(['blob-1', 'blob-2', 'manifest-1'] as const), holder ? 'a relay holder, while publishing' : 'a relay; none caught publishing');
    };

    /** The answer a request must get while a dependency is down: 503 UNAVAILABLE (HEAD: no body) in time. */
    const expect503 = (what: string, res: Result, method: string, failures: string[]) => {
      probeFigures.total++;
      probeFigures.maxMs = Math.max(probeFigures.maxMs, res.ms);
      const ok = res.status === 503 && (method === 'HEAD' || errorCode((res as Resp).body) === 'UNAVAILABLE') && res.ms <= PROBE_LIMIT_MS;
      if (ok) probeFigures.ok++;
      else failures.push(`${what}: ${res.status === 0 ? (res.hung ? 'hang' : res.error) : `${res.status} ${(res as Resp).body.toString('utf8').slice(0, 160)}`} in ${res.ms} ms`);
    };

    const dependencyFault = async (component: 'postgres' | 'minio') => {
      // A session opened beforehand, for the PATCH probe while MinIO is down.
      const session = component === 'minio' ? await http.call('POST', `${baseUrl}/v2/${seedRepo}/blobs/uploads/`, { label: 'probe' }) : null;
      const sessionUrl = session?.status === 202 ? new URL(header(session, 'location') as string, baseUrl).toString() : null;
      stoppedComponents.add(component);
      const stop = await infra('stop', component);
      const downAt = Date.now();
      depRestarts[component]++;
      log(`tools/infra stop ${component} (${stop.ms} ms)`);
      await sleep(1000);
      const failures: string[] = [];
      for (let round = 0; round < 2; round++) {
        for (const [target, base] of [['gateway-1', `http://127.0.0.1:${PORTS['gateway-1']}`], ['LB', baseUrl]] as const) {
          const probe = async (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) =>
            expect503(`${component} down, ${method} ${path} via ${target}`, await http.call(method, `${base}${path}`, { headers, body, timeoutMs: 15_000, label: 'probe' }), method, failures);
          if (component === 'postgres') {
            await probe('GET', `/v2/${seedRepo}/manifests/${seedAck.tag}`, { accept: seedAck.mediaType });
            await probe('HEAD', `/v2/${seedRepo}/manifests/${seedAck.digest}`, { accept: seedAck.mediaType });
            await probe('GET', `/v2/${seedRepo}/blobs/${seedBlob.digest}`);
            await probe('HEAD', `/v2/${seedRepo}/blobs/${seedBlob.digest}`);
            await probe('POST', `/v2/${seedRepo}/blobs/uploads/`);
            await probe('GET', `/v2/${seedRepo}/tags/list`);
          } else {
            const blob = makeBlob(4096);
            await probe('POST', `/v2/${seedRepo}/blobs/uploads/?digest=${blob.digest}`, { 'content-type': 'application/octet-stream' }, blob.data);
            await probe('GET', `/v2/${seedRepo}/blobs/${seedBlob.digest}`, { range: 'bytes=0-9' });
            if (sessionUrl) {
              await probe('PATCH', new URL(sessionUrl).pathname, { 'content-type': 'application/octet-stream', 'content-range': '0-1023' }, blob.data.subarray(0, 1024));
            }
          }
        }
        await sleep(1500);
      }
      const ready = await pollHttp.call('GET', `http://127.0.0.1:${PORTS['blob-1']}/readyz`, { timeoutMs: 15_000 });
      if (ready.status !== 503) failures.push(`blob-1 /readyz answered ${ready.status} while ${component} was down`);
      const start = await infra('start', component);
      if (start.code === 0) stoppedComponents.delete(component);
      const backAt = Date.now();
      const recoverProbe = (): Promise<Result> => {
        if (component === 'postgres') return pollHttp.call('GET', `${baseUrl}/v2/${seedRepo}/manifests/${seedAck.tag}`, { headers: { accept: seedAck.mediaType }, timeoutMs: 15_000 });
        const blob = makeBlob(2048);
        return pollHttp.call('POST', `${baseUrl}/v2/${seedRepo}/blobs/uploads/?digest=${blob.digest}`, { body: blob.data, timeoutMs: 15_000 });
      };
      const recoverMs = await firstOk(recoverProbe, backAt, 60_000, 200);
      depRecoveries.push({ component, downMs: backAt - downAt, recoverMs });
      log(`tools/infra start ${component} (${start.ms} ms); first 2xx through the LB ${recoverMs} ms later`);
      check(stop.code === 0 && start.code === 0, `${component} stopped and started`, `down ${backAt - downAt} ms`);
      check(failures.length === 0, `${component} down: the API answers 503 UNAVAILABLE within ${PROBE_LIMIT_MS / 1000} s`, failures.slice(0, 4).join('; '));
      check(recoverMs !== null, `${component} back: the API recovers by itself`, `first 2xx after ${recoverMs} ms`);
    };

    const kafkaFault = async (thenKillRelay: boolean) => {
      stoppedComponents.add('kafka');
      const stop = await infra('stop', 'kafka');
      depRestarts.kafka++;
      const downAt = Date.now();
      const ackedBefore = stats.acked;
      log(`tools/infra stop kafka (${stop.ms} ms); pushes go on`);
      await sleep(rand(...KAFKA_DOWN_MS));
      const ackedWhileDown = stats.acked - ackedBefore;
      const backlogThen = await backlog(db).catch(() => -1);
      const start = await infra('start', 'kafka');
      if (start.code === 0) stoppedComponents.delete('kafka');
      const backAt = Date.now();
      log(`tools/infra start kafka (${start.ms} ms); backlog ${backlogThen}`);
      check(stop.code === 0 && start.code === 0, 'kafka stopped and started', `down ${backAt - downAt} ms`);
      check(ackedWhileDown > 0, 'kafka down: pushes keep succeeding', `${ackedWhileDown} manifests acknowledged while Kafka was down`);
      check(backlogThen > 0, 'kafka down: the outbox holds the events (backlog when Kafka came back)', `${backlogThen}`);
      // Watch the drain from the moment Kafka is back, while a relay holder is killed in the middle of it.
      const drained = (async (): Promise<number | null> => {
        while (Date.now() - backAt < DRAIN_LIMIT_MS + 30_000) {
          const n = await backlog(db, backAt).catch(() => -1);
          if (n === 0) return Date.now() - backAt;
          await sleep(200);
        }
        return null;
      })();
      if (thenKillRelay) await killRelayHolder();
      const drainMs = await drained;
      depRecoveries.push({ component: 'kafka', downMs: backAt - downAt, recoverMs: drainMs });
      if (drainMs !== null) kafkaDrains.push(drainMs);
      check(drainMs !== null && drainMs <= DRAIN_LIMIT_MS, `kafka back: the outbox drains everything held while it was down in < ${DRAIN_LIMIT_MS / 1000} s`, `in ${drainMs} ms (backlog ${backlogThen})`);
    };

    // The faults.
    try {
      await sleep(3000);
      if (MODE === 'short') {
        const plan: Array<() => Promise<void>> = [
          ...PROCESSES.map((name) => () => killAndRestart(name, '')),
          () => dependencyFault('postgres'),
          () => dependencyFault('minio'),
          () => kafkaFault(true),
        ];
        for (const fault of shuffle(plan)) {
          await fault();
          await sleep(rand(1000, 2500));
        }
      } else {
        const soakStart = Date.now();
        // The issue's fault first: Kafka down for 2 minutes under load, a relay holder killed during the drain.
        await kafkaFault(true);
        let n = 1;
        while (Date.now() - soakStart < SOAK_MS) {
          const r = Math.random();
          if (r < 0.55) await killAndRestart(pick(PROCESSES), '');
          else if (r < 0.65) await killRelayHolder();
          else if (r < 0.77) await dependencyFault('postgres');
          else if (r < 0.89) await dependencyFault('minio');
          else await kafkaFault(n++ % 2 === 0);
          await sleep(rand(3000, 8000));
        }
      }
      await sleep(2000);
    } finally {
      for (const component of [...stoppedComponents]) {
        log(`restoring ${component}`);
        const s = await infra('start', component);
        if (s.code === 0) stoppedComponents.delete(component);
      }
    }

    // Stop the pushers (an image in flight is abandoned: it was never acknowledged).
    stopping = true;
    const stoppedAt = Date.now();
    const finishedPushers = await Promise.race([Promise.all(pushers).then(() => true), sleep(120_000).then(() => false)]);
    check(finishedPushers, 'pushers stopped', `in ${Date.now() - stoppedAt} ms`);
    for (const m of monitors) clearInterval(m);
    monitors = [];

    // Drain, then verify.
    const drainStart = Date.now();
    let drained = false;
    while (Date.now() - drainStart < 60_000) {
      if ((await backlog(db).catch(() => -1)) === 0) {
        drained = true;
        break;
      }
      await sleep(250);
    }
    check(drained, 'outbox drained after the run', `${Date.now() - drainStart} ms`);

    check(unexpectedExits.length === 0, 'no process exited on its own', unexpectedExits.join(', '));
    const crashes = crashLines();
    check(crashes.length === 0, 'no crash (unhandled error, fatal log line) in the service logs', crashes.slice(0, 3).join(' | '));
    check(stats.acked > 0, 'pushes acknowledged', `${stats.acked}`);
    log(`verifying ${acks.length} acknowledged manifests`);
    const verifyHttp = new HttpClient(REQUEST_TIMEOUT_MS, 16);
    const pulls = await verifyPulls(verifyHttp, baseUrl, acks);
    check(pulls.lost.length === 0, 'every acknowledged manifest pullable by tag and digest, every blob byte-exact', pulls.lost.slice(0, 5).join('; ') || `${pulls.manifests} manifests, ${pulls.blobs} blobs, ${(pulls.bytes / 1048576).toFixed(1)} MiB`);
    check(verifyHttp.stats.server500 + verifyHttp.stats.hung === 0, 'verification requests: no 500s, no hangs', verifyHttp.stats.problems.slice(0, 3).join('; '));
    await verifyHttp.close();

    const rows = await outboxRows(db, prefix);
    const countProblems = verifyEventCounts(rows, [seedAck, ...acks]);
    check(countProblems.length === 0, 'exactly one manifest.pushed and one tag.updated outbox event per acknowledged push', countProblems.slice(0, 5).join('; ') || `${rows.length} outbox rows`);

    const bus = await verifyBus(env.LADING_KAFKA_BROKERS.split(','), TOPIC, `lading-faults-${runId}`, prefix, rows);
    const busDetail = bus.problems.slice(0, 5).join('; ');
    check(bus.missing === 0 && bus.invented === 0, 'consumed event ids = committed outbox events (0 lost, 0 invented)', busDetail || `${rows.length} events, ${bus.ours} messages of this run among ${bus.messagesRead} read in ${bus.ms} ms`);
    check(bus.outOfOrder === 0, "no repository's events out of sequence order on the bus, after dedupe by id", busDetail);
    check(bus.differing === 0, 'duplicates on the bus identical to their outbox row', `${bus.duplicates} duplicates`);
    check(bus.problems.length === 0, 'nothing else wrong on the bus', busDetail);
    const refused = await refusedRows(db, prefix);
    check(refused.attempted === 0 && refused.parked === 0, 'the Kafka outage counted no attempt against any event and parked none', `${refused.attempted} rows with attempts, ${refused.parked} parked`);
    check(maxBacklog > 0, 'max outbox backlog (the events held while Kafka was down)', `${maxBacklog}`);
    check(kafkaDrains.length > 0 && kafkaDrains.every((ms) => ms <= DRAIN_LIMIT_MS), `drain time after Kafka returned (< ${DRAIN_LIMIT_MS / 1000} s)`, stats2(kafkaDrains));

    // What the client saw during the run.
    const s = http.stats;
    check(s.server500 === 0, '500s seen = 0', s.problems.filter((p) => p.startsWith('500')).slice(0, 3).join('; '));
    check(s.hung === 0, 'hung requests = 0', s.problems.filter((p) => p.startsWith('hang')).slice(0, 3).join('; '));
    check(s.stackTraces === 0 && s.bad503 === 0 && s.other5xx === 0, 'error answers are clean OCI envelopes (no stack, 503 = UNAVAILABLE)', s.problems.slice(0, 3).join('; '));
    check(stats.badUploadStatus === 0, 'upload sessions answer 204 (resume) or 404 BLOB_UPLOAD_UNKNOWN (start over) after an error');
    check(stats.stuckLeases === 0, 'a 416 for a killed writer\'s lease clears within twice the lease time (a loaded box adds retry and restart delays to the lease)', `${stats.leaseWaits} waits, longest ${stats.leaseWaitMaxMs} ms`);
    check(stats.failures.length === 0, 'no unexpected answers to the pushers', stats.failures.slice(0, 5).join('; '));
    const outsideOutage = s.lbErrorTimes.filter((t) => !gatewayOutages.some(([a, b]) => t >= a - 1000 && t <= b + 5000));
    check(outsideOutage.length === 0, 'load-balancer 502s only while a gateway was down', `${s.lb502} 502/504s, ${outsideOutage.length} outside a gateway outage`);

    // Figures.
    const lines = [
      ['mode', `${MODE}, run ${runId}, ${elapsed()}`],
      ['kills (kill -9)', `${PROCESSES.map((p) => `${p} ${kills[p]}`).join(', ')}; relay holder ${relayKills} (caught publishing ${relayCaught})`],
      ['dependency restarts', `postgres ${depRestarts.postgres}, minio ${depRestarts.minio}, kafka stop/start ${depRestarts.kafka}`],
      ['images pushed', `${stats.images} attempted, ${stats.acked} acknowledged, ${stats.abandoned} abandoned`],
      ['blobs by upload style', Object.entries(stats.blobs).map(([k, v]) => `${k} ${v}`).join(', ')],
      ['lost', `${pulls.lost.length === 0 ? 0 : pulls.lost[0]}`],
      ['requests', `${s.requests}; 503 UNAVAILABLE ${s.unavailable503}, 500 ${s.server500}, other 5xx ${s.other5xx + s.bad503}, hung ${s.hung}, LB 502 ${s.lb502}, dropped ${s.transport}`],
      ['upload sessions', `resumed ${stats.resumed}, restarted after 404 ${stats.restarted}, committed but unanswered ${stats.committedUnanswered}, lease waits ${stats.leaseWaits} (max ${stats.leaseWaitMaxMs} ms)`],
      ['first 2xx after restart, /readyz', stats2(restartTimes.map((r) => r.readyMs))],
      ['first 2xx after restart, via LB', stats2(restartTimes.map((r) => r.lbMs))],
      ...restartTimes.map((r) => [`  ${r.name}`, `/readyz ${r.readyMs} ms, LB ${r.lbMs} ms`]),
      ['dependency down: probes', `${probeFigures.ok}/${probeFigures.total} answered 503 UNAVAILABLE, slowest ${probeFigures.maxMs} ms`],
      ...depRecoveries.map((d) => [`  ${d.component}`, `down ${d.downMs} ms, ${d.component === 'kafka' ? 'backlog drained' : 'first 2xx'} ${d.recoverMs} ms after start`]),
      ['outbox', `max backlog ${maxBacklog}, drain after Kafka back ${stats2(kafkaDrains)}`],
      ['bus', `${bus.ours} events of this run, ${bus.duplicates} duplicates, ${bus.missing} missing`],
    ];
    console.log('\nfigures');
    for (const [k, v] of lines) console.log(`  ${k.padEnd(36)} ${v}`);
    console.log('');
  } finally {
    stopping = true;
    for (const m of monitors) clearInterval(m);
    for (const component of [...stoppedComponents]) await infra('start', component);
    await cluster('down');
    await db.end().catch(() => undefined);
    await http.close().catch(() => undefined);
    await pollHttp.close().catch(() => undefined);
  }
  return finish();
}

/** Lines of the service logs that show a crash: an unhandled error or a fatal log line. */
function crashLines(): string[] {
  const found: string[] = [];
  for (const file of readdirSync(LOGS)) {
    if (!/^cluster-.*\.log$/.test(file) || file === 'cluster-nginx.log') continue;
    for (const line of readFileSync(path.join(LOGS, file), 'utf8').split('\n')) {
      if (/Unhandled 'error' event|UnhandledPromiseRejection|uncaughtException|FATAL ERROR|"level":60/.test(line)) found.push(`${file}: ${line.slice(0, 200)}`);
    }
  }
  return found;
}

function stats2(values: Array<number | null>): string {
  const known = values.filter((v): v is number => v !== null);
  const missing = values.length - known.length;
  return `${stats(known)}${missing ? ` (${missing} never)` : ''}`;
}

function finish(): number {
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    console.log('failed checks:');
    for (const r of failed) console.log(`  - ${r.name}${r.detail ? `: ${r.detail}` : ''}`);
  }
  console.log(`faults: ${results.length - failed.length} passed, ${failed.length} failed`);
  return failed.length === 0 ? 0 : 1;
}

process.on('unhandledRejection', (err) => {
  check(false, 'no unhandled rejection in the fault test itself', String((err as Error)?.stack ?? err).slice(0, 300));
});

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    check(false, 'the fault test ran to the end', String((err as Error)?.message ?? err));
    finish();
    process.exit(1);
  },
);
