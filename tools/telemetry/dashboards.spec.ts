/**
 * The starter dashboard and the Prometheus configs query only metrics Lading exports (a renamed metric would
 * otherwise leave an empty panel that nobody notices), and the dashboard's data sources are the provisioned ones.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { METRIC_NAMES } from '@lading/telemetry';
import { ROOT } from './probe-runner';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const KNOWN = new Set<string>(Object.values(METRIC_NAMES));

interface Panel {
  title: string;
  datasource: { uid: string };
  targets: Array<{ expr: string }>;
}

describe('infra/grafana/dashboards/lading.json', () => {
  const dashboard = JSON.parse(read('infra/grafana/dashboards/lading.json')) as { uid: string; panels: Panel[] };

  it.each(dashboard.panels.map((p) => [p.title, p] as const))('%s queries only metrics Lading exports', (_title, panel) => {
    expect(panel.targets.length).toBeGreaterThan(0);
    for (const { expr } of panel.targets) {
      const names = [...expr.matchAll(/\b((?:registry|lading)_[a-z_]+)/g)].map((m) => m[1].replace(/_(bucket|count|sum)$/, ''));
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect({ expr, name, known: KNOWN.has(name) }).toEqual({ expr, name, known: true });
    }
  });

  it('uses the data source the provisioning declares', () => {
    const provisioned = parse(read('infra/grafana/provisioning/datasources/prometheus.yml')) as { datasources: Array<{ uid: string; type: string }> };
    const uids = provisioned.datasources.map((d) => d.uid);
    for (const panel of dashboard.panels) expect(uids).toContain(panel.datasource.uid);
  });
});

describe('infra/prometheus', () => {
  it('the compose config scrapes every Lading service on the debug port, and the collector on its Prometheus exporter port', () => {
    const config = parse(read('infra/prometheus/prometheus.yml')) as { scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }>; static_configs?: Array<{ targets: string[] }> }> };
    const lading = config.scrape_configs.find((c) => c.job_name === 'lading');
    expect(lading?.dns_sd_configs?.[0].port).toBe(9464);
    expect(lading?.dns_sd_configs?.[0].names).toEqual(expect.arrayContaining(['gateway', 'blob', 'manifest', 'auth', 'webhooks']));
    const collector = parse(read('infra/otel/collector.yaml')) as { exporters: { prometheus: { endpoint: string } } };
    const port = collector.exporters.prometheus.endpoint.split(':').pop();
    expect(config.scrape_configs.find((c) => c.job_name === 'otel-collector')?.static_configs?.[0].targets).toEqual([`otel-collector:${port}`]);
  });
});
