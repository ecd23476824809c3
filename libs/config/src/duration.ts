/**
 * Durations as the configuration writes them (`500ms`, `30s`, `5m`, `24h`, `30d`), apart from the schema so that code
 * which only converts them (the embedded registry's read workers, whose bundle leaves out what it does not use) does
 * not load zod and build the whole schema.
 */

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration's grammar: a whole number and a unit. */
export const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** Converts a duration such as `500ms`, `30s`, `5m`, `24h` or `30d` to milliseconds. */
export function durationMs(value: string): number {
  const m = DURATION.exec(value);
  if (!m) throw new Error(`not a duration: ${value}`);
  return Number(m[1]) * DURATION_UNITS_MS[m[2] as keyof typeof DURATION_UNITS_MS];
}
