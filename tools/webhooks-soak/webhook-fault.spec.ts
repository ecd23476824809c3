/**
 * The webhook fault, short form (seconds-long phases, short backoff): a receiver down, then failing half its
 * requests, under a push load; every event is delivered or dead-lettered exactly once, every body verifies.
 */
import { runWebhookFault } from './webhook-fault';

describe('webhook delivery through a receiver outage and a flaky receiver', () => {
  it('delivers or dead-letters every event exactly once, with valid signatures', async () => {
    const result = await runWebhookFault({
      label: 'short',
      downMs: 4000,
      flakyMs: 4000,
      pushIntervalMs: 200,
      drainTimeoutMs: 45_000,
      webhooks: { maxAttempts: 8, maxAge: '1m', backoffInitial: '100ms', backoffMax: '1s', timeout: '2s', concurrency: 8, pollInterval: '200ms' },
    });
    process.stdout.write(`${result.figures.join('\n')}\n`);
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.checks.length).toBeGreaterThanOrEqual(9);
  }, 120_000);
});
