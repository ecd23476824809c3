/**
 * The delivery worker: claims due deliveries (`FOR UPDATE SKIP LOCKED`, under a lease), POSTs each signed body with
 * the configured timeout, at most `webhooks.concurrency` in flight, and records the outcome under its claim: 2xx is
 * delivered; anything else (another status, a timeout, a refused or failed connection) is retried after a backoff
 * with full jitter, or dead-lettered once the attempt or age budget is spent. Redirects are never followed, and every
 * connection goes through the SSRF guard's lookup. Any number of workers, in any number of processes, share the
 * queue: correctness rests on Postgres alone, the bus only wakes the worker sooner. Claiming runs in the polling loop
 * of @lading/runtime.
 */
import { randomUUID } from 'node:crypto';
import type { Agent, buildConnector } from 'undici';
import { loadUndici } from '@lading/client';
import { SecretCipher, secretCipherFromConfig } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import type { Database } from '@lading/metadata';
import { createPollingLoop } from '@lading/runtime';
import { SpanKind, context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { SPAN_ATTRIBUTES, SPAN_NAMES, withSpan } from '@lading/telemetry';
import type { Logger, RegistryMetrics, WebhookResult } from '@lading/telemetry';
import {
  AllowList,
  ClaimedDelivery,
  RefusedTargetError,
  Resolver,
  checkTarget,
  claimDueDeliveries,
  guardedLookup,
  nextDueAt,
  openWebhookSecret,
  parseAddress,
  parseAllowList,
  recordAttempt,
  signWebhook,
  systemResolver,
} from '@lading/webhooks';
import { renderDelivery } from './delivery-body';
import { decideRetry } from './retry-policy';
import { WebhookSettings, webhookSettings } from './webhook-settings';

/** What a delivery worker is built from. */
export interface DeliveryWorkerDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** Resolves host names for the SSRF guard (the system resolver by default; tests play DNS rebinding with it). */
  resolver?: Resolver;
  /** Opens the stored secrets deliveries are signed with; one is made from `config.secrets` when omitted. */
  secrets?: SecretCipher;
  /** A number in [0, 1) for the backoff's jitter. */
  random?: () => number;
  /** How long a claim holds a delivery before another worker may take it (default: the timeout plus 15 s). */
  leaseMs?: number;
  /** Where attempts are counted and timed (`lading_webhook_deliveries_total`, `_delivery_seconds`, `_delivery_failures_total`). */
  metrics?: Pick<RegistryMetrics, 'webhookDeliveries' | 'webhookDeliverySeconds' | 'webhookDeliveryFailures'>;
}

/** The event's stored W3C traceparent (the request that caused it), if its JSON carries one. */
function traceparentOf(eventJson: string): string | undefined {
  try {
    const tp = (JSON.parse(eventJson) as { traceparent?: unknown }).traceparent;
    return typeof tp === 'string' ? tp : undefined;
  } catch {
    return undefined;
  }
}

/** The worker's counters, since it started. */
export interface DeliveryCounters {
  /** Attempts by outcome: delivered, retried (a failed attempt that will be retried), dead (dead-lettered). */
  outcomes: { delivered: number; retry: number; dead: number };
  /** Failed attempts (whatever followed them). */
  failures: number;
  /** Outcomes not recorded because the claim had run out and another worker held the delivery. */
  superseded: number;
}

/** A running (or runnable) delivery worker. */
export interface DeliveryWorker {
  readonly settings: WebhookSettings;
  readonly counters: DeliveryCounters;
  start(): void;
  /** Stops claiming and waits for the attempts in flight. */
  stop(): Promise<void>;
  /** Wakes the worker (a delivery was queued). */
  wake(): void;
  /** Claims and attempts what is due now, until nothing is due; resolves with the number of attempts made. */
  runUntilIdle(maxAttempts?: number): Promise<number>;
}

const USER_AGENT = 'lading-webhooks/0.1';
const MIN_SLEEP_MS = 10;

