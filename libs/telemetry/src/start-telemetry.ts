/**
 * Starting OpenTelemetry in a Lading process. It must run before express, pg, kafkajs and undici are first
 * loaded (the instrumentations patch them as they load), so each service's `main.ts` imports a one-line module
 * that calls `startTelemetry` as its very first import; processes run as `node --import tsx .../main.ts`, which
 * transpiles to CommonJS and keeps import order, so nothing instrumented has been loaded yet at that point.
 *
 * The standard OTEL_* variables configure the SDK (exporter, endpoint, protocol, sampler, propagators, resource),
 * read by the SDK itself. One rule is ours: exporting is off unless configured. With neither
 * OTEL_TRACES_EXPORTER nor an OTLP endpoint set, no exporter is created and nothing is sent anywhere; metrics go
 * over OTLP only with OTEL_METRICS_EXPORTER=otlp. Prometheus metrics are served on the debug port (`serveMetrics`).
 * Without an exporter nothing is instrumented either (no spans are made, no async context is tracked): tracing costs
 * nothing unless it is on.
 */
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Meter, metrics } from '@opentelemetry/api';
import { getStringFromEnv, getStringListFromEnv, getNumberFromEnv } from '@opentelemetry/core';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { IMetricReader, MeterProvider, PeriodicExportingMetricReader, PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { TallyProducer, createTallyProducer } from './tally';

/*
 * The SDK, the instrumentations and the OTLP exporters are loaded only when something is to be exported: together
 * they are tens of megabytes of modules that an untraced process (the default) would hold for nothing. `require`
 * keeps the load synchronous, as startTelemetry must finish before anything instrumented is imported.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const loadSdk = () => require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
const loadOtlpJsonMetrics = () => require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http');
const loadOtlpProtoMetrics = () => require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto');
const loadInstrumentations = () => ({
  ...(require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http')),
  ...(require('@opentelemetry/instrumentation-express') as typeof import('@opentelemetry/instrumentation-express')),
  ...(require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici')),
  ...(require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg')),
  ...(require('@opentelemetry/instrumentation-kafkajs') as typeof import('@opentelemetry/instrumentation-kafkajs')),
});
/* eslint-enable @typescript-eslint/no-require-imports */

/** Options of `startTelemetry`. */
export interface TelemetryOptions {
  /** The service: `gateway` becomes `service.name` `lading-gateway`. */
  service: string;
  /** Span processors to use instead of those the OTEL_* variables choose (tests collect spans in memory). */
  spanProcessors?: SpanProcessor[];
}

/** The running telemetry of a process. */
export interface Telemetry {
  /** The OpenTelemetry `service.name`: `lading-<service>`. */
  readonly serviceName: string;
  /** Whether spans are exported (an exporter is configured); when false no tracer provider is registered. */
  readonly tracing: boolean;
  /** Whether metrics also go over OTLP (OTEL_METRICS_EXPORTER=otlp). */
  readonly otlpMetrics: boolean;
  /** The meter Lading's instruments are created from (see `createRegistryMetrics`). */
  readonly meter: Meter;
  /** The histograms kept in memory, collected by every metric reader of the process (see `createRegistryMetrics`). */
  readonly tallies: TallyProducer;
  /**
   * Serves `GET /metrics` (Prometheus text) at `addr` (`host:port`, or `off` for none). Resolves with the bound
   * address, or undefined when off or when the port cannot be bound (reported to `onError`; the process goes on).
   */
  serveMetrics(addr: string, onError?: (err: Error) => void): Promise<AddressInfo | undefined>;
  /** Flushes pending spans and metrics and stops the metrics server. */
  shutdown(): Promise<void>;
}

/** Paths of health checks and scrapes: not traced (they would drown the traces that matter). */
const UNTRACED_PATHS = /^\/(healthz|readyz|metrics)(\?|$)/;

/** True when the OTEL_* variables configure a trace exporter (the SDK would otherwise default to OTLP). */
function tracesConfigured(): boolean {
  const exporters = getStringListFromEnv('OTEL_TRACES_EXPORTER')?.filter((e) => e !== 'null') ?? [];
  if (exporters.length > 0) return !exporters.includes('none');
  return Boolean(getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_ENDPOINT'));
}

/** The OTLP metric reader when OTEL_METRICS_EXPORTER names otlp, with the protocol and interval the variables say. */
function otlpMetricReader(tallies: TallyProducer): IMetricReader | undefined {
  if (!(getStringListFromEnv('OTEL_METRICS_EXPORTER') ?? []).includes('otlp')) return undefined;
  const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  const exporter: PushMetricExporter = protocol === 'http/json' ? new (loadOtlpJsonMetrics().OTLPMetricExporter)() : new (loadOtlpProtoMetrics().OTLPMetricExporter)();
  const interval = getNumberFromEnv('OTEL_METRIC_EXPORT_INTERVAL') ?? 60_000;
  return new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 30_000), metricProducers: [tallies] });
}

