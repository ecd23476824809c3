/**
 * tools/cluster's port layout, read from the script itself (`tools/cluster/cluster ports`), which is its one
 * source: the load balancer on LADING_CLUSTER_PORT and every process at its offset from it.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** A process of the cluster (`nginx` is the load balancer) and its API port; its metrics port is that + 1000. */
export type ClusterPorts = Record<string, number>;

/** The layout the cluster has, or would have, for the given environment's LADING_CLUSTER_PORT. */
export function clusterPorts(root: string, env: NodeJS.ProcessEnv = process.env): ClusterPorts {
  const out = execFileSync(path.join(root, 'tools', 'cluster', 'cluster'), ['ports'], { cwd: root, env, encoding: 'utf8' });
  const ports: ClusterPorts = {};
  for (const line of out.split('\n')) {
    const m = /^([a-z0-9-]+)=(\d+)$/.exec(line.trim());
    if (m) ports[m[1]] = Number(m[2]);
  }
  if (!ports.nginx) throw new Error(`tools/cluster/cluster ports printed no layout:\n${out}`);
  return ports;
}
