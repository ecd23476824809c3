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

/** One printed row of the results table. */
export interface Row {
  metric: string;
  embedded: string;
  cluster: string;
  /** Distribution v3, the anchor every ratio is taken against. */
  distribution: string;
  /** 2 replicas of Distribution v3 behind nginx, what the cluster is compared with. */
  distributionX2: string;
  /** Debian's Distribution 2.8.2, kept beside it. */
  distribution28: string;
  ratio: string;
  target: string;
  met: Verdict;
}

/** The column headings, in order. */
export const COLUMNS = ['metric', 'Lading embedded', 'Lading cluster', 'Distribution v3', 'Distribution v3 ×2 (nginx)', 'Distribution 2.8.2', 'ratio to Distribution v3', 'target', 'met?'] as const;

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

/**
 * The figures of one metric on each target: `distribution` is v3 (the anchor), `distribution-x2` 2 v3 replicas
 * behind nginx, `distribution-2.8` Debian's 2.8.2.
 */
export interface TargetFigures {
  embedded?: Figure;
  cluster?: Figure;
  distribution?: Figure;
  'distribution-x2'?: Figure;
  'distribution-2.8'?: Figure;
}

/**
 * A row comparing Lading with Distribution v3 on one metric, each other figure with its ratio to v3's, and the
 * cluster's also to v3 ×2 (its like for like). The verdict is judged on the embedded figure (the like-for-like
 * comparison: one process each on the same box); the other ratios are printed beside it.
 */
export function comparisonRow(metric: string, unit: string, figures: TargetFigures, minRatio?: number, higherIsBetter = true): Row {
  const embeddedRatio = ratioOf(figures.embedded, figures.distribution);
  const clusterToReplicas = ratioOf(figures.cluster, figures['distribution-x2']);
  const ratios = ([
    ['embedded', embeddedRatio],
    ['cluster', ratioOf(figures.cluster, figures.distribution)],
    ['v3 ×2', ratioOf(figures['distribution-x2'], figures.distribution)],
    ['2.8.2', ratioOf(figures['distribution-2.8'], figures.distribution)],
  ] as const)
    .filter(([, ratio]) => ratio !== undefined)
    .map(([name, ratio]) => `${name} ${formatRatio(ratio ?? NaN)}`);
  if (clusterToReplicas !== undefined) ratios.push(`cluster/v3 ×2 ${formatRatio(clusterToReplicas)}`);
  let met: Verdict = '';
  if (minRatio !== undefined) {
    // Not judged when a side was not measured at all (left out with --only); failed when a measurement failed.
    if (figures.embedded?.ok === false || figures.distribution?.ok === false) met = 'failed';
    else if (embeddedRatio === undefined) met = '';
    else met = (higherIsBetter ? embeddedRatio >= minRatio : embeddedRatio <= minRatio) ? 'yes' : 'no';
  }
  return {
    metric,
    embedded: formatFigure(figures.embedded, unit),
    cluster: formatFigure(figures.cluster, unit),
    distribution: formatFigure(figures.distribution, unit),
    distributionX2: formatFigure(figures['distribution-x2'], unit),
    distribution28: formatFigure(figures['distribution-2.8'], unit),
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
  return [row.metric, row.embedded, row.cluster, row.distribution, row.distributionX2, row.distribution28, row.ratio, row.target, row.met];
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
