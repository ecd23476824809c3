/**
 * The benchmark's `quota` section (issue 23): image pushes into one namespace at concurrency 16 with a storage quota
 * on it against the same pushes into a namespace without one, in one embedded Lading (same process, same database),
 * taking turns so neither side always goes first. The quota is far above what the pushes bring: what is measured is
 * the cost of counting, not of refusing.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runWorker } from './load';
import { formatNumber, formatRatio, measured, thresholdVerdict, type Figure, type Row } from './report';
import { startEmbedded, type RunningServer, type TargetContext } from './targets';

const ADMIN = { user: 'bench-admin', password: 'bench-admin-password' };
const CONCURRENCY = 16;

/** What the section runs with, from the bench runner. */
export interface QuotaSectionDeps {
  ctx: TargetContext;
  start(starter: () => Promise<RunningServer>): Promise<RunningServer>;
  stop(server: RunningServer): Promise<void>;
  attempt(label: string, measure: () => Promise<Figure>): Promise<Figure>;
}

/** How much the section pushes. */
export interface QuotaShape {
  rounds: number;
  seconds: number;
  layerBytes: number;
}

async function adminCall(base: string, method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${base}/admin/v1${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
}

/** Measures pushes with and without a quota and returns the section's row. */
export async function measureQuota(deps: QuotaSectionDeps, shape: QuotaShape): Promise<Row[]> {
  const { ctx, attempt } = deps;
  const configFile = join(ctx.workDir, 'embedded-quota.yaml');
  await writeFile(configFile, ['admin:', `  user: ${ADMIN.user}`, `  password: ${ADMIN.password}`, ''].join('\n'));
  const lading = await deps.start(() => startEmbedded(ctx, 'embedded-quota', { LADING_CONFIG: configFile }));
  try {
    for (const prefix of ['quota', 'free']) await adminCall(lading.baseUrl, 'POST', '/namespaces', { prefix, public: false });
    await adminCall(lading.baseUrl, 'PUT', '/quotas/quota', { quotaBytes: 2 ** 50 });
    const rates: Record<'on' | 'off', number[]> = { on: [], off: [] };
    let failure: Figure | undefined;
    for (let round = 0; round < shape.rounds && !failure; round++) {
      const turns: Array<['on' | 'off', string]> = [['on', 'quota/app'], ['off', 'free/app']];
      for (const [side, repo] of round % 2 === 0 ? turns : turns.reverse()) {
        const figure = await attempt(`image pushes, quota ${side}, round ${round + 1}/${shape.rounds}`, async () => {
          const r = await runWorker(ctx.root, { kind: 'image-push', base: lading.baseUrl, repo, seconds: shape.seconds, concurrency: CONCURRENCY, layerBytes: shape.layerBytes });
          return measured(r.operations / r.seconds);
        });
        if (!figure.ok) failure = figure;
        else rates[side].push(figure.value);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const on = failure ?? measured(mean(rates.on), `rounds ${rates.on.map(formatNumber).join(', ')}`);
    const off = failure ?? measured(mean(rates.off), `rounds ${rates.off.map(formatNumber).join(', ')}`);
    const ratio = on.ok && off.ok ? on.value / off.value : undefined;
    const cell = (f: Figure) => (f.ok ? `${formatNumber(f.value)}${f.note ? ` (${f.note})` : ''}` : `FAILED: ${f.reason}`);
    return [
      {
        metric: `quotas: image pushes/s into one namespace at concurrency ${CONCURRENCY} (config + 4 layers of ${formatNumber(shape.layerBytes / 1024)} KiB, new each push), quota on vs off, ${shape.rounds} rounds of ${shape.seconds} s each`,
        cells: { embedded: `${cell(on)} with a quota; ${cell(off)} without` },
        ratio: ratio === undefined ? '—' : `on/off ${formatRatio(ratio)}`,
        target: '≥ 0.90× without',
        met: on.ok && off.ok ? thresholdVerdict(ratio, { min: 0.9 }) : 'failed',
      },
    ];
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return [{ metric: 'quotas: pushes with a quota vs without', cells: { embedded: `FAILED: ${reason}` }, ratio: '—', target: '≥ 0.90× without', met: 'failed' }];
  } finally {
    await deps.stop(lading);
  }
}