/** The instrumentations of every Lading process. */
function instrumentations(): NodeSDKConfiguration['instrumentations'] {
  const { HttpInstrumentation, ExpressInstrumentation, UndiciInstrumentation, PgInstrumentation, KafkaJsInstrumentation } = loadInstrumentations();
  return [
    new HttpInstrumentation({
      ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? ''),
      // Background loops (GC, relay, readiness probes) would otherwise start a trace per poll.
      requireParentforOutgoingSpans: true,
    }),
    new ExpressInstrumentation(),
    new UndiciInstrumentation({ requireParentforSpans: true }),
    // Statement text only (parameters may hold secrets); no spans for the pollers' queries outside any trace.
    new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
    new KafkaJsInstrumentation(),
  ];
}

/** Starts the OpenTelemetry SDK for one process. Call it before anything instrumented is imported. */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const serviceName = `lading-${options.service}`;
  const tracing = options.spanProcessors !== undefined ? options.spanProcessors.length > 0 : tracesConfigured();
  const tallies = createTallyProducer();
  const prometheus = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true, metricProducers: [tallies] });
  const otlpReader = otlpMetricReader(tallies);
  let stopProviders: () => Promise<void>;
  if (tracing || otlpReader) {
    const sdk = new (loadSdk().NodeSDK)({
      serviceName,
      // With nothing to export, spans would be made and dropped on every request: patching nothing (and tracking no
      // async context) keeps the pull path at its untraced speed.
      instrumentations: tracing ? instrumentations() : [],
      // The SDK reads null as "register none" (its type does not say so).
      contextManager: tracing ? undefined : (null as unknown as NodeSDKConfiguration['contextManager']),
      metricReaders: otlpReader ? [prometheus, otlpReader] : [prometheus],
      // No OTLP logs: lines go to stdout as JSON with trace ids (an unset OTEL_LOGS_EXPORTER would mean OTLP).
      logRecordProcessors: [],
      // Undefined lets the SDK build exporters from OTEL_TRACES_EXPORTER / OTLP settings; [] registers no tracer.
      spanProcessors: options.spanProcessors ?? (tracing ? undefined : []),
    });
    sdk.start();
    stopProviders = () => sdk.shutdown();
  } else {
    // Nothing leaves the process: the Prometheus reader is all there is, and no tracer, context manager or
    // instrumentation is registered.
    const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), readers: [prometheus] });
    metrics.setGlobalMeterProvider(provider);
    stopProviders = () => provider.shutdown();
  }
  const meter = metrics.getMeterProvider().getMeter('lading');
  let server: Server | undefined;

  return {
    serviceName,
    tracing,
    otlpMetrics: otlpReader !== undefined,
    meter,
    tallies,
    serveMetrics(addr, onError) {
      if (addr === 'off' || server) return Promise.resolve(server?.address() as AddressInfo | undefined);
      const separator = addr.lastIndexOf(':');
      const host = addr.slice(0, separator).replace(/^\[|\]$/g, '') || '0.0.0.0';
      const port = Number(addr.slice(separator + 1));
      const candidate = createServer((req, res) => {
        if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
          prometheus.getMetricsRequestHandler(req, res);
        } else {
          res.statusCode = 404;
          res.end('not found: metrics are at /metrics\n');
        }
      });
      return new Promise((resolve) => {
        candidate.once('error', (err) => {
          onError?.(err);
          resolve(undefined);
        });
        candidate.listen(port, host, () => {
          server = candidate;
          resolve(candidate.address() as AddressInfo);
        });
      });
    },
    async shutdown() {
      const closing = server ? new Promise<void>((resolve) => server?.close(() => resolve())) : Promise.resolve();
      server?.closeAllConnections();
      await Promise.all([closing, stopProviders()]);
    },
  };
}
