import { createTally } from './tally';
import { startTestMetrics } from '../test/test-metrics';

const BOUNDARIES = [0.001, 0.01, 0.1, 1];

/** The sample lines of one metric, with its name taken out, so that two metrics' series can be compared. */
function series(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}_`) || line.startsWith(`${name}{`))
    .map((line) => line.slice(name.length))
    .sort();
}

describe('histogram tallies', () => {
  it('scrape exactly as the SDK histogram does for the same values: buckets (a value on a bound counts in it), sum, count, labels', async () => {
    const { tallies, meter, scrape, shutdown } = startTestMetrics();
    const sdk = meter.createHistogram<{ method: string; route: string }>('sdk_seconds', { unit: 's', advice: { explicitBucketBoundaries: BOUNDARIES } });
    const tally = tallies.histogram<{ method: string; route: string }>('tally_seconds', { unit: 's', description: 'd', boundaries: BOUNDARIES }, ['method', 'route']);
    const values = [0.0005, 0.001, 0.004, 0.01, 0.05, 0.1, 0.5, 1, 2, 30];
    for (const [i, value] of values.entries()) {
      const labels = { method: i % 3 === 0 ? 'HEAD' : 'GET', route: i % 2 === 0 ? 'blob' : 'manifest' };
      sdk.record(value, labels);
      tally.record(value, labels);
    }
    const text = await scrape();
    const fromTally = series(text, 'tally_seconds');
    expect(fromTally.length).toBeGreaterThan(0);
    expect(fromTally).toEqual(series(text, 'sdk_seconds'));
    expect(text).toMatch(/^# TYPE tally_seconds histogram$/m);
    expect(text).toMatch(/^tally_seconds_bucket\{method="GET",route="manifest",le="0\.001"\} 1$/m);
    await shutdown();
  });

  it('stay cumulative across scrapes and report nothing for a histogram never recorded', async () => {
    const { tallies, scrape, shutdown } = startTestMetrics();
    const used = tallies.histogram<{ route: string }>('used_seconds', { unit: 's', description: 'd', boundaries: BOUNDARIES }, ['route']);
    tallies.histogram<{ route: string }>('unused_seconds', { unit: 's', description: 'd', boundaries: BOUNDARIES }, ['route']);
    used.record(0.002, { route: 'blob' });
    expect(await scrape()).toMatch(/^used_seconds_count\{route="blob"\} 1$/m);
    used.record(0.2, { route: 'blob' });
    const text = await scrape();
    expect(text).toMatch(/^used_seconds_count\{route="blob"\} 2$/m);
    expect(text).toMatch(/^used_seconds_sum\{route="blob"\} 0\.202$/m);
    expect(text).not.toContain('unused_seconds');
    await shutdown();
  });

  it('keep counters beside them: a tally counter still scrapes as a counter', async () => {
    const { meter, scrape, shutdown } = startTestMetrics();
    const counter = createTally<{ code: string }>(meter, 'answers_total', { monotonic: true }, ['code']);
    counter.add(1, { code: '200' });
    counter.add(2, { code: '200' });
    expect(await scrape()).toMatch(/^answers_total\{code="200"\} 3$/m);
    await shutdown();
  });
});
