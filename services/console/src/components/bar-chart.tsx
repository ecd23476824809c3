/**
 * A bar chart as SVG that a screen reader can read: the image is named by its title and described by its summary,
 * and the numbers behind it are a table just below (in a disclosure), so nothing is only in the picture. Bars are
 * drawn with geometry attributes and classes, never style attributes (the console's CSP).
 */

/** One bar: its label and value. */
export interface Bar {
  label: string;
  value: number;
}

/** What the chart shows and how its values read. */
export interface BarChartProps {
  id: string;
  title: string;
  /** One or two sentences saying what the chart shows (its long description). */
  summary: string;
  bars: Bar[];
  /** How a value is written (bytes, a count). */
  format(value: number): string;
  /** The header of the label column in the data table. */
  labelHeader: string;
  valueHeader: string;
  /** Horizontal bars (long labels, such as namespaces) or vertical (a time series). */
  orientation?: 'horizontal' | 'vertical';
}

const WIDTH = 640;

/** A bar chart with its data table. */
export function BarChart({ id, title, summary, bars, format, labelHeader, valueHeader, orientation = 'horizontal' }: BarChartProps) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const titleId = `${id}-title`;
  const descId = `${id}-desc`;
  let svg;
  if (orientation === 'horizontal') {
    const row = 28;
    const labelWidth = 180;
    const height = Math.max(row, bars.length * row);
    svg = (
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-labelledby={titleId} aria-describedby={descId} preserveAspectRatio="xMinYMin meet">
        {bars.map((b, i) => {
          const width = Math.max(1, ((WIDTH - labelWidth - 90) * b.value) / max);
          return (
            <g key={b.label} aria-hidden="true">
              <text class="chart-label" x={labelWidth - 8} y={i * row + row / 2 + 5} text-anchor="end">
                {b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label}
              </text>
              <rect class="chart-bar" x={labelWidth} y={i * row + 5} width={width} height={row - 10} rx={3} />
              <text class="chart-value" x={labelWidth + width + 6} y={i * row + row / 2 + 5}>
                {format(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    );
  } else {
    const height = 200;
    const base = height - 24;
    // Room either side for the first and last day's label, centred under its bar.
    const pad = 24;
    const step = (WIDTH - 2 * pad) / Math.max(1, bars.length);
    svg = (
      <svg class="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-labelledby={titleId} aria-describedby={descId} preserveAspectRatio="xMinYMin meet">
        <line class="chart-axis" x1={0} x2={WIDTH} y1={base} y2={base} aria-hidden="true" />
        {bars.map((b, i) => {
          const h = (b.value / max) * (base - 16);
          return (
            <g key={b.label} aria-hidden="true">
              <rect class="chart-bar" x={pad + i * step + step * 0.15} y={base - h} width={step * 0.7} height={h} rx={2} />
              {i % Math.ceil(bars.length / 8) === 0 ? (
                <text class="chart-label" x={pad + i * step + step / 2} y={height - 6} text-anchor="middle">
                  {b.label.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
        <text class="chart-value" x={4} y={12} aria-hidden="true">
          max {format(max)}
        </text>
      </svg>
    );
  }
  return (
    <figure class="figure">
      <figcaption>
        <h3 id={titleId}>{title}</h3>
        <p id={descId} class="meta">
          {summary}
        </p>
      </figcaption>
      {bars.length ? svg : <p>No data yet.</p>}
      {bars.length ? (
        <details>
          <summary>The numbers</summary>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">{labelHeader}</th>
                  <th scope="col">{valueHeader}</th>
                </tr>
              </thead>
              <tbody>
                {bars.map((b) => (
                  <tr key={b.label}>
                    <th scope="row">{b.label}</th>
                    <td>{format(b.value)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}
    </figure>
  );
}
