/**
 * The webhook part of the admin API, mounted at `/admin/v1/webhooks` behind the admin API's own authentication:
 * create, list, show, update, delete, rotate the secret, list deliveries, redeliver one, and queue a ping. Secrets are
 * shown twice only: in the responses that create and rotate them.
 */
import express, { Response, Router } from 'express';
import { SecretCipher, secretCipherFromConfig } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import { type AdminChange, IdGenerator, createUuidV7Generator } from '@lading/events';
import { nextPageLink, parsePageRequest } from '@lading/http';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { Resolver, parseAllowList, systemResolver } from './address-guard';
import { generateWebhookSecret } from './signature';
import { invalidInput, validateBoolean, validateEventTypes, validateFormat, validateName, validateNamespace, validateSubscriptionUrl } from './subscription-input';
import { sealWebhookSecret } from './webhook-secrets';
import * as store from './webhook-store';

/** What the webhook admin router needs. */
export interface WebhookAdminDeps {
  db: Database;
  config: LadingConfig;
  /** Resolves subscription hosts for the SSRF check (the system resolver by default). */
  resolver?: Resolver;
  /** Seals the secrets it stores; one is made from `config.secrets` when omitted. */
  secrets?: SecretCipher;
  ids?: IdGenerator;
  /** Called after a delivery was queued here (a ping, a redelivery): wakes an in-process worker. */
  onQueued?: () => void;
  /**
   * Which subscriptions the caller of a request may see in the list, by their namespace filter ('' is every
   * repository); all when omitted. The admin API shows a namespace admin the subscriptions of its namespaces only.
   */
  visibleTo?: (res: Response) => (namespace: string) => boolean;
  /** Runs a change with its audit record in one transaction (the admin API's); a plain transaction when omitted. */
  change?: AdminChange;
}

/** The type of the test event `POST /:id/ping` queues. */
export const WEBHOOK_PING_TYPE = 'io.lading.webhook.ping';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_PAGE = 500;

function notFound(what: string): OciError {
  return new OciError('NOT_FOUND', `${what} not found`);
}

