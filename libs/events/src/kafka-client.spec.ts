/**
 * The mended kafkajs request queue, on kafkajs's own RequestQueue class: no timer while nothing waits (kafkajs 2.2.4
 * armed a negative one after every response, checking an empty queue every millisecond), and waiting requests are
 * still checked when a throttle ends. Then a real client against the test Kafka, in a child process as the tools
 * run, prints nothing to stderr on Node 24 (it printed a TimeoutNegativeWarning).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { infraSettings } from '@lading/testing';
import { MENDED_KAFKAJS_VERSION, mendKafkajsRequestQueue } from './kafka-client';

/** kafkajs's RequestQueue as far as these tests look into it. */
interface Queue {
  pending: Array<{ correlationId: number }>;
  throttledUntil: number;
  throttleCheckTimeoutId: (NodeJS.Timeout & { _idleTimeout?: number }) | null;
  checkPendingRequests(): void;
  destroy(): void;
}

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function requestQueue(): Queue {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const RequestQueue = require('kafkajs/src/network/requestQueue') as new (options: Record<string, unknown>) => Queue;
  return new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'spec', broker: 'b:1', logger: silent });
}

describe('createKafkaClient: kafkajs with its request queue mended', () => {
  const { version } = require('kafkajs/package.json') as { version: string }; // eslint-disable-line @typescript-eslint/no-require-imports
  const queues: Queue[] = [];
  const queue = () => {
    const q = requestQueue();
    queues.push(q);
    return q;
  };
  afterEach(() => queues.splice(0).forEach((q) => q.destroy()));

  it('mends the kafkajs this repository installs (a kafkajs upgrade must look at the fix again)', () => {
    expect(version).toBe(MENDED_KAFKAJS_VERSION);
    expect(mendKafkajsRequestQueue()).toBe(true);
    expect(mendKafkajsRequestQueue()).toBe(true);
  });

  it('arms no timer after a check of an empty queue that nothing throttles', () => {
    mendKafkajsRequestQueue();
    const q = queue();
    q.checkPendingRequests(); // what kafkajs does after every response
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it('checks waiting requests when the broker’s throttle ends, and 10 ms later when it has just ended', () => {
    mendKafkajsRequestQueue();
    const throttled = queue();
    throttled.throttledUntil = Date.now() + 60_000;
    throttled.pending.push({ correlationId: 1 });
    throttled.checkPendingRequests();
    expect(throttled.throttleCheckTimeoutId?._idleTimeout).toBeGreaterThan(50_000);

    const justEnded = queue();
    justEnded.throttledUntil = Date.now() - 1;
    justEnded.pending.push({ correlationId: 2 });
    // maxInFlightRequests 1 with one in flight: the request waits although nothing throttles.
    (justEnded as unknown as { inflight: Map<number, unknown> }).inflight.set(1, {});
    justEnded.checkPendingRequests();
    expect(justEnded.throttleCheckTimeoutId?._idleTimeout).toBe(10);
  });

  it('talks to Kafka with nothing on stderr (no TimeoutNegativeWarning) in a process of its own', () => {
    const brokers = infraSettings().kafkaBrokers;
    const script = `
      const { createKafkaClient } = require(${JSON.stringify(path.join(__dirname, 'kafka-client'))});
      (async () => {
        const admin = createKafkaClient({ clientId: 'mend-check', brokers: ${JSON.stringify(brokers)}, logLevel: 0 }).admin();
        await admin.connect();
        await admin.listTopics();
        await admin.listTopics();
        await admin.disconnect();
        console.log('listed');
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 });
    expect({ status: child.status, stdout: child.stdout, stderr: child.stderr }).toEqual({ status: 0, stdout: 'listed\n', stderr: '' });
  }, 70_000);
});
