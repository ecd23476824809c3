/**
 * The audit trail on the real embedded registry: every admin route that changes something (enumerated from the admin
 * API's own route table, so a new route without a case here fails) leaves a record naming its admin, with no secret
 * in it; logins leave records with their result and address; pulls are counted and written as one batch per window;
 * and the records are listed, filtered and paged by `/admin/v1/audit`, and pruned past `audit.retention`.
 */
import { createRegistryClient } from '@lading/client';
import { AUDIT_EVENT_TYPES, type AuditEvent, type EventValidator, createEventSchemaValidator } from '@lading/events';
import { type TestBlob, imageManifest, makeBlob } from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-1' };
const KEY = Buffer.alloc(32, 23);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SECRETS = { bobPassword: 'bob-password-secret-1', bobPassword2: 'bob-password-secret-2', proxyPassword: 'upstream-pa55word-never-in-audit' };

interface AdminAnswer {
  status: number;
  json: Record<string, unknown> | undefined;
}

interface AuditRow {
  type: string;
  actor: string | null;
  repository: string | null;
  record: Record<string, unknown>;
}

describe('the audit trail of the embedded registry', () => {
  let served: ServedRegistry;
  let validate: EventValidator;
  /** Every secret an admin answer handed out, which no audit record may hold. */
  const handedOut: string[] = [];

  async function admin(method: string, route: string, body?: unknown, auth = basic(ROOT.user, ROOT.password)): Promise<AdminAnswer> {
    const res = await fetch(`${served.url}/admin/v1${route}`, {
      method,
      headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    for (const key of ['token', 'secret']) if (typeof json?.[key] === 'string') handedOut.push(json[key] as string);
    return { status: res.status, json };
  }

  async function auditRows(type: string): Promise<AuditRow[]> {
    const r = await served.registry.db.query<AuditRow>(`SELECT type, actor, repository, record FROM audit_log WHERE type = $1 ORDER BY at, id`, [type]);
    return r.rows.map((row) => ({ ...row, record: typeof row.record === 'string' ? JSON.parse(row.record) : row.record }));
  }

  beforeAll(async () => {
    validate = await createEventSchemaValidator();
    served = await serveEmbeddedRegistry({
      admin: ROOT,
      auth: { enabled: true, loginFailureLimit: 1000 },
      secrets: { key: KEY.toString('base64') },
      gc: { enabled: false },
      webhooks: { enabled: false },
      // Long enough that no window is written on its own: the tests write them.
      audit: { pullWindow: '1h' },
    });
  }, 120_000);
  afterAll(async () => {
    await served?.close();
  });

  /**
   * One case per admin route that changes something, in an order that works (each creates what the next needs).
   * A route of the admin API's table that changes something and is missing here fails the first test.
   */
  const ids: Record<string, string> = {};
  const CASES: Array<[route: string, call: () => Promise<AdminAnswer>]> = [
    ['POST /admin/v1/users', () => admin('POST', '/users', { name: 'bob', password: SECRETS.bobPassword })],
    ['PUT /admin/v1/users/:name/password', () => admin('PUT', '/users/bob/password', { password: SECRETS.bobPassword2 })],
    ['POST /admin/v1/users/:name/disable', () => admin('POST', '/users/bob/disable')],
    ['POST /admin/v1/users/:name/enable', () => admin('POST', '/users/bob/enable')],
    ['POST /admin/v1/users/:name/tokens', () => admin('POST', '/users/bob/tokens', { name: 'ci' })],
    ['DELETE /admin/v1/users/:name/tokens/:token', () => admin('DELETE', '/users/bob/tokens/ci')],
    ['POST /admin/v1/robots', () => admin('POST', '/robots', { name: 'builder' })],
    ['DELETE /admin/v1/robots/:name', () => admin('DELETE', '/robots/builder')],
    ['POST /admin/v1/namespaces', () => admin('POST', '/namespaces', { prefix: 'team' })],
    ['POST /admin/v1/grants', () => admin('POST', '/grants', { prefix: 'team', principal: 'user:bob', role: 'pull' })],
    ['DELETE /admin/v1/grants', () => admin('DELETE', '/grants', { prefix: 'team', principal: 'user:bob', role: 'pull' })],
    ['PATCH /admin/v1/namespaces', () => admin('PATCH', '/namespaces?prefix=team', { immutableTags: ['v*'] })],
    ['PUT /admin/v1/quotas/*namespace', () => admin('PUT', '/quotas/team', { quotaBytes: 1_000_000 })],
    ['DELETE /admin/v1/quotas/*namespace', () => admin('DELETE', '/quotas/team')],
    [
      'DELETE /admin/v1/repositories/^\\/(.+)$/',
      async () => {
        const config = makeBlob('{"os":"linux","audited":true}');
        const client = createRegistryClient({ url: served.url, credentials: { username: ROOT.user, password: ROOT.password } });
        try {
          expect(await pushImage(client, 'team/doomed', 'latest', imageManifest(config, []), [config])).toBe(201);
        } finally {
          await client.close();
        }
        return admin('DELETE', '/repositories/team/doomed');
      },
    ],
    ['DELETE /admin/v1/namespaces', () => admin('DELETE', '/namespaces?prefix=team')],
    [
      'POST /admin/v1/webhooks/',
      async () => {
        const created = await admin('POST', '/webhooks', { name: 'scanner', namespace: 'team', url: 'https://93.184.216.34/hooks', eventTypes: ['manifest.pushed'] });
        ids.webhook = String(created.json?.id);
        return created;
      },
    ],
    ['PATCH /admin/v1/webhooks/:id', () => admin('PATCH', `/webhooks/${ids.webhook}`, { enabled: false })],
    ['POST /admin/v1/webhooks/:id/rotate', () => admin('POST', `/webhooks/${ids.webhook}/rotate`)],
    [
      'POST /admin/v1/webhooks/:id/ping',
      async () => {
        const ping = await admin('POST', `/webhooks/${ids.webhook}/ping`);
        ids.delivery = String(ping.json?.deliveryId);
        return ping;
      },
    ],
    [
      'POST /admin/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
      async () => {
        await served.registry.db.query(`UPDATE webhook_deliveries SET status = 'dead' WHERE id = $1`, [ids.delivery]);
        return admin('POST', `/webhooks/${ids.webhook}/deliveries/${ids.delivery}/redeliver`);
      },
    ],
    ['DELETE /admin/v1/webhooks/:id', () => admin('DELETE', `/webhooks/${ids.webhook}`)],
    [
      'POST /admin/v1/outbox/parked/:id/requeue',
      async () => {
        const row = await served.registry.db.query<{ id: string }>(`UPDATE outbox SET parked_at = now() WHERE id = (SELECT id FROM outbox LIMIT 1) RETURNING id::text AS id`);
        return admin('POST', `/outbox/parked/${row.rows[0].id}/requeue`);
      },
    ],
    ['PUT /admin/v1/proxies/*namespace', () => admin('PUT', '/proxies/cache/ghcr', { upstream: 'https://ghcr.io', username: 'bot', password: SECRETS.proxyPassword })],
    ['DELETE /admin/v1/proxies/*namespace', () => admin('DELETE', '/proxies/cache/ghcr')],
    ['POST /admin/v1/gc/collect', () => admin('POST', '/gc/collect')],
    ['POST /admin/v1/keys/rotate', () => admin('POST', '/keys/rotate')],
    ['DELETE /admin/v1/users/:name', () => admin('DELETE', '/users/bob')],
  ];

  it('records every admin route that changes something with its admin, the values before and after, and no secret', async () => {
    const changing = served.registry.adminRoutes.filter((r) => !r.startsWith('GET ') && !r.startsWith('HEAD '));
    expect(CASES.map(([route]) => route).sort()).toEqual([...changing].sort());
    for (const [route, call] of CASES) {
      const before = (await auditRows(AUDIT_EVENT_TYPES.admin)).length;
      const answer = await call();
      expect({ route, ok: answer.status >= 200 && answer.status < 300 }).toEqual({ route, ok: true });
      const rows = (await auditRows(AUDIT_EVENT_TYPES.admin)).slice(before);
      expect({ route, actions: rows.map((r) => r.record.action) }).toEqual({ route, actions: [route] });
      expect(rows[0].actor).toBe(ROOT.user);
    }
    const all = JSON.stringify(await auditRows(AUDIT_EVENT_TYPES.admin));
    for (const secret of [...Object.values(SECRETS), ROOT.password, ...handedOut]) expect(all).not.toContain(secret);
    expect(handedOut.length).toBeGreaterThanOrEqual(3); // a token, a robot secret, webhook secrets
  }, 120_000);

  it('keeps the state before a change: a user disabled was enabled, a deleted webhook was the one created', async () => {
    const rows = await auditRows(AUDIT_EVENT_TYPES.admin);
    const disable = rows.find((r) => r.record.action === 'POST /admin/v1/users/:name/disable');
    expect(disable?.record.before).toMatchObject({ name: 'bob', disabled: false });
    const removed = rows.find((r) => r.record.action === 'DELETE /admin/v1/webhooks/:id');
    expect(removed?.record.before).toMatchObject({ id: ids.webhook, name: 'scanner', enabled: false });
    const proxy = rows.find((r) => r.record.action === 'PUT /admin/v1/proxies/*namespace');
    expect(proxy?.record.after).toMatchObject({ request: { upstream: 'https://ghcr.io', username: 'bot', password: '[redacted]' } });
  });

  it('records a failed login with its address and no name that is not an account, and a successful one with its account', async () => {
    const before = (await auditRows(AUDIT_EVENT_TYPES.login)).length;
    expect((await admin('GET', '/users', undefined, basic('not-a-user', 'guess-password'))).status).toBe(401);
    expect((await admin('GET', '/users', undefined, basic(ROOT.user, 'wrong-password'))).status).toBe(401);
    expect((await admin('GET', '/users')).status).toBe(200);
    const rows = (await auditRows(AUDIT_EVENT_TYPES.login)).slice(before);
    expect(rows.map((r) => [r.actor, r.record.result, r.record.reason, r.record.method])).toEqual([
      [null, 'failure', 'invalid', 'password'],
      [ROOT.user, 'failure', 'invalid', 'password'],
      [ROOT.user, 'success', null, 'password'],
    ]);
    for (const row of rows) expect((row.record.request as { addr: string }).addr).toMatch(/127\.0\.0\.1/);
    const text = JSON.stringify(rows);
    for (const secret of ['guess-password', 'wrong-password', ROOT.password, 'not-a-user']) expect(text).not.toContain(secret);
  });

  it('counts N pulls of a principal and repository as one record with count N, written only when the window is', async () => {
    const config = makeBlob('{"architecture":"amd64","os":"linux"}');
    const layer = makeBlob(1024);
    const image = imageManifest(config, [layer]);
    const client = createRegistryClient({ url: served.url, credentials: { username: ROOT.user, password: ROOT.password } });
    try {
      expect(await pushImage(client, 'audit/app', 'v1', image, [config, layer] as TestBlob[])).toBe(201);
      await served.registry.flushPullAudit();
      const outboxBefore = await served.registry.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM outbox WHERE repository = '_audit'`);
      for (let i = 0; i < 7; i++) expect((await client.getManifest('audit/app', 'v1')).status).toBe(200);
      const outboxAfterPulls = await served.registry.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM outbox WHERE repository = '_audit' AND type = $1`, [AUDIT_EVENT_TYPES.pulls]);
      expect(await auditRows(AUDIT_EVENT_TYPES.pulls)).toEqual([]);
      expect(Number(outboxAfterPulls.rows[0].n)).toBe(0);
      expect(await served.registry.flushPullAudit()).toBe(1);
      const rows = await auditRows(AUDIT_EVENT_TYPES.pulls);
      expect(rows.map((r) => [r.actor, r.repository, r.record.count])).toEqual([[ROOT.user, 'audit/app', 7]]);
      expect(Number(outboxBefore.rows[0].n)).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('publishes audit events on the bus, valid against the published audit schema', async () => {
    const seen: AuditEvent[] = [];
    const unsubscribe = await served.registry.bus.subscribe((event) => {
      if (event.type.startsWith('io.lading.audit.')) seen.push(event as unknown as AuditEvent);
    });
    try {
      expect((await admin('POST', '/namespaces', { prefix: 'published' })).status).toBe(201);
      await served.registry.flushEvents();
      // The in-process bus delivers after the relay's publish resolves.
      for (let i = 0; i < 100 && !seen.some((e) => e.type === AUDIT_EVENT_TYPES.admin); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      const types = new Set(seen.map((e) => e.type));
      expect(types.has(AUDIT_EVENT_TYPES.admin) && types.has(AUDIT_EVENT_TYPES.login)).toBe(true);
      for (const event of seen) expect(validate(event)).toEqual([]);
    } finally {
      await unsubscribe();
    }
  });

  it('lists the trail at /admin/v1/audit, filtered and paged, to admins only, with a 400 in the OCI envelope for a bad parameter', async () => {
    const page = await admin('GET', `/audit?type=${AUDIT_EVENT_TYPES.pulls}&repository=audit/app`);
    expect(page.status).toBe(200);
    expect((page.json?.entries as Array<{ actor: string; record: { count: number } }>).map((e) => [e.actor, e.record.count])).toEqual([[ROOT.user, 7]]);
    const first = await admin('GET', '/audit?actor=root&n=2');
    expect((first.json?.entries as unknown[]).length).toBe(2);
    const second = await admin('GET', `/audit?actor=root&n=2&last=${String(first.json?.next)}`);
    expect((second.json?.entries as Array<{ id: number }>)[0].id).toBeGreaterThan((first.json?.entries as Array<{ id: number }>)[1].id);
    const bad = await admin('GET', '/audit?n=0');
    expect(bad).toEqual({ status: 400, json: { errors: [expect.objectContaining({ code: 'UNSUPPORTED', message: expect.stringMatching(/^n must be/) })] } });
    expect((await admin('POST', '/users', { name: 'carol', password: 'carol-password-1' })).status).toBe(201);
    expect((await admin('GET', '/audit', undefined, basic('carol', 'carol-password-1'))).status).toBe(403);
  });

  it('rolls an admin change back with its record when the record cannot be written: an error answer, nothing changed, nothing recorded', async () => {
    expect((await admin('POST', '/namespaces', { prefix: 'kept' })).status).toBe(201);
    expect((await admin('POST', '/users', { name: 'dora', password: 'dora-password-1' })).status).toBe(201);
    expect((await admin('POST', '/robots', { name: 'keeper' })).status).toBe(201);
    expect((await admin('POST', '/users/dora/tokens', { name: 'kept' })).status).toBe(201);
    expect((await admin('POST', '/grants', { prefix: 'kept', principal: 'user:dora', role: 'pull' })).status).toBe(201);
    expect((await admin('PUT', '/quotas/kept', { quotaBytes: 1_000_000 })).status).toBe(200);
    expect((await admin('PUT', '/proxies/cache/kept', { upstream: 'https://ghcr.io' })).status).toBe(201);
    const hook = String((await admin('POST', '/webhooks', { name: 'kept', url: 'https://93.184.216.34/hooks', eventTypes: ['manifest.pushed'] })).json?.id);
    const delivery = String((await admin('POST', `/webhooks/${hook}/ping`)).json?.deliveryId);
    await served.registry.db.query(`UPDATE webhook_deliveries SET status = 'dead' WHERE id = $1`, [delivery]);
    const parked = (await served.registry.db.query<{ id: string }>(`UPDATE outbox SET parked_at = now() WHERE id = (SELECT id FROM outbox LIMIT 1) RETURNING id::text AS id`)).rows[0].id;
    const state = async () => ({
      users: (await admin('GET', '/users')).json,
      robots: (await admin('GET', '/robots')).json,
      namespaces: (await admin('GET', '/namespaces')).json,
      tokens: (await admin('GET', '/users/dora/tokens')).json,
      quotas: (await admin('GET', '/quotas')).json,
      proxies: (await admin('GET', '/proxies')).json,
      grants: (await served.registry.db.query(`SELECT * FROM grants ORDER BY 1, 2, 3, 4`)).rows,
      webhooks: (await served.registry.db.query(`SELECT * FROM webhook_subscriptions ORDER BY id`)).rows,
      deliveries: (await served.registry.db.query(`SELECT * FROM webhook_deliveries ORDER BY id`)).rows,
      parked: (await served.registry.db.query(`SELECT id FROM outbox WHERE parked_at IS NOT NULL ORDER BY id`)).rows,
      outbox: (await served.registry.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM outbox WHERE type = $1`, [AUDIT_EVENT_TYPES.admin])).rows[0].n,
      audit: (await auditRows(AUDIT_EVENT_TYPES.admin)).length,
    });
    const unchanged = await state();
    // The outbox insert of an admin record now fails, as a full disk or a lost connection would make it.
    await served.registry.db.query(`ALTER TABLE outbox ADD CONSTRAINT audit_spec_refuses CHECK (type <> '${AUDIT_EVENT_TYPES.admin}') NOT VALID`);
    try {
      const calls: Array<[string, string, unknown?]> = [
        ['POST', '/users', { name: 'ursula', password: 'ursula-password-1' }],
        ['PUT', '/users/dora/password', { password: 'dora-password-2' }],
        ['POST', '/users/dora/disable'],
        ['DELETE', '/users/dora'],
        ['POST', '/users/dora/tokens', { name: 'ci' }],
        ['DELETE', '/users/dora/tokens/kept'],
        ['POST', '/robots', { name: 'halfway' }],
        ['DELETE', '/robots/keeper'],
        ['POST', '/namespaces', { prefix: 'halfway' }],
        ['PATCH', '/namespaces?prefix=kept', { immutableTags: ['v*'] }],
        ['DELETE', '/namespaces?prefix=kept'],
        ['POST', '/grants', { prefix: 'kept', principal: 'user:dora', role: 'push' }],
        ['DELETE', '/grants', { prefix: 'kept', principal: 'user:dora', role: 'pull' }],
        ['PUT', '/quotas/kept', { quotaBytes: 2_000_000 }],
        ['DELETE', '/quotas/kept'],
        ['PUT', '/proxies/cache/halfway', { upstream: 'https://ghcr.io' }],
        ['PUT', '/proxies/cache/kept', { upstream: 'https://quay.io' }],
        ['DELETE', '/proxies/cache/kept'],
        ['POST', '/webhooks', { name: 'halfway', url: 'https://93.184.216.34/hooks', eventTypes: ['manifest.pushed'] }],
        ['PATCH', `/webhooks/${hook}`, { enabled: false }],
        ['POST', `/webhooks/${hook}/rotate`],
        ['POST', `/webhooks/${hook}/ping`],
        ['POST', `/webhooks/${hook}/deliveries/${delivery}/redeliver`],
        ['DELETE', `/webhooks/${hook}`],
        ['POST', `/outbox/parked/${parked}/requeue`],
      ];
      for (const [method, route, body] of calls) {
        const answer = await admin(method, route, body);
        expect({ method, route, status: answer.status, oci: Array.isArray(answer.json?.errors) }).toEqual({ method, route, status: 500, oci: true });
      }
      expect(await state()).toEqual(unchanged);
      // dora's password is the one she had.
      expect((await admin('GET', '/users', undefined, basic('dora', 'dora-password-2'))).status).toBe(401);
    } finally {
      await served.registry.db.query(`ALTER TABLE outbox DROP CONSTRAINT audit_spec_refuses`);
    }
    expect((await admin('POST', `/outbox/parked/${parked}/requeue`)).status).toBe(200);
  }, 120_000);

  it('records a refresh-token login by its account, and a refresh token that is not one as an anonymous failure', async () => {
    const before = (await auditRows(AUDIT_EVENT_TYPES.login)).length;
    const token = (form: Record<string, string>) =>
      fetch(`${served.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ service: 'lading', ...form }) });
    const issued = await token({ grant_type: 'password', username: ROOT.user, password: ROOT.password, access_type: 'offline' });
    expect(issued.status).toBe(200);
    const refresh = ((await issued.json()) as { refresh_token: string }).refresh_token;
    expect((await token({ grant_type: 'refresh_token', refresh_token: refresh })).status).toBe(200);
    expect((await token({ grant_type: 'refresh_token', refresh_token: 'lrt_not-a-token' })).status).toBe(401);
    const rows = (await auditRows(AUDIT_EVENT_TYPES.login)).slice(before);
    expect(rows.map((r) => [r.actor, r.record.result, r.record.method])).toEqual([
      [ROOT.user, 'success', 'password'],
      [ROOT.user, 'success', 'refresh'],
      [null, 'failure', 'refresh'],
    ]);
    expect(JSON.stringify(rows)).not.toContain(refresh);
  });
});

describe('the embedded registry with audit.enabled false', () => {
  it('records no login, admin change or pull, and writes nothing at the window', async () => {
    const served = await serveEmbeddedRegistry({ admin: ROOT, auth: { enabled: true }, gc: { enabled: false }, webhooks: { enabled: false }, audit: { enabled: false } });
    try {
      const auth = { authorization: basic(ROOT.user, ROOT.password), 'content-type': 'application/json' };
      expect((await fetch(`${served.url}/admin/v1/namespaces`, { method: 'POST', headers: auth, body: JSON.stringify({ prefix: 'quiet' }) })).status).toBe(201);
      expect((await fetch(`${served.url}/v2/quiet/app/manifests/v1`, { headers: { authorization: basic(ROOT.user, ROOT.password) } })).status).toBe(401);
      expect(await served.registry.flushPullAudit()).toBe(0);
      const rows = await served.registry.db.query<{ n: string }>(`SELECT (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM outbox WHERE repository = '_audit') AS n`);
      expect(Number(rows.rows[0].n)).toBe(0);
    } finally {
      await served.close();
    }
  }, 60_000);
});
