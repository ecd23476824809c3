/**
 * The admin API's storage quotas and usage reports: `/admin/v1/quotas` sets, lists and removes per-namespace quotas
 * (`quotaBytes`), `/admin/v1/usage` reports what each namespace and each of its repositories holds (bytes of distinct
 * referenced blobs, blobs, manifests, tags), counted from the references at the time of asking. The counting and the
 * enforcement are @lading/metadata's (quotas.ts); this router only maps them to HTTP.
 */
import express, { Request, Router } from 'express';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError, isValidRepositoryName } from '@lading/oci';
import type { AdminChange } from '@lading/events';
import type { Logger } from '@lading/telemetry';

/** What the quota routes need. */
export interface QuotaAdminDeps {
  db: Database;
  logger: Logger;
  /**
   * Puts a quota change in force in this process's quota checks before the admin is answered (the embedded
   * registry's coverage refresh); other processes see it within their poll (libs/runtime quota-coverage-source.ts).
   */
  quotasChanged?: () => Promise<void>;
  /** Makes a change with its audit record in one transaction (admin-api.ts); without it, a plain transaction. */
  change?: AdminChange;
}

/** The most a quota may be: 1 EiB (a bigint Postgres and JSON both hold exactly). */
const MAX_QUOTA_BYTES = 2 ** 60;
const MAX_PAGE = 1000;

function invalid(message: string): OciError {
  return new OciError('UNSUPPORTED', message, undefined, { status: 400 });
}

/** The namespace of `/<namespace>` (it may hold `/`: `team/ml`). */
function namespaceOf(req: Request): string {
  const { namespace } = req.params as { namespace?: string | string[] };
  const name = Array.isArray(namespace) ? namespace.join('/') : (namespace ?? '');
  if (!isValidRepositoryName(name)) throw invalid('the namespace must be a valid repository name');
  return name;
}

/** A quota from a request body: a whole number of bytes, or null to remove it. */
function quotaOf(body: unknown): number | null {
  const value = (body as { quotaBytes?: unknown } | undefined)?.quotaBytes;
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_QUOTA_BYTES) {
    throw invalid('quotaBytes must be a whole number of bytes from 0 to 2^60, or null to remove the quota');
  }
  return value;
}

function pageSize(value: unknown): number {
  if (value === undefined) return 100;
  const n = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_PAGE)) throw invalid(`n must be a number from 1 to ${MAX_PAGE}`);
  return n;
}

/** Creates the router mounted at `/admin/v1/quotas` (behind the admin guard). */
export function createQuotaAdminRouter(deps: QuotaAdminDeps): Router {
  const { db } = deps;
  const change: AdminChange = deps.change ?? ((_req, _res, _status, work) => db.transaction(work));
  const router = express.Router();
  router.get('/', async (_req, res) => {
    const quotas = await meta.namespacesWithQuota(db);
    const rows = [];
    for (const q of quotas) rows.push({ namespace: q.prefix, quotaBytes: q.quotaBytes, countedBytes: await meta.countedNamespaceUsage(db, q.prefix) });
    res.json({ quotas: rows });
  });
  router.put('/*namespace', async (req, res) => {
    const namespace = namespaceOf(req);
    const quotaBytes = quotaOf(req.body);
    const answer = await change(req, res, 200, async (tx) => {
      if (!(await meta.setNamespaceQuota(tx, namespace, quotaBytes))) throw new OciError('NOT_FOUND', `namespace ${namespace} not found`);
      // Counted at once, so that the next push is checked against the true figure.
      const usedBytes = quotaBytes === null ? null : (await meta.reconcileNamespaceUsage(tx, namespace)).bytes;
      return { namespace, quotaBytes, usedBytes };
    });
    if (quotaBytes === null) await meta.dropUnusedUsageCounters(db);
    await deps.quotasChanged?.();
    deps.logger.info({ namespace, quotaBytes, admin: res.locals.admin }, quotaBytes === null ? 'quota removed' : 'quota set');
    res.json(answer);
  });
  router.delete('/*namespace', async (req, res) => {
    const namespace = namespaceOf(req);
    await change(req, res, 204, async (tx) => {
      if (!(await meta.setNamespaceQuota(tx, namespace, null))) throw new OciError('NOT_FOUND', `namespace ${namespace} not found`);
      return null;
    });
    await meta.dropUnusedUsageCounters(db);
    await deps.quotasChanged?.();
    deps.logger.info({ namespace, admin: res.locals.admin }, 'quota removed');
    res.status(204).end();
  });
  return router;
}

/** Creates the router mounted at `/admin/v1/usage` (behind the admin guard). */
export function createUsageAdminRouter(deps: QuotaAdminDeps): Router {
  const { db } = deps;
  const router = express.Router();
  router.get('/', async (_req, res) => {
    const namespaces = [];
    for (const ns of await meta.listNamespaces(db)) {
      const usage = await meta.namespaceUsage(db, ns.prefix);
      if (usage) namespaces.push(usage);
    }
    res.json({ namespaces });
  });
  router.get('/*namespace', async (req, res) => {
    const namespace = namespaceOf(req);
    const limit = pageSize(req.query.n);
    const last = typeof req.query.last === 'string' && req.query.last !== '' ? req.query.last : null;
    const usage = await meta.namespaceUsage(db, namespace);
    if (!usage) throw new OciError('NOT_FOUND', `namespace ${namespace} not found`);
    const repositories = await meta.repositoryUsage(db, namespace, last, limit + 1);
    const more = repositories.length > limit;
    const page = repositories.slice(0, limit);
    res.json({ ...usage, repositories: page, ...(more ? { next: page[page.length - 1]?.name } : {}) });
  });
  return router;
}
