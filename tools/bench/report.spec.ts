import { comparisonRow, failed, formatFigure, measured, percentile, renderMarkdown, renderText, singleFlightRow, thresholdVerdict, warmPullRow, REASON_CHARS } from './report';

describe('percentile', () => {
  it('takes the nearest rank, whatever the order of the values', () => {
    const values = [50, 10, 40, 20, 30, 100, 90, 80, 70, 60];
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 90)).toBe(90);
    expect(percentile(values, 99)).toBe(100);
    expect(percentile(values, 0)).toBe(10);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is NaN for no values and refuses a percentile outside 0..100', () => {
    expect(percentile([], 99)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('comparisonRow', () => {
  it('prints the embedded, cluster and 2.8.2 ratios to Distribution v3 and judges the target on the embedded one', () => {
    const row = comparisonRow('manifest GET by digest (rps)', '', { embedded: measured(5200), cluster: measured(2000), distribution: measured(1000), 'distribution-2.8': measured(400) }, 5);
    expect(row.ratio).toBe('embedded 5.20× · cluster 2.00× · 2.8.2 0.40×');
    expect(row.cells['distribution-2.8']).toBe('400');
    expect(row.target).toBe('≥ 5.00× v3');
    expect(row.met).toBe('yes');
    expect(comparisonRow('m', '', { embedded: measured(4999), distribution: measured(1000) }, 5).met).toBe('no');
  });

  it('prints the cluster\'s ratio to 2 v3 replicas behind nginx, on each storage, beside its ratio to one v3', () => {
    const row = comparisonRow('m', '', { cluster: measured(2000), distribution: measured(1000), 'distribution-x2': measured(1600), 'distribution-x2-s3': measured(800) });
    expect(row.ratio).toBe('cluster 2.00× · v3 ×2 fs 1.60× · v3 ×2 MinIO 0.80× · cluster/v3 ×2 fs 1.25× · cluster/v3 ×2 MinIO 2.50×');
    expect(row.cells['distribution-x2']).toBe('1,600');
  });

  it('says failed, not met or zero, when a figure it needs failed', () => {
    const row = comparisonRow('blob GET (MB/s)', '', { embedded: measured(900), distribution: failed('HTTP 404') }, 1);
    expect(row.cells.distribution).toBe('FAILED: HTTP 404');
    expect(row.ratio).toBe('—');
    expect(row.met).toBe('failed');
  });

  it('leaves met? empty for a row without a target and shows unmeasured targets as a dash', () => {
    const row = comparisonRow('GET /v2/ (rps)', '', { embedded: measured(10), distribution: measured(20) });
    expect(row.met).toBe('');
    expect(row.cells.cluster).toBe('—');
    expect(row.ratio).toBe('embedded 0.50×');
  });

  it('judges a lower-is-better figure (CPU per request) against a ceiling', () => {
    const row = comparisonRow('server CPU per request (µs)', '', { embedded: measured(40), distribution: measured(100) }, 0.4, false);
    expect(row.target).toBe('≤ 0.40× v3');
    expect(row.met).toBe('yes');
    expect(comparisonRow('m', '', { embedded: measured(41), distribution: measured(100) }, 0.4, false).met).toBe('no');
  });

  it('does not judge a target when a side was left out of the run', () => {
    expect(comparisonRow('m', '', { cluster: measured(10) }, 5).met).toBe('');
    expect(comparisonRow('m', '', { embedded: failed('x') }, 5).met).toBe('failed');
  });
});

describe('figures and verdicts', () => {
  it('refuses to print a non-finite measurement as a number', () => {
    expect(measured(NaN).ok).toBe(false);
    expect(formatFigure(measured(Infinity))).toMatch(/^FAILED/);
  });

  it('shortens long failure reasons in a cell', () => {
    const cell = formatFigure(failed('x'.repeat(500)));
    expect(cell.length).toBeLessThanOrEqual('FAILED: '.length + REASON_CHARS);
  });

  it('formats thousands and small values readably', () => {
    expect(formatFigure(measured(12345.6), 'rps')).toBe('12,346 rps');
    expect(formatFigure(measured(3.14159), 'ms')).toBe('3.14 ms');
    expect(formatFigure(measured(42.25, 'note'))).toBe('42.3 (note)');
  });

  it('judges thresholds, and a missing value as failed', () => {
    expect(thresholdVerdict(1.7, { min: 1.6 })).toBe('yes');
    expect(thresholdVerdict(1.5, { min: 1.6 })).toBe('no');
    expect(thresholdVerdict(300, { max: 256 })).toBe('no');
    expect(thresholdVerdict(undefined, { max: 256 })).toBe('failed');
  });
});

describe('rendering', () => {
  const rows = [comparisonRow('a|b', '', { embedded: measured(2), distribution: measured(1) }, 1)];

  it('renders a markdown table with escaped pipes and one line per row', () => {
    const lines = renderMarkdown(rows).split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('| metric | Lading embedded | Lading cluster | Distribution v3 | v3 ×2 behind nginx, filesystem | v3 ×2 behind nginx, MinIO | Distribution 2.8.2 | ratio to Distribution v3 | target | met? |');
    expect(lines[2]).toContain('a\\|b');
  });

  it('aligns the text table columns', () => {
    const lines = renderText(rows).split('\n');
    expect(lines[0].indexOf('Lading embedded')).toBe(lines[2].indexOf('2.00'));
  });
});

describe('pull-through cache rows', () => {
  it('puts the warm pull beside an ordinary pull and judges their ratio against about 1.0×', () => {
    const row = warmPullRow('warm pull (MB/s)', measured(950), measured(1000));
    expect(row.cells.embedded).toBe('950 MB/s through the proxy; 1,000 MB/s ordinary pull');
    expect(row.ratio).toBe('proxy/ordinary 0.95×');
    expect(row.met).toBe('yes');
    expect(warmPullRow('m', measured(800), measured(1000)).met).toBe('no');
  });

  it('says failed, not met, when either warm figure failed', () => {
    const row = warmPullRow('m', failed('HTTP 500'), measured(1000));
    expect(row.cells.embedded).toContain('FAILED: HTTP 500');
    expect(row.ratio).toBe('—');
    expect(row.met).toBe('failed');
  });

  it('counts the upstream GETs of concurrent cold pulls against 1 and prints their wall time beside one pull', () => {
    const row = singleFlightRow('20 cold pulls', 20, measured(1), measured(6), measured(2));
    expect(row.cells.embedded).toBe('1 upstream GET of the blob for 20 pulls; 20 pulls 6.00 s, one pull alone 2.00 s');
    expect(row.ratio).toBe('20 pulls/one pull 3.00× the time');
    expect(row.met).toBe('yes');
    const twice = singleFlightRow('m', 20, measured(2), measured(6), failed('timeout'));
    expect(twice.cells.embedded).toContain('2 upstream GETs');
    expect(twice.ratio).toBe('—');
    expect(twice.met).toBe('no');
    expect(singleFlightRow('m', 20, failed('relay down'), measured(6), measured(2)).met).toBe('failed');
  });
});
