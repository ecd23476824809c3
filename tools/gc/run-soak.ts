/**
 * Runs the collector's soak from the command line: `node --import tsx tools/gc/run-soak.ts [--short|--soak]`.
 * --short: 45 s of load (as in npm test); --soak: 10 minutes. Prints the figures; the last line is
 * `gc-soak: N passed, N failed`; exits non-zero when a check failed.
 */
import { runGcSoak } from './gc-soak';

const soak = process.argv.includes('--soak');
runGcSoak({ loadMs: soak ? 10 * 60_000 : 45_000, label: soak ? 'soak' : 'short', progress: true })
  .then((result) => {
    process.stdout.write(`${result.figures.join('\n')}\n`);
    process.exit(result.checks.every((c) => c.ok) ? 0 : 1);
  })
  .catch((err) => {
    process.stderr.write(`gc-soak: failed to run: ${(err as Error)?.stack ?? err}\n`);
    process.stdout.write('gc-soak: 0 passed, 1 failed\n');
    process.exit(1);
  });
