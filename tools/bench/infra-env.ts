/**
 * The infrastructure's settings as the cluster reads them: `.infra/env` (written by tools/infra), with the caller's
 * LADING_* winning over it, and whether the services they name answer.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/** The LADING_* settings of `.infra/env`, the caller's environment winning. */
export function infraSettings(root: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const settings: Record<string, string> = {};
  try {
    for (const line of readFileSync(join(root, '.infra/env'), 'utf8').split('\n')) {
      const m = /^(LADING_[A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) settings[m[1]] = m[2];
    }
  } catch {
    // no .infra/env: only the caller's settings
  }
  for (const [key, value] of Object.entries(env)) if (key.startsWith('LADING_') && value) settings[key] = value;
  return settings;
}

/** Whether a TCP connection to `host:port` opens within `timeoutMs`. */
function answers(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether PostgreSQL, Kafka and MinIO answer where the settings put them: the infrastructure may have been started
 * from another checkout on this machine, whose processes this checkout's `tools/infra/infra status` does not know.
 */
export async function infraAnswers(settings: Record<string, string>): Promise<boolean> {
  const database = settings.LADING_DATABASE_URL;
  const broker = settings.LADING_KAFKA_BROKERS?.split(',')[0];
  const storage = settings.LADING_STORAGE_ENDPOINT;
  if (!database || !broker || !storage) return false;
  const addresses = [new URL(database), new URL(`kafka://${broker}`), new URL(storage)]
    .map((url) => ({ host: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) }));
  const results = await Promise.all(addresses.map(({ host, port }) => answers(host, port)));
  return results.every(Boolean);
}
