/**
 * The admin API's pull-through caches (`/admin/v1/proxies`): list every rule (config ones marked `source: config`,
 * read-only), create or replace a stored one (PUT /proxies/{namespace}), delete one (DELETE). The rules and their
 * checks are @lading/upstream's (stored-proxy-rules.ts); this router only maps them to HTTP. Passwords are never
 * answered, only `passwordSet`.
 */
import express, { Request, Router } from 'express';
import type { SecretCipher } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import type { AdminChange } from '@lading/events';
import type { Logger } from '@lading/telemetry';
import { ProxyRuleError, listProxyRuleViews, putProxyRuleIn, removeProxyRuleIn } from '@lading/upstream';

/** What the proxies' admin routes need. */
export interface ProxyAdminDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** Seals upstream passwords before they are stored. */
  secrets: SecretCipher;
  /** Puts a change in force in this process at once (its live rules' refresh); others see it on their next poll. */
  proxyRulesChanged?: () => Promise<void>;
  /** Makes a change with its audit record in one transaction (admin-api.ts); without it, a plain transaction. */
  change?: AdminChange;
}

/** A refused change as the admin API answers it: 400 bad input, 409 a config rule, 404 no such stored rule. */
function toOciError(err: unknown): unknown {
  if (!(err instanceof ProxyRuleError)) return err;
  if (err.kind === 'invalid') return new OciError('UNSUPPORTED', err.message, undefined, { status: 400 });
  if (err.kind === 'read-only') return new OciError('DENIED', err.message, undefined, { status: 409 });
  return new OciError('NOT_FOUND', err.message);
}

/** The namespace of `/proxies/<namespace>` (it may hold `/`: `cache/ghcr`). */
function namespaceOf(req: Request): string {
  const { namespace } = req.params as { namespace?: string | string[] };
  return Array.isArray(namespace) ? namespace.join('/') : (namespace ?? '');
}

/** Creates the router mounted at `/admin/v1/proxies` (behind the admin guard). */
export function createProxyAdminRouter(deps: ProxyAdminDeps): Router {
  const router = express.Router();
  const change: AdminChange = deps.change ?? ((_req, _res, _status, work) => deps.db.transaction(work));
  const changed = async () => {
    // The change is committed: a failed refresh here is caught up by the next poll, and is no client's mistake.
    await deps.proxyRulesChanged?.().catch((err: unknown) => deps.logger.error({ err }, 'the proxy rules of this process were not refreshed; the next poll will'));
  };

  router.get('/', async (_req, res) => {
    res.json({ proxies: await listProxyRuleViews(deps.db, deps.config) });
  });
  router.put('/*namespace', async (req, res) => {
    const namespace = namespaceOf(req);
    let created = false;
    const rule = await change(
      req,
      res,
      () => (created ? 201 : 200),
      async (tx) => {
        const put = await putProxyRuleIn(tx, { config: deps.config, cipher: deps.secrets }, namespace, req.body).catch((err: unknown) => {
          throw toOciError(err);
        });
        created = put.created;
        return put.rule;
      },
    );
    await changed();
    deps.logger.info({ namespace, upstream: rule.upstream, admin: res.locals.admin }, created ? 'proxy rule created' : 'proxy rule replaced');
    res.status(created ? 201 : 200).json(rule);
  });
  router.delete('/*namespace', async (req, res) => {
    const namespace = namespaceOf(req);
    await change(req, res, 204, async (tx) => {
      await removeProxyRuleIn(tx, deps.config, namespace).catch((err: unknown) => {
        throw toOciError(err);
      });
      return null;
    });
    await changed();
    deps.logger.info({ namespace, admin: res.locals.admin }, 'proxy rule deleted; its cached content stays as ordinary content');
    res.status(204).end();
  });
  return router;
}
