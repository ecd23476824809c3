/**
 * The operator's dry run: what the collector would delete now and why, without locking or changing anything.
 * It evaluates the queued reviews with the worker's own decisions, then follows the consequences (an index's
 * children, a subject's referrers, a manifest's blobs) as if the deletions had happened, marking those as coming
 * after a further review delay. Retention rules, expired uploads and pending object deletions are listed too.
 */
import * as meta from '@lading/metadata';
import type { SqlExecutor } from '@lading/metadata';
import { decideBlob, manifestKey } from './blob-review';
import { decideManifest } from './manifest-review';
import { retentionCandidates, unpulledCandidates } from './retention';
import type { GcSettings } from './gc-settings';

/** One line of the plan. */
export interface GcPlanItem {
  kind: 'tag' | 'manifest' | 'blob' | 'upload' | 'object';
  /** delete: would be deleted now; later: would be deleted after a further review delay; keep; report: a dry-run policy's. */
  action: 'delete' | 'later' | 'keep' | 'report' | 'pending';
  /** What: `repo:tag`, `repo@digest`, a digest, an upload id. */
  target: string;
  size?: number;
  reason: string;
  /** Why it was queued, when it comes from a review queue. */
  queued?: string;
}

/** The dry run's result. */
export interface GcPlan {
  generatedAt: string;
  includeNotDue: boolean;
  reviewDelayMs: number;
  uploadTtlMs: number;
  items: GcPlanItem[];
  totals: { tags: number; manifests: number; blobs: number; bytes: number; uploads: number; kept: number; later: number };
}

/** Options of the dry run. */
export interface PlanOptions {
  /** Also evaluate reviews that are not due yet (as if they were). */
  includeNotDue?: boolean;
  /** At most this many queued reviews of each kind. */
  limit?: number;
}