/** Creates a delivery worker; call start() to run it. */
export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const settings = webhookSettings(deps.config);
  const allowList: AllowList = parseAllowList(settings.allowList);
  const resolver = deps.resolver ?? systemResolver;
  const secrets = deps.secrets ?? secretCipherFromConfig(deps.config.secrets);
  const random = deps.random ?? Math.random;
  const leaseMs = deps.leaseMs ?? settings.timeoutMs + 15_000;
  const logger = deps.logger;
  const counters: DeliveryCounters = { outcomes: { delivered: 0, retry: 0, dead: 0 }, failures: 0, superseded: 0 };
  // A lookup is not told the port, and an allow-list entry may hold for one port only: one connector per port.
  const connectors = new Map<number, buildConnector.connector>();
  const connect: buildConnector.connector = (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    let connector = connectors.get(port);
    if (!connector) {
      connector = loadUndici().buildConnector({ lookup: guardedLookup(allowList, resolver, port) as never, timeout: settings.timeoutMs });
      connectors.set(port, connector);
    }
    return connector(options, callback);
  };
  // Made with the first delivery: a registry without webhook subscriptions never loads undici (loadUndici).
  let agent: Agent | undefined;
  const dispatcher = (): Agent =>
    (agent ??= new (loadUndici().Agent)({
      connect,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 4_000,
    }));
  const baseUrl = deps.config.http.host;

  const inFlight = new Set<Promise<void>>();

  /** Sends one attempt; resolves with the status and Retry-After, or rejects with the transport's error. */
  async function send(delivery: ClaimedDelivery): Promise<{ status: number; retryAfter: string | null }> {
    const url = new URL(delivery.subscription.url);
    // Addresses in the URL itself never reach the lookup: check them here.
    if (parseAddress(url.hostname.replace(/^\[|\]$/g, ''))) await checkTarget(allowList, resolver, url);
    const { contentType, body } = renderDelivery(delivery.subscription.format, delivery.event, { baseUrl });
    const signature = signWebhook(openWebhookSecret(secrets, delivery.subscription), delivery.eventId, Math.floor(Date.now() / 1000), body);
    // No undici client span (its attributes would carry the subscriber's URL, which may hold a secret) and no trace
    // headers to a third party: the `webhook.deliver` span around this call is the trace's record of it.
    const response = await context.with(suppressTracing(context.active()), () =>
      loadUndici().request(url, {
        method: 'POST',
        dispatcher: dispatcher(),
        headers: { 'content-type': contentType, 'user-agent': USER_AGENT, ...signature },
        body,
        signal: AbortSignal.timeout(settings.timeoutMs),
      }),
    );
    await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    const retryAfter = response.headers['retry-after'];
    return { status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : (retryAfter ?? null) };
  }

  function describe(err: unknown): string {
    if (err instanceof RefusedTargetError) return `refused: ${err.message}`;
    const e = err as Error & { code?: string; cause?: Error & { code?: string } };
    if (e?.cause instanceof RefusedTargetError) return `refused: ${e.cause.message}`;
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || /timeout/i.test(e?.code ?? '')) return `timeout after ${settings.timeoutMs} ms`;
    const code = e?.code ?? e?.cause?.code;
    return `${code ? `${code}: ` : ''}${e?.message ?? String(err)}`;
  }

  /**
   * One attempt in a `webhook.deliver` span, parented by the event's traceparent so the push's trace shows its
   * deliveries; attributes name the subscription by id only (never its URL).
   */
  async function attempt(delivery: ClaimedDelivery): Promise<void> {
    const started = performance.now();
    const result = await withSpan(
      SPAN_NAMES.webhookDeliver,
      {
        'lading.webhook.subscription_id': delivery.subscription.id,
        'lading.webhook.delivery_id': delivery.id,
        'lading.webhook.attempt': delivery.attempt,
        [SPAN_ATTRIBUTES.eventId]: delivery.eventId,
        [SPAN_ATTRIBUTES.eventType]: delivery.eventType,
      },
      async (span) => {
        const outcome = await attemptOnce(delivery);
        span.setAttribute('lading.webhook.result', outcome.result ?? 'superseded');
        if (outcome.status !== null) span.setAttribute('http.response.status_code', outcome.status);
        if (outcome.error !== null) span.setAttribute('lading.webhook.error', outcome.error);
        return outcome.result;
      },
      { kind: SpanKind.CLIENT, parent: traceparentOf(delivery.event) },
    );
    if (result) {
      deps.metrics?.webhookDeliveries.add(1, { result });
      deps.metrics?.webhookDeliverySeconds.record((performance.now() - started) / 1000, { result });
    }
  }

  /** Sends one attempt and records its outcome; resolves with the metric's result (undefined when superseded). */
  async function attemptOnce(delivery: ClaimedDelivery): Promise<{ result: WebhookResult | undefined; status: number | null; error: string | null }> {
    let result: WebhookResult | undefined;
    let status: number | null = null;
    let retryAfter: string | null = null;
    let error: string | null = null;
    try {
      ({ status, retryAfter } = await send(delivery));
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      error = describe(err);
    }
    const now = Date.now();
    let recorded: boolean;
    if (error === null) {
      recorded = await recordAttempt(deps.db, delivery.id, delivery.claim, { kind: 'delivered', status: status! });
      if (recorded) {
        counters.outcomes.delivered++;
        result = 'delivered';
      }
    } else {
      counters.failures++;
      deps.metrics?.webhookDeliveryFailures.add(1);
      const decision = decideRetry(settings, { attempt: delivery.attempt, firstAttemptAt: delivery.firstAttemptAt.getTime(), now, status, retryAfter }, random);
      if (decision.kind === 'dead') {
        recorded = await recordAttempt(deps.db, delivery.id, delivery.claim, { kind: 'dead', status, error });
        if (recorded) {
          counters.outcomes.dead++;
          result = 'dead_lettered';
          logger.warn({ deliveryId: delivery.id, eventId: delivery.eventId, subscriptionId: delivery.subscription.id, attempts: delivery.attempt, error }, 'webhook delivery dead-lettered');
        }
      } else {
        recorded = await recordAttempt(deps.db, delivery.id, delivery.claim, { kind: 'retry', status, error, retryAt: new Date(now + decision.delayMs) });
        if (recorded) {
          counters.outcomes.retry++;
          result = 'failed';
        }
      }
    }
    if (!recorded) {
      counters.superseded++;
      logger.warn({ deliveryId: delivery.id }, 'webhook delivery outcome not recorded: its claim ran out and another worker holds it');
    }
    return { result, status, error };
  }

  /** Starts attempts for up to `free` due deliveries; resolves with how many were claimed. */
  async function claimAndStart(free: number): Promise<number> {
    const claimed = await claimDueDeliveries(deps.db, randomUUID(), free, leaseMs);
    for (const delivery of claimed) {
      const p: Promise<void> = attempt(delivery)
        .catch((err) => logger.error({ err, deliveryId: delivery.id }, 'recording a webhook attempt failed; the lease will return it'))
        .finally(() => {
          inFlight.delete(p);
          loop.wake();
        });
      inFlight.add(p);
    }
    return claimed.length;
  }

  /**
   * One pass of the worker's loop: claims what the free slots can take. Resolves with 0 (go on at once) when it
   * filled them, else with how long to sleep: the poll interval, or less when a delivery falls due sooner. An
   * attempt that ends wakes the loop, so a freed slot is filled at once.
   */
  async function claimDue(): Promise<number> {
    const free = settings.concurrency - inFlight.size;
    if (free > 0 && (await claimAndStart(free)) === free) return 0;
    let sleepMs = settings.pollIntervalMs;
    if (inFlight.size < settings.concurrency) {
      const next = await nextDueAt(deps.db);
      if (next) sleepMs = Math.min(sleepMs, Math.max(MIN_SLEEP_MS, next.getTime() - Date.now()));
    }
    return sleepMs;
  }

  const loop = createPollingLoop({
    step: claimDue,
    idleMs: settings.pollIntervalMs,
    // Failures back off from 250 ms to the loop's 30 s.
    backoff: { initialMs: 250 },
    onError: (err, retryInMs) => logger.warn({ err, retryInMs }, 'webhook delivery loop failed; retrying'),
  });

  return {
    settings,
    counters,
    start() {
      loop.start();
    },
    async stop() {
      await loop.stop();
      await Promise.allSettled([...inFlight]);
      await agent?.close().catch(() => undefined);
    },
    wake: () => loop.wake(),
    async runUntilIdle(maxAttempts = 10_000) {
      let total = 0;
      for (;;) {
        const n = await claimAndStart(Math.min(settings.concurrency, maxAttempts - total));
        total += n;
        await Promise.allSettled([...inFlight]);
        if (n === 0 || total >= maxAttempts) return total;
      }
    },
  };
}
