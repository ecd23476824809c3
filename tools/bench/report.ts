/** The benchmark's figures and how they print: one table, as aligned text for the terminal and as markdown. */

/** One measured figure: a value, or the reason the measurement failed (never a silent zero). */
export type Figure = { ok: true; value: number; note?: string } | { ok: false; reason: string };

/** A figure that was measured. */
export function measured(value: number, note?: string): Figure {
  return Number.isFinite(value) ? { ok: true, value, note } : { ok: false, reason: `not a number (${value})` };
}

/** A measurement that failed, with why. */
export function failed(reason: string): Figure {
  return { ok: false, reason };
}

/** Whether a row's target holds: `yes`/`no`, `failed` when a figure it needs failed, empty when there is no target. */
export type Verdict = 'yes' | 'no' | 'failed' | '';

/**
 * The servers measured, each a column, in order, with its heading: `distribution` is v3 (the anchor every ratio is
 * taken against), `distribution-x2` and `distribution-x2-s3` 2 v3 replicas behind nginx on one filesystem and on
 * MinIO (what the cluster is compared with), `distribution-2.8` Debian's 2.8.2.
 */
export const TARGET_COLUMNS = {
  embedded: 'Lading embedded',
  cluster: 'Lading cluster',
  distribution: 'Distribution v3',
  'distribution-x2': 'v3 ×2 behind nginx, filesystem',
  'distribution-x2-s3': 'v3 ×2 behind nginx, MinIO',
  'distribution-2.8': 'Distribution 2.8.2',
} as const;

/** A server measured (a column of the table). */
export type TargetKey = keyof typeof TARGET_COLUMNS;

/** One printed row of the results table: a cell per server (`—` where it has none). */
export interface Row {
  metric: string;
  cells: Partial<Record<TargetKey, string>>;
  ratio: string;
  target: string;
  met: Verdict;
}

/** The column headings, in order. */
export const COLUMNS = ['metric', ...Object.values(TARGET_COLUMNS), 'ratio to Distribution v3', 'target', 'met?'] as const;

/** The value at percentile `p` (0..100) of `values`, by the nearest-rank method; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile ${p} is outside 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** A number for people: thousands separated, and about three significant digits below 100. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** How much of a failure's reason a table cell shows (the run's log shows all of it). */
export const REASON_CHARS = 60;

/** A figure as a table cell: the value with its unit, `FAILED: why`, or `—` when it was not measured. */
export function formatFigure(figure: Figure | undefined, unit = ''): string {
  if (!figure) return '—';
  if (!figure.ok) return `FAILED: ${figure.reason.length > REASON_CHARS ? `${figure.reason.slice(0, REASON_CHARS - 1)}…` : figure.reason}`;
  const text = `${formatNumber(figure.value)}${unit ? ` ${unit}` : ''}`;
  return figure.note ? `${text} (${figure.note})` : text;
}

/** The ratio a/b when both were measured, else undefined. */
export function ratioOf(a: Figure | undefined, b: Figure | undefined): number | undefined {
  if (!a?.ok || !b?.ok || b.value === 0) return undefined;
  return a.value / b.value;
}

/** A ratio as printed: `5.20×`. */
export function formatRatio(ratio: number): string {
  return `${formatNumber(ratio)}×`;
}

/** The figures of one metric on each server measured. */
export type TargetFigures = Partial<Record<TargetKey, Figure>>;

/** How each server's ratio to v3 is labelled in a row. */
const RATIO_LABELS: Partial<Record<TargetKey, string>> = {
  embedded: 'embedded',
  cluster: 'cluster',
  'distribution-x2': 'v3 ×2 fs',
  'distribution-x2-s3': 'v3 ×2 MinIO',
  'distribution-2.8': '2.8.2',
};

/**
 * A row comparing Lading with Distribution v3 on one metric, each other figure with its ratio to v3's, and the
 * cluster's also to v3 ×2 on each storage (its like for like). The verdict is judged on the embedded figure (the
 * like-for-like comparison: one process each on the same box); the other ratios are printed beside it.
 */