/** Computes what a collection would delete now, and why. */
export async function planCollection(db: SqlExecutor, settings: GcSettings, options: PlanOptions = {}): Promise<GcPlan> {
  const includeNotDue = options.includeNotDue ?? false;
  const limit = options.limit ?? 10_000;
  const items: GcPlanItem[] = [];
  const deleted = new Set<string>();

  for (const c of await retentionCandidates(db, settings)) {
    items.push({ kind: 'tag', action: c.policy.dryRun ? 'report' : 'delete', target: `${c.repository}:${c.tag.name}`, reason: `${c.reason}; then ${c.tag.digest} is reviewed` });
  }

  // Manifests: the queue, then what their deletion would queue (children, referrers), until nothing new goes.
  type Pending = { repositoryId: number; digest: string; queued?: string; later: boolean };
  const work: Pending[] = (await meta.listManifestReviews(db, includeNotDue, limit)).map((r) => ({
    repositoryId: r.repositoryId as number,
    digest: r.digest,
    queued: `${r.reason}, due ${r.reviewAfter.toISOString()}`,
    later: false,
  }));
  // Retention by pulls: the untagged manifests its sweep would queue now, with the rule and the last pull as why.
  for (const c of await unpulledCandidates(db, settings)) {
    if (c.policy.dryRun) items.push({ kind: 'manifest', action: 'report', target: `${c.repository}@${c.digest}`, reason: c.reason });
    else work.unshift({ repositoryId: c.repositoryId, digest: c.digest, queued: c.reason, later: false });
  }
  const seen = new Set<string>();
  const blobCandidates = new Map<string, { queued?: string; later: boolean }>();
  while (work.length > 0) {
    const next = work.shift()!;
    const key = manifestKey(next.repositoryId, next.digest);
    if (seen.has(key)) continue;
    seen.add(key);
    const d = await decideManifest(db, next.repositoryId, next.digest, { lock: false, settings, assumeDeleted: deleted });
    if (d.action === 'gone') continue;
    const target = `${d.row.repository}@${d.row.digest}`;
    if (d.action === 'keep') {
      items.push({ kind: 'manifest', action: 'keep', target, reason: d.reason, queued: next.queued });
      continue;
    }
    deleted.add(key);
    items.push({ kind: 'manifest', action: next.later ? 'later' : 'delete', target, size: d.row.size, reason: d.reason, queued: next.queued });
    const after = `after ${target} is deleted`;
    for (const child of d.children) work.push({ repositoryId: next.repositoryId, digest: child, queued: after, later: true });
    for (const r of await meta.referrersOf(db, next.repositoryId, next.digest)) work.push({ repositoryId: next.repositoryId, digest: r, queued: after, later: true });
    for (const blob of d.blobs) if (!blobCandidates.has(blob)) blobCandidates.set(blob, { queued: after, later: true });
  }

  for (const r of await meta.listBlobReviews(db, includeNotDue, limit)) {
    blobCandidates.set(r.digest, { queued: `${r.reason}, due ${r.reviewAfter.toISOString()}`, later: false });
  }
  for (const [digest, source] of blobCandidates) {
    const d = await decideBlob(db, digest, { lock: false, graceMs: settings.reviewDelayMs, assumeDeleted: deleted });
    if (d.action === 'gone') continue;
    // A blob that only manifests deleted above reference is queued again by their deletion: it goes a delay later.
    const later = source.later || (d.action === 'delete' && d.afterAssumedDeletes);
    const action = d.action === 'delete' ? (later ? 'later' : 'delete') : d.action === 'reschedule' ? 'later' : 'keep';
    items.push({ kind: 'blob', action, target: digest, size: d.size, reason: d.reason, queued: source.queued });
  }

  for (const u of await meta.listExpiredUploads(db, settings.uploadTtlMs, limit)) {
    items.push({ kind: 'upload', action: 'delete', target: u.id, reason: `upload session in ${u.repository} idle since ${u.updatedAt.toISOString()} (longer than the upload TTL)` });
  }
  for (const t of await meta.listTombstones(db, limit)) {
    items.push({
      kind: 'object',
      action: 'pending',
      target: t.target,
      size: t.size,
      reason: `metadata deleted ${t.createdAt.toISOString()}, object deletion pending${t.attempts > 0 ? ` (${t.attempts} failed attempts: ${t.lastError})` : ''}`,
    });
  }

  const now = items.filter((i) => i.action === 'delete');
  return {
    generatedAt: new Date().toISOString(),
    includeNotDue,
    reviewDelayMs: settings.reviewDelayMs,
    uploadTtlMs: settings.uploadTtlMs,
    items,
    totals: {
      tags: now.filter((i) => i.kind === 'tag').length,
      manifests: now.filter((i) => i.kind === 'manifest').length,
      blobs: now.filter((i) => i.kind === 'blob').length,
      bytes: now.filter((i) => i.kind === 'blob').reduce((sum, i) => sum + (i.size ?? 0), 0),
      uploads: now.filter((i) => i.kind === 'upload').length,
      kept: items.filter((i) => i.action === 'keep').length,
      later: items.filter((i) => i.action === 'later').length,
    },
  };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** Renders a plan as the `garbage-collect --dry-run` text: one line per item, then the totals. */
export function renderPlan(plan: GcPlan, verbose = false): string {
  const lines: string[] = [];
  lines.push(
    `garbage-collect --dry-run: review delay ${plan.reviewDelayMs / 1000}s, upload TTL ${plan.uploadTtlMs / 1000}s; ${plan.includeNotDue ? 'every queued review, due or not' : 'reviews due now (--all: every queued review)'}`,
  );
  const label: Record<GcPlanItem['action'], string> = { delete: 'DELETE', later: 'LATER ', keep: 'KEEP  ', report: 'REPORT', pending: 'PENDING' };
  for (const item of plan.items) {
    if (item.action === 'keep' && !verbose) continue;
    const size = item.size !== undefined ? ` (${bytes(item.size)})` : '';
    const queued = item.queued ? ` [queued: ${item.queued}]` : '';
    lines.push(`${label[item.action]} ${item.kind} ${item.target}${size}: ${item.reason}${queued}`);
  }
  const t = plan.totals;
  lines.push(
    `would delete now: ${t.tags} tags, ${t.manifests} manifests, ${t.blobs} blobs (${bytes(t.bytes)}), ${t.uploads} upload sessions; ${t.later} more after a further review delay; ${t.kept} kept${verbose ? '' : ' (--verbose lists them)'}`,
  );
  return `${lines.join('\n')}\n`;
}