function bodyOf(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidInput('the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Creates the router of `/admin/v1/webhooks`. */
export function createWebhookAdminRouter(deps: WebhookAdminDeps): Router {
  const { db } = deps;
  const allowList = parseAllowList(deps.config.webhooks.allowList);
  const resolver = deps.resolver ?? systemResolver;
  const ids = deps.ids ?? createUuidV7Generator();
  const secrets = deps.secrets ?? secretCipherFromConfig(deps.config.secrets);
  const change: AdminChange = deps.change ?? ((_req, _res, _status, work) => db.transaction(work));
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));

  async function subscriptionOr404(id: string): Promise<store.WebhookSubscriptionWithSecret> {
    const found = UUID.test(id) ? await store.findSubscription(db, id) : null;
    if (!found) throw notFound('webhook');
    return found;
  }

  router.get('/', async (_req, res) => {
    const visible = deps.visibleTo?.(res) ?? (() => true);
    res.json({ webhooks: (await store.listSubscriptions(db)).filter((s) => visible(s.namespace)).map(store.withoutSecret) });
  });

  router.post('/', async (req, res) => {
    const body = bodyOf(req.body);
    const secret = generateWebhookSecret();
    const id = ids();
    const subscription: store.NewSubscription = {
      id,
      name: validateName(body.name),
      namespace: validateNamespace(body.namespace),
      url: await validateSubscriptionUrl(body.url, allowList, resolver),
      format: validateFormat(body.format),
      eventTypes: validateEventTypes(body.eventTypes),
      enabled: validateBoolean(body.enabled, 'enabled', true),
      secret: sealWebhookSecret(secrets, id, secret),
    };
    const answer = await change(req, res, 201, async (tx) => ({ ...store.withoutSecret(await store.insertSubscription(tx, subscription)), secret }));
    res.status(201).json(answer);
  });

  router.get('/:id', async (req, res) => {
    res.json(store.withoutSecret(await subscriptionOr404(req.params.id)));
  });

  router.patch('/:id', async (req, res) => {
    await subscriptionOr404(req.params.id);
    const body = bodyOf(req.body);
    const allowed = ['name', 'namespace', 'url', 'format', 'eventTypes', 'enabled'];
    const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) throw invalidInput(`unknown field ${unknown[0].slice(0, 100)}; updatable: ${allowed.join(', ')}`);
    const changes: store.SubscriptionChanges = {
      name: body.name === undefined ? undefined : validateName(body.name),
      namespace: body.namespace === undefined ? undefined : validateNamespace(body.namespace),
      url: body.url === undefined ? undefined : await validateSubscriptionUrl(body.url, allowList, resolver),
      format: body.format === undefined ? undefined : validateFormat(body.format),
      eventTypes: body.eventTypes === undefined ? undefined : validateEventTypes(body.eventTypes),
      enabled: body.enabled === undefined ? undefined : validateBoolean(body.enabled, 'enabled', true),
    };
    const answer = await change(req, res, 200, async (tx) => {
      const updated = await store.updateSubscription(tx, req.params.id, changes);
      if (!updated) throw notFound('webhook');
      return store.withoutSecret(updated);
    });
    if (changes.enabled) deps.onQueued?.();
    res.json(answer);
  });

  router.delete('/:id', async (req, res) => {
    if (!UUID.test(req.params.id)) throw notFound('webhook');
    await change(req, res, 204, async (tx) => {
      if (!(await store.deleteSubscription(tx, req.params.id))) throw notFound('webhook');
      return null;
    });
    res.status(204).end();
  });

  router.post('/:id/rotate', async (req, res) => {
    await subscriptionOr404(req.params.id);
    const secret = generateWebhookSecret();
    const answer = await change(req, res, 200, async (tx) => {
      const updated = await store.updateSubscription(tx, req.params.id, { secret: sealWebhookSecret(secrets, req.params.id, secret) });
      if (!updated) throw notFound('webhook');
      return { id: updated.id, secret };
    });
    res.json(answer);
  });

  router.get('/:id/deliveries', async (req, res) => {
    await subscriptionOr404(req.params.id);
    const status = req.query.status;
    if (status !== undefined && (typeof status !== 'string' || !(store.DELIVERY_STATUSES as readonly string[]).includes(status))) {
      throw invalidInput(`status must be one of ${store.DELIVERY_STATUSES.join(', ')}`);
    }
    const page = parsePageRequest(req.query, MAX_PAGE);
    if (page.last !== null && !UUID.test(page.last)) throw invalidInput('last must be a delivery id');
    const rows = page.limit === 0 ? [] : await store.listDeliveries(db, req.params.id, { status: status as store.DeliveryStatus | undefined, last: page.last, limit: page.limit + 1 });
    const deliveries = rows.slice(0, page.limit);
    if (rows.length > page.limit) {
      const link = nextPageLink(`/admin/v1/webhooks/${req.params.id}/deliveries`, page.limit, deliveries[deliveries.length - 1].id);
      res.setHeader('Link', status ? link.replace('?', `?status=${status}&`) : link);
    }
    res.json({ deliveries });
  });

  router.get('/:id/deliveries/:deliveryId', async (req, res) => {
    await subscriptionOr404(req.params.id);
    const found = UUID.test(req.params.deliveryId) ? await store.findDelivery(db, req.params.id, req.params.deliveryId) : null;
    if (!found) throw notFound('delivery');
    res.json(found);
  });

  router.post('/:id/deliveries/:deliveryId/redeliver', async (req, res) => {
    await subscriptionOr404(req.params.id);
    const before = UUID.test(req.params.deliveryId) ? await store.findDelivery(db, req.params.id, req.params.deliveryId) : null;
    if (!before) throw notFound('delivery');
    if (before.status === 'pending') throw new OciError('DENIED', 'the delivery is still pending; only a delivered or dead delivery can be redelivered', { status: 'pending' }, { status: 409 });
    const after = await change(req, res, 202, (tx) => store.requeueDelivery(tx, req.params.id, req.params.deliveryId));
    deps.onQueued?.();
    res.status(202).json(after);
  });

  router.post('/:id/ping', async (req, res) => {
    const subscription = await subscriptionOr404(req.params.id);
    const eventId = ids();
    const host = deps.config.http.host ? new URL(deps.config.http.host).host : 'lading';
    const event = {
      specversion: '1.0',
      id: eventId,
      source: `//${host}/lading/webhooks`,
      type: WEBHOOK_PING_TYPE,
      subject: subscription.id,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { webhook: { id: subscription.id, name: subscription.name }, admin: typeof res.locals.admin === 'string' ? res.locals.admin : null },
    };
    const deliveryId = ids();
    const answer = await change(req, res, 202, async (tx) => {
      await store.insertDelivery(tx, { id: deliveryId, subscriptionId: subscription.id, eventId, eventType: WEBHOOK_PING_TYPE, repository: '', event: JSON.stringify(event) });
      return { deliveryId, eventId };
    });
    deps.onQueued?.();
    res.status(202).json(answer);
  });

  return router;
}
