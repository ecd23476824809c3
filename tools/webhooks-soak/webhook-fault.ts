/**
 * The webhook fault of issue 5: a receiver down for a while, then failing half its requests, under a steady push
 * load through the embedded registry on the real PostgreSQL. Afterwards every event must be delivered or
 * dead-lettered exactly once for every matching subscription, and every body the receiver got must carry a valid
 * signature. The jest spec runs a seconds-long form; `run-soak.ts --soak` runs the 5-minute outage.
 */
import { EVENT_TYPES, isAuditEventType } from '@lading/events';
import { verifyWebhook } from '@lading/webhooks';
import { distributionAction } from '@lading/webhooks-service';
import { startTestReceiver } from '@lading/webhooks/test/test-receiver';
import { startRegistryOnPostgres } from './embedded-on-postgres';

/** How a run is shaped. */
export interface WebhookFaultOptions {
  label: string;
  /** How long the receiver is down (connections refused) while pushes go on. */
  downMs: number;
  /** How long it then fails half its requests while pushes go on (it keeps failing half until the drain ends). */
  flakyMs: number;
  pushIntervalMs: number;
  /** The longest the queue may take to drain once pushes stop. */
  drainTimeoutMs: number;
  /** `webhooks.*` for the run (loopback is allowed on top). */
  webhooks: { maxAttempts: number; maxAge: string; backoffInitial: string; backoffMax: string; timeout: string; concurrency: number; pollInterval: string };
  progress?: (line: string) => void;
}

/** One check of the run. */
export interface FaultCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What a run found. */
export interface WebhookFaultResult {
  figures: string[];
  checks: FaultCheck[];
}

interface OutboxEvent {
  id: string;
  type: string;
  data: { repository: string; digest: string | null; tag: string | null; request: { id: string } | null };
}

/** A deterministic source of coin flips, so that a failing run can be repeated. */
function coin(seed: number): () => boolean {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 31 === 1;
  };
}

