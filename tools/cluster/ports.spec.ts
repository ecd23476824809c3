import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { clusterPorts } from './ports';

const ROOT = path.resolve(__dirname, '..', '..');

describe('clusterPorts', () => {
  it('lays every process out at its offset from the load balancer, below the ephemeral port range by default', () => {
    const ports = clusterPorts(ROOT, { ...process.env, LADING_CLUSTER_PORT: '' });
    expect(Object.keys(ports).sort()).toEqual(['auth-1', 'blob-1', 'blob-2', 'gateway-1', 'gateway-2', 'gc-1', 'manifest-1', 'nginx', 'webhooks-1']);
    expect(ports.nginx).toBe(15000);
    expect(ports['gateway-1']).toBe(15121);
    for (const port of Object.values(ports)) expect(port + 1000).toBeLessThan(32768);
  });

  it('moves the whole layout with LADING_CLUSTER_PORT, so two clusters on one machine do not collide', () => {
    const a = clusterPorts(ROOT, { ...process.env, LADING_CLUSTER_PORT: '15000' });
    const b = clusterPorts(ROOT, { ...process.env, LADING_CLUSTER_PORT: '17000' });
    for (const name of Object.keys(a)) expect(b[name] - a[name]).toBe(2000);
    const all = [...Object.values(a), ...Object.values(a).map((p) => p + 1000)];
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('tools/cluster free-base', () => {
  const freeBase = () => Number(execFileSync(path.join(ROOT, 'tools', 'cluster', 'cluster'), ['free-base'], { cwd: ROOT, encoding: 'utf8' }).trim());

  it('passes over a base whose layout has any port taken, even a metrics port', async () => {
    const base = freeBase();
    const metricsPort = clusterPorts(ROOT, { ...process.env, LADING_CLUSTER_PORT: String(base) })['gateway-1'] + 1000;
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(metricsPort, '127.0.0.1', resolve));
    try {
      expect(freeBase()).toBeGreaterThan(base);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(freeBase()).toBe(base);
  });
});
