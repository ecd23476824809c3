/**
 * Counters for the pull path, kept in plain memory and handed to OpenTelemetry only when metrics are collected.
 * The SDK's own counters sort and serialize a call's attributes on every `add` — most of what a cached manifest
 * GET cost in metrics; a tally keys its label values in a fixed order instead, and reports the same series (the same
 * names, labels and Prometheus types) through an observable instrument.
 */
import type { Attributes, Meter, MetricOptions } from '@opentelemetry/api';

/** A counter in memory, reported at collection: `add` has the shape of an OpenTelemetry counter's. */
export interface Tally<L extends Attributes> {
  add(value: number, labels: L): void;
}

interface Series<L> {
  labels: L;
  value: number;
}

/**
 * Creates a tally reported as `name`. `labelNames` lists every label a call passes, in a fixed order (the series
 * key). `monotonic` makes it a counter (`_total` in Prometheus); otherwise an up-down counter (a gauge there).
 */
export function createTally<L extends Attributes>(meter: Meter, name: string, options: MetricOptions & { monotonic: boolean }, labelNames: readonly (keyof L & string)[]): Tally<L> {
  const series = new Map<string, Series<L>>();
  const { monotonic, ...instrumentOptions } = options;
  const instrument = monotonic ? meter.createObservableCounter<L>(name, instrumentOptions) : meter.createObservableUpDownCounter<L>(name, instrumentOptions);
  instrument.addCallback((result) => {
    for (const entry of series.values()) result.observe(entry.value, entry.labels);
  });
  return {
    add(value, labels) {
      let key = '';
      for (const label of labelNames) key += `${String(labels[label])}\u0000`;
      const entry = series.get(key);
      if (entry) entry.value += value;
      else series.set(key, { labels: { ...labels }, value });
    },
  };
}