/** Runs the fault and checks the outcome. */
export async function runWebhookFault(options: WebhookFaultOptions): Promise<WebhookFaultResult> {
  const say = options.progress ?? (() => undefined);
  const receiver = await startTestReceiver();
  const r = await startRegistryOnPostgres(`webhooks_fault_${options.label}`, { webhooks: { ...options.webhooks, allowList: ['127.0.0.1'] } });
  const checks: FaultCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  try {
    const subscriptions: Record<string, { id: string; secret: string; path: string }> = {};
    for (const [name, namespace, format] of [
      ['ce-all', '', 'cloudevents'],
      ['dist-team', 'team', 'distribution'],
    ] as const) {
      const created = await r.admin('POST', '/webhooks', { name, namespace, format, url: `${receiver.url}/${name}` });
      if (created.status !== 201) throw new Error(`creating ${name}: ${created.status} ${JSON.stringify(created.body)}`);
      subscriptions[name] = { id: created.body.id, secret: created.body.secret, path: `/${name}` };
    }
    const flip = coin(20261123);
    receiver.answer(() => ({ status: flip() ? 500 : 200 }));
    await receiver.down();
    say(`receiver down for ${options.downMs} ms, pushing every ${options.pushIntervalMs} ms`);

    // The load: images pushed by tag, most into team/..., some elsewhere (not for the Distribution subscription).
    let pushing = true;
    let pushes = 0;
    let pushErrors = 0;
    const pusher = (async () => {
      while (pushing) {
        const n = pushes++;
        const repository = n % 5 === 4 ? `misc/tool${n % 3}` : `team/app${n % 4}`;
        await r.pushImage(repository, `t${n}`).catch(() => pushErrors++);
        await new Promise((res) => setTimeout(res, options.pushIntervalMs));
      }
    })();
    const pendingOf = async () => Number((await r.registry.db.query<{ n: string }>(`SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'`)).rows[0].n);
    let maxPending = 0;
    const sampler = setInterval(() => void pendingOf().then((n) => (maxPending = Math.max(maxPending, n)), () => undefined), 250);

    await new Promise((res) => setTimeout(res, options.downMs));
    await receiver.up();
    say(`receiver up, failing half its requests, for ${options.flakyMs} ms`);
    await new Promise((res) => setTimeout(res, options.flakyMs));
    pushing = false;
    await pusher;
    await r.registry.flushEvents();
    const drainStart = Date.now();
    say(`pushes stopped after ${pushes} images; draining`);
    let drained = false;
    while (Date.now() - drainStart < options.drainTimeoutMs) {
      await r.registry.flushEvents();
      const unpublished = Number((await r.registry.db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE published_at IS NULL`)).rows[0].n);
      if (unpublished === 0 && (await pendingOf()) === 0) {
        await new Promise((res) => setTimeout(res, 300));
        if ((await pendingOf()) === 0) {
          drained = true;
          break;
        }
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    const drainMs = Date.now() - drainStart;
    clearInterval(sampler);
    check('the queue drains', drained, `${drained ? 'drained' : 'not drained'} ${drainMs} ms after the pushes stopped`);
    check('pushes succeed throughout', pushErrors === 0, `${pushes} pushes, ${pushErrors} failed`);

    // What should have been queued: every repository event for ce-all (audit events, logins among them, are never
    // delivered to webhooks); for dist-team the team/... events Distribution has, a tag.updated only when no
    // manifest.pushed of the same request already carried its tag.
    const events = (await r.registry.db.query<{ event: string | OutboxEvent }>(`SELECT event FROM outbox ORDER BY repository, sequence`)).rows
      .map((row) => (typeof row.event === 'string' ? (JSON.parse(row.event) as OutboxEvent) : row.event))
      .filter((e) => !isAuditEventType(e.type));
    const pushedWithTag = new Set(
      events.filter((e) => e.type === EVENT_TYPES.manifestPushed && e.data.tag).map((e) => `${e.data.repository}|${e.data.digest}|${e.data.tag}|${e.data.request?.id ?? ''}`),
    );
    const expected: Record<string, Set<string>> = {
      'ce-all': new Set(events.map((e) => e.id)),
      'dist-team': new Set(
        events
          .filter((e) => e.data.repository === 'team' || e.data.repository.startsWith('team/'))
          .filter((e) => distributionAction(e.type) !== null)
          .filter((e) => !(e.type === EVENT_TYPES.tagUpdated && pushedWithTag.has(`${e.data.repository}|${e.data.digest}|${e.data.tag}|${e.data.request?.id ?? ''}`)))
          .map((e) => e.id),
      ),
    };

    const worker = r.registry.webhooks!.worker;
    let delivered = 0;
    let dead = 0;
    let attempts = 0;
    let duplicates = 0;
    let signed = 0;
    let badSignatures = 0;
    for (const [name, sub] of Object.entries(subscriptions)) {
      const rows = (
        await r.registry.db.query<{ event_id: string; status: string; attempts: number }>(`SELECT event_id, status, attempts FROM webhook_deliveries WHERE subscription_id = $1`, [sub.id])
      ).rows;
      const ids = new Set(rows.map((row) => row.event_id));
      const missing = [...expected[name]].filter((id) => !ids.has(id));
      const extra = [...ids].filter((id) => !expected[name].has(id));
      check(`${name}: one delivery per expected event`, missing.length === 0 && extra.length === 0 && ids.size === rows.length, `${expected[name].size} expected, ${rows.length} queued, ${missing.length} missing, ${extra.length} unexpected`);
      const unfinished = rows.filter((row) => row.status !== 'delivered' && row.status !== 'dead');
      check(`${name}: every delivery finished (delivered or dead)`, unfinished.length === 0, `${unfinished.length} unfinished`);
      const accepted = new Map<string, number>();
      for (const q of receiver.requests.filter((q) => q.path === sub.path)) {
        const id = String(q.headers['webhook-id']);
        if (q.status >= 200 && q.status < 300) accepted.set(id, (accepted.get(id) ?? 0) + 1);
        // Checked as of its arrival: the receiver's clock is the one a real receiver checks the timestamp against.
        if (verifyWebhook(sub.secret, q.headers, q.body, { now: () => q.at })) signed++;
        else badSignatures++;
      }
      let wrong = 0;
      for (const row of rows) {
        const n = accepted.get(row.event_id) ?? 0;
        if (row.status === 'delivered' && n !== 1) wrong++;
        if (row.status === 'dead' && n !== 0) wrong++;
        if (n > 1) duplicates += n - 1;
        attempts += row.attempts;
        if (row.status === 'delivered') delivered++;
        if (row.status === 'dead') dead++;
      }
      const strangers = [...accepted.keys()].filter((id) => !ids.has(id)).length;
      check(`${name}: the receiver accepted each delivered event exactly once and no dead one`, wrong === 0 && strangers === 0, `${wrong} mismatches, ${strangers} accepted ids without a delivery`);
    }
    check('every received body carries a valid signature', badSignatures === 0 && signed > 0, `${signed} verified, ${badSignatures} failed`);
    check(
      'each outcome recorded exactly once by the worker',
      worker.counters.outcomes.delivered === delivered && worker.counters.outcomes.dead === dead && worker.counters.superseded === 0,
      `worker counted ${worker.counters.outcomes.delivered} delivered and ${worker.counters.outcomes.dead} dead, rows say ${delivered} and ${dead}; ${worker.counters.superseded} superseded`,
    );
    const total = delivered + dead;
    return {
      checks,
      figures: [
        `webhook-fault (${options.label}): receiver down ${options.downMs / 1000} s, then failing half its requests for ${options.flakyMs / 1000} s and through the drain`,
        `pushes: ${pushes} images (${pushErrors} failed), events: ${events.length}`,
        `deliveries: ${total} (${delivered} delivered, ${dead} dead-lettered), attempts: ${attempts}, failed attempts: ${worker.counters.failures}`,
        `max pending: ${maxPending}, drain: ${drainMs} ms, requests received: ${receiver.requests.length}, duplicate acceptances: ${duplicates}`,
        `signatures verified: ${signed}, failed: ${badSignatures}`,
        ...checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`),
      ],
    };
  } finally {
    await r.close().catch(() => undefined);
    await receiver.close();
  }
}
