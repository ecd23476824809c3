/**
 * Counters and histograms for the pull path, kept in plain memory and handed to OpenTelemetry only when metrics are
 * collected. The SDK's own instruments sort and serialize a call's attributes on every `add`/`record` — most of
 * what a cached manifest GET cost in metrics; a tally keys its label values in a fixed order instead, and reports the
 * same series (the same names, labels and Prometheus types): counters through an observable instrument, histograms
 * through a metric producer the readers collect from.
 */
import { ValueType, type Attributes, type HrTime, type Meter, type MetricOptions } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, type CollectionResult, type HistogramMetricData, type MetricProducer } from '@opentelemetry/sdk-metrics';

/** One series of a tally, resolved once by its labels, for a caller that adds to it on every request. */
export interface TallySeries {
  add(value: number): void;
}

/** A counter in memory, reported at collection: `add` has the shape of an OpenTelemetry counter's. */
export interface Tally<L extends Attributes> {
  add(value: number, labels: L): void;
  /** The series of `labels`, to add to without naming them again. */
  series(labels: L): TallySeries;
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
  function entryOf(labels: L): Series<L> {
    let key = '';
    for (const label of labelNames) key += `${String(labels[label])}\u0000`;
    let entry = series.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, value: 0 };
      series.set(key, entry);
    }
    return entry;
  }
  return {
    add(value, labels) {
      entryOf(labels).value += value;
    },
    series(labels) {
      const entry = entryOf(labels);
      return {
        add(value) {
          entry.value += value;
        },
      };
    },
  };
}

/** One series of a histogram tally, resolved once by its labels. */
export interface HistogramTallySeries {
  record(value: number): void;
}

/** A histogram in memory, reported at collection: `record` has the shape of an OpenTelemetry histogram's. */
export interface HistogramTally<L extends Attributes> {
  record(value: number, labels: L): void;
  /** The series of `labels`, to record into without naming them again. */
  series(labels: L): HistogramTallySeries;
}

/** What a histogram tally is declared with. */
export interface HistogramTallyOptions {
  description: string;
  unit: string;
  /** Upper bounds of the buckets, ascending (a last bucket up to +Inf follows). */
  boundaries: readonly number[];
}

interface HistogramSeries<L> {
  labels: L;
  startTime: HrTime;
  /** One count per bucket: `boundaries.length + 1`. */
  counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

/**
 * Hands the histograms kept in memory to OpenTelemetry's metric readers: pass it as `metricProducers` of each
 * reader, and the histograms it makes are scraped and exported like the SDK's own (cumulative, explicit buckets).
 */
export interface TallyProducer extends MetricProducer {
  /** Creates a histogram tally reported as `name`; `labelNames` lists every label a call passes, in a fixed order. */
  histogram<L extends Attributes>(name: string, options: HistogramTallyOptions, labelNames: readonly (keyof L & string)[]): HistogramTally<L>;
}

/** Creates the producer of this process's histogram tallies. */
export function createTallyProducer(): TallyProducer {
  const reporters: Array<() => HistogramMetricData> = [];
  const resource = resourceFromAttributes({});
  return {
    histogram<L extends Attributes>(name: string, options: HistogramTallyOptions, labelNames: readonly (keyof L & string)[]): HistogramTally<L> {
      const boundaries = [...options.boundaries];
      const series = new Map<string, HistogramSeries<L>>();
      reporters.push(() => {
        const endTime = hrTime();
        return {
          descriptor: { name, description: options.description, unit: options.unit, valueType: ValueType.DOUBLE },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: [...series.values()].map((s) => ({
            attributes: s.labels,
            startTime: s.startTime,
            endTime,
            value: { buckets: { boundaries, counts: [...s.counts] }, sum: s.sum, count: s.count, min: s.min, max: s.max },
          })),
        };
      });
      const entryOf = (labels: L): HistogramSeries<L> => {
        let key = '';
        for (const label of labelNames) key += `${String(labels[label])}\u0000`;
        let entry = series.get(key);
        if (!entry) {
          entry = { labels: { ...labels }, startTime: hrTime(), counts: new Array<number>(boundaries.length + 1).fill(0), sum: 0, count: 0, min: Infinity, max: -Infinity };
          series.set(key, entry);
        }
        return entry;
      };
      const into = (entry: HistogramSeries<L>, value: number) => {
        // Buckets are few (15): a linear scan beats a binary search at this size.
        let bucket = 0;
        while (bucket < boundaries.length && value > boundaries[bucket]) bucket++;
        entry.counts[bucket]++;
        entry.sum += value;
        entry.count++;
        if (value < entry.min) entry.min = value;
        if (value > entry.max) entry.max = value;
      };
      return {
        record(value, labels) {
          into(entryOf(labels), value);
        },
        series(labels) {
          const entry = entryOf(labels);
          return { record: (value) => into(entry, value) };
        },
      };
    },
    async collect(): Promise<CollectionResult> {
      const metrics = reporters.map((report) => report()).filter((m) => m.dataPoints.length > 0);
      return { resourceMetrics: { resource, scopeMetrics: metrics.length ? [{ scope: { name: 'lading' }, metrics }] : [] }, errors: [] };
    },
  };
}
