/**
 * Runs the webhook fault from the command line: `node --import tsx tools/webhooks-soak/run-soak.ts [--short|--soak]`.
 * --short: seconds-long phases (as in npm test); --soak: the form, the receiver down for 5 minutes, then
 * failing half its requests for 2 minutes and through the drain. Prints the figures; the last line is
 * `webhook-soak: N passed, N failed`; exits non-zero when a check failed.
 */
import { runWebhookFault } from './webhook-fault';

const soak = process.argv.includes('--soak');
const options = soak
  ? {
      label: 'soak',
      downMs: 5 * 60_000,
      flakyMs: 2 * 60_000,
      pushIntervalMs: 1000,
      drainTimeoutMs: 15 * 60_000,
      webhooks: { maxAttempts: 15, maxAge: '30m', backoffInitial: '1s', backoffMax: '60s', timeout: '5s', concurrency: 8, pollInterval: '1s' },
    }
  : {
      label: 'short',
      downMs: 4000,
      flakyMs: 4000,
      pushIntervalMs: 200,
      drainTimeoutMs: 45_000,
      webhooks: { maxAttempts: 8, maxAge: '1m', backoffInitial: '100ms', backoffMax: '1s', timeout: '2s', concurrency: 8, pollInterval: '200ms' },
    };

runWebhookFault({ ...options, progress: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`) })
  .then((result) => {
    process.stdout.write(`${result.figures.join('\n')}\n`);
    const failed = result.checks.filter((c) => !c.ok).length;
    process.stdout.write(`webhook-soak: ${result.checks.length - failed} passed, ${failed} failed\n`);
    process.exit(failed === 0 ? 0 : 1);
  })
  .catch((err) => {
    process.stderr.write(`webhook-soak: failed to run: ${(err as Error)?.stack ?? err}\n`);
    process.stdout.write('webhook-soak: 0 passed, 1 failed\n');
    process.exit(1);
  });
