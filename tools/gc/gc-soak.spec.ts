/**
 * The short form of the collector's soak (about 1.5 minutes, part of npm test): real Postgres and MinIO, needs
 * `tools/infra/infra up`. `node --import tsx tools/gc/run-soak.ts --soak` runs the 10-minute form.
 */
import { runGcSoak } from './gc-soak';

describe('garbage collection soak (short)', () => {
  it('never breaks an acknowledged image and deletes what is unreferenced', async () => {
    const result = await runGcSoak({ loadMs: 45_000, label: 'short' });
    process.stdout.write(`${result.figures.join('\n')}\n`);
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
  }, 240_000);
});
