/**
 * A meter provider for this lib's tests whose metrics are read in the Prometheus text format, as a scrape would:
 * its reader also collects the histogram tallies, as every process's readers do.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { RegistryMetrics, createRegistryMetrics } from '../src/registry-metrics';
import { TallyProducer, createTallyProducer } from '../src/tally';

/** A scrapeable meter provider and the tally producer its reader collects. */
export interface TestMetrics {
  meter: Meter;
  tallies: TallyProducer;
  /** The Prometheus text of everything recorded so far. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

/** Starts a scrapeable meter provider. */
export function startTestMetrics(): TestMetrics {
  const tallies = createTallyProducer();
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true, metricProducers: [tallies] });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter('test'),
    tallies,
    async scrape() {
      const server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        return await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`).then((r) => r.text());
      } finally {
        server.close();
      }
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The registry metrics on a scrapeable meter provider: what a test hands to the code it runs, then scrapes. */
export interface TestRegistryMetrics {
  metrics: RegistryMetrics;
  /** The Prometheus text of everything recorded so far, as the debug port would serve it. */
  scrape(): Promise<string>;
  shutdown(): Promise<void>;
}

/** Starts the registry metrics on a scrapeable meter provider (for the tests of the services that record them). */
export function startTestRegistryMetrics(): TestRegistryMetrics {
  const { meter, tallies, scrape, shutdown } = startTestMetrics();
  return { metrics: createRegistryMetrics(meter, tallies), scrape, shutdown };
}