export function comparisonRow(metric: string, unit: string, figures: TargetFigures, minRatio?: number, higherIsBetter = true): Row {
  const embeddedRatio = ratioOf(figures.embedded, figures.distribution);
  const ratios: string[] = [];
  for (const [key, label] of Object.entries(RATIO_LABELS) as [TargetKey, string][]) {
    const ratio = ratioOf(figures[key], figures.distribution);
    if (ratio !== undefined) ratios.push(`${label} ${formatRatio(ratio)}`);
  }
  for (const replicas of ['distribution-x2', 'distribution-x2-s3'] as const) {
    const ratio = ratioOf(figures.cluster, figures[replicas]);
    if (ratio !== undefined) ratios.push(`cluster/${RATIO_LABELS[replicas]} ${formatRatio(ratio)}`);
  }
  let met: Verdict = '';
  if (minRatio !== undefined) {
    // Not judged when a side was not measured at all (left out with --only); failed when a measurement failed.
    if (figures.embedded?.ok === false || figures.distribution?.ok === false) met = 'failed';
    else if (embeddedRatio === undefined) met = '';
    else met = (higherIsBetter ? embeddedRatio >= minRatio : embeddedRatio <= minRatio) ? 'yes' : 'no';
  }
  const cells: Row['cells'] = {};
  for (const key of Object.keys(TARGET_COLUMNS) as TargetKey[]) cells[key] = formatFigure(figures[key], unit);
  return {
    metric,
    cells,
    ratio: ratios.join(' · ') || '—',
    target: minRatio === undefined ? '' : `${higherIsBetter ? '≥' : '≤'} ${formatRatio(minRatio)} v3`,
    met,
  };
}

/** The verdict of `value >= min` (or `value < max`), `failed` when the value is missing. */
export function thresholdVerdict(value: number | undefined, limit: { min?: number; max?: number }): Verdict {
  if (value === undefined || !Number.isFinite(value)) return 'failed';
  if (limit.min !== undefined && value < limit.min) return 'no';
  if (limit.max !== undefined && value >= limit.max) return 'no';
  return 'yes';
}

function cellsOf(row: Row): string[] {
  return [row.metric, ...(Object.keys(TARGET_COLUMNS) as TargetKey[]).map((key) => row.cells[key] ?? '—'), row.ratio, row.target, row.met];
}

/** The rows as an aligned plain-text table. */
export function renderText(rows: readonly Row[]): string {
  const table = [Array.from(COLUMNS), ...rows.map(cellsOf)];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((cells) => cells[i].length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ').trimEnd();
  return [line(table[0]), widths.map((w) => '-'.repeat(w)).join('-+-'), ...table.slice(1).map(line)].join('\n');
}

function escapeMarkdown(cell: string): string {
  return cell.replace(/\|/g, '\\|');
}

/** The rows as a GitHub-flavoured markdown table. */
export function renderMarkdown(rows: readonly Row[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(escapeMarkdown).join(' | ')} |`;
  return [line(COLUMNS), line(COLUMNS.map(() => '---')), ...rows.map((row) => line(cellsOf(row)))].join('\n');
}

/** What "about 1.0×" means for a warm pull through the pull-through cache against an ordinary Lading pull. */
export const WARM_PULL_MIN_RATIO = 0.9;

/**
 * The pull-through cache's warm pull (the blob already cached) against an ordinary pull of a pushed blob of the same
 * size from the same Lading: both in the Lading column, their ratio, judged against {@link WARM_PULL_MIN_RATIO}.
 */
export function warmPullRow(metric: string, warm: Figure, ordinary: Figure): Row {
  const ratio = ratioOf(warm, ordinary);
  return {
    metric,
    cells: { embedded: `${formatFigure(warm, 'MB/s')} through the proxy; ${formatFigure(ordinary, 'MB/s')} ordinary pull` },
    ratio: ratio === undefined ? '—' : `proxy/ordinary ${formatRatio(ratio)}`,
    target: `≈ 1.00× an ordinary Lading pull (≥ ${formatRatio(WARM_PULL_MIN_RATIO)})`,
    met: thresholdVerdict(ratio, { min: WARM_PULL_MIN_RATIO }),
  };
}

/**
 * Concurrent cold pulls of one blob through the pull-through cache: how many GETs of it reached the upstream (the
 * target is 1) and their wall time beside that of one cold pull alone (`together` and `alone` in seconds).
 */
export function singleFlightRow(metric: string, pulls: number, upstreamGets: Figure, together: Figure, alone: Figure): Row {
  const slower = ratioOf(together, alone);
  const gets = upstreamGets.ok ? `${upstreamGets.value} upstream GET${upstreamGets.value === 1 ? '' : 's'} of the blob` : formatFigure(upstreamGets);
  return {
    metric,
    cells: { embedded: `${gets} for ${pulls} pulls; ${pulls} pulls ${formatFigure(together, 's')}, one pull alone ${formatFigure(alone, 's')}` },
    ratio: slower === undefined ? '—' : `${pulls} pulls/one pull ${formatRatio(slower)} the time`,
    target: '1 upstream GET',
    met: upstreamGets.ok ? (upstreamGets.value === 1 ? 'yes' : 'no') : 'failed',
  };
}
