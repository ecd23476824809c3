/**
 * Control of the system under test: tools/infra and tools/cluster commands, the processes' PID files, a direct
 * Postgres connection for outbox figures, and finding the processes whose relays currently publish.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { clusterPorts } from '../cluster/ports';

export const ROOT = path.resolve(__dirname, '..', '..');
export const PROCESSES = ['gateway-1', 'gateway-2', 'blob-1', 'blob-2', 'manifest-1'] as const;
export type ProcessName = (typeof PROCESSES)[number];
/** The processes' ports, as tools/cluster lays them out for this environment's LADING_CLUSTER_PORT. */
export const PORTS: Record<ProcessName, number> = faultTargetPorts();
function faultTargetPorts(): Record<ProcessName, number> {
  const ports = clusterPorts(ROOT);
  for (const name of PROCESSES) if (!ports[name]) throw new Error(`tools/cluster/cluster lays out no port for ${name}`);
  return ports as Record<ProcessName, number>;
}
export type Component = 'postgres' | 'minio' | 'kafka';
/**
 * The first key of the outbox relay's slice locks, `pg_try_advisory_xact_lock(RELAY_LOCK_KEY, slice)`
 * (libs/events/src/outbox-relay.ts); in pg_locks the two-key form shows as classid = key, objid = slice, objsubid = 2.
 */
const RELAY_LOCK_KEY = 7340002;

/** The outcome of a command. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command from the repository root, capturing its output; never rejects. */
export function run(command: string, args: string[], timeoutMs = 300_000): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      stderr += `\n(timed out after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    };
    child.on('error', (err) => {
      stderr += String(err);
      finish(127);
    });
    // 'close' waits for the pipes; a daemon that kept them open would delay it, so 'exit' plus a grace period.
    child.on('close', (code) => finish(code ?? 1));
    child.on('exit', (code) => setTimeout(() => finish(code ?? 1), 2000));
  });
}

export const infra = (...args: string[]) => run(path.join(ROOT, 'tools/infra/infra'), args);
export const cluster = (...args: string[]) => run(path.join(ROOT, 'tools/cluster/cluster'), args);

/** The settings tools/infra wrote to .infra/env. */
export function infraEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path.join(ROOT, '.infra', 'env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** The PID tools/cluster recorded for a process, if it is alive. */
export function livePid(name: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(ROOT, '.infra', 'cluster', `${name}.pid`), 'utf8').trim());
  } catch {
    return null;
  }
  if (!pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

/** A small pool for the test's own queries; errors while Postgres is down are the caller's to ignore. */
export function openPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 3000, query_timeout: 10_000, statement_timeout: 10_000 });
  pool.on('error', () => undefined);
  return pool;
}

/** Rows of the outbox waiting to be published, parked ones excluded (optionally only those created up to `before`). */
export async function backlog(pool: pg.Pool, before?: number): Promise<number> {
  const r =
    before === undefined
      ? await pool.query(`SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL`)
      : await pool.query(
          `SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL AND created_at <= to_timestamp($1::double precision / 1000)`,
          [before],
        );
  return Number(r.rows[0].n);
}

/** Outbox rows of a run that the relay counted refusals against or parked: a bus outage must leave both at zero. */
export async function refusedRows(pool: pg.Pool, prefix: string): Promise<{ attempted: number; parked: number }> {
  const r = await pool.query(
    `SELECT count(*) FILTER (WHERE attempts > 0)::int AS attempted, count(*) FILTER (WHERE parked_at IS NOT NULL)::int AS parked
       FROM outbox WHERE repository LIKE $1`,
    [`${prefix}%`],
  );
  return { attempted: Number(r.rows[0].attempted), parked: Number(r.rows[0].parked) };
}

/** The cluster processes holding a relay slice lock right now (they are publishing), most slices first. */
export async function relayHolders(pool: pg.Pool): Promise<ProcessName[]> {
  const r = await pool.query(
    `SELECT a.client_port, count(*)::int AS slices FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objsubid = 2
      GROUP BY a.client_port ORDER BY slices DESC`,
    [RELAY_LOCK_KEY],
  );
  const holders: ProcessName[] = [];
  for (const row of r.rows as Array<{ client_port: number | null }>) {
    const inode = row.client_port ? socketInode(row.client_port) : null;
    if (!inode) continue;
    for (const name of PROCESSES) {
      const pid = livePid(name);
      if (pid && ownsSocket(pid, inode) && !holders.includes(name)) holders.push(name);
    }
  }
  return holders;
}

/** The inode of the local TCP socket bound to 127.0.0.1:<port> (from /proc/net/tcp). */
function socketInode(port: number): string | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1].endsWith(`:${hexPort}`)) return cols[9];
    }
  }
  return null;
}

function ownsSocket(pid: number, inode: string): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return true;
      } catch {
        // the descriptor closed meanwhile
      }
    }
  } catch {
    // the process is gone
  }
  return false;
}
