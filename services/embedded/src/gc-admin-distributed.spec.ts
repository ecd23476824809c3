/**
 * The collector's admin routes in the distributed mode: `/admin/v1/gc/...` at the gateway reaches the auth service's
 * admin API (the one authorization of admin paths), which forwards it with the admin call's proof to the gc service,
 * whose collector answers with the same router as the embedded registry's. An admin reads the status, a dry run and
 * asks for a collection (recorded in the audit trail with its admin); a user who is no admin, a namespace admin and an
 * anonymous caller are refused before anything reaches the gc service, and the gc service believes no one but the
 * admin API.
 */
import { randomUUID } from 'node:crypto';
import { hashPassword } from '@lading/access';
import type { GcPlan, GcStatus } from '@lading/gc';
import { ADMIN_CALL_HEADER, ADMIN_CALL_PROOF_HEADER, REQUEST_ID_HEADER, adminCallProof } from '@lading/http';
import * as meta from '@lading/metadata';
import { type DistributedRegistry, serveDistributedRegistry } from '../test/distributed-registry';

const ROOT = { user: 'root', password: 'root-password-7' };
const PLAIN = { user: 'pat', password: 'pat-password-7' };
const TEAM_ADMIN = { user: 'tess', password: 'tess-password-7' };
const basic = (who: { user: string; password: string }) => `Basic ${Buffer.from(`${who.user}:${who.password}`).toString('base64')}`;

describe("the collector's admin routes in the distributed mode", () => {
  let registry: DistributedRegistry;

  beforeAll(async () => {
    registry = await serveDistributedRegistry('gc_admin', ROOT, { auth: { enabled: true } });
    await meta.createUser(registry.db, PLAIN.user, await hashPassword(PLAIN.password), false);
    await meta.createUser(registry.db, TEAM_ADMIN.user, await hashPassword(TEAM_ADMIN.password), false);
    await meta.upsertNamespace(registry.db, 'team', false);
    await meta.addGrant(registry.db, 'team', 'user', TEAM_ADMIN.user, 'admin');
  }, 60_000);
  afterAll(async () => registry?.close());

  const gc = (method: string, route: string, who?: { user: string; password: string }) =>
    fetch(`${registry.url}/admin/v1/gc${route}`, { method, headers: who ? { authorization: basic(who) } : {} });

  it("gives an admin the collector's status through the gateway, as the embedded registry does", async () => {
    const res = await gc('GET', '/status', ROOT);
    expect(res.status).toBe(200);
    const status = (await res.json()) as GcStatus;
    expect(status).toMatchObject({ collecting: false, collectionQueued: false, runs: [] });
    expect(status.queues).toMatchObject({ blobReviews: { size: expect.any(Number) }, manifestReviews: { size: expect.any(Number) } });
    expect(status.counters.deleted).toEqual({ manifests: 0, blobs: 0, objects: 0, uploads: 0, tags: 0 });
  });

  it('runs a dry run and a collection for an admin: the status lists it with its admin, and the audit trail records it', async () => {
    const plan = await gc('GET', '/dry-run?all=1', ROOT);
    expect(plan.status).toBe(200);
    const body = (await plan.json()) as GcPlan;
    expect(body.includeNotDue).toBe(true);
    expect(Array.isArray(body.items)).toBe(true);
    expect(typeof body.totals.blobs).toBe('number');
    expect((await gc('GET', '/dry-run?all=maybe', ROOT)).status).toBe(400);
    const collect = await gc('POST', '/collect', ROOT);
    expect(collect.status).toBe(200);
    expect(await collect.json()).toMatchObject({ deleted: { manifests: 0, blobs: 0 } });
    const status = (await (await gc('GET', '/status', ROOT)).json()) as GcStatus;
    expect(status.runs).toEqual([expect.objectContaining({ requestedBy: ROOT.user, outcome: 'done' })]);
    const audit = await registry.db.query<{ actor: string; record: unknown }>(`SELECT actor, record FROM audit_log WHERE type = 'io.lading.audit.admin' ORDER BY id`);
    const records = audit.rows.map((r) => ({ actor: r.actor, record: typeof r.record === 'string' ? (JSON.parse(r.record) as unknown) : r.record }));
    expect(records).toContainEqual({ actor: ROOT.user, record: expect.objectContaining({ action: 'POST /admin/v1/gc/collect', status: 200 }) });
  });

  it('refuses a user who is no admin (403), a namespace admin (403) and an anonymous caller (401), on every route', async () => {
    const runsBefore = ((await (await gc('GET', '/status', ROOT)).json()) as GcStatus).runs.length;
    for (const [method, route] of [
      ['GET', '/status'],
      ['GET', '/dry-run'],
      ['POST', '/collect'],
    ]) {
      for (const [who, status, code] of [
        [PLAIN, 403, 'DENIED'],
        [TEAM_ADMIN, 403, 'DENIED'],
        [undefined, 401, 'UNAUTHORIZED'],
      ] as const) {
        const res = await gc(method, route, who);
        expect([method, route, who?.user, res.status]).toEqual([method, route, who?.user, status]);
        expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe(code);
      }
    }
    // None of them reached the collector: it ran no collection for them.
    const status = (await (await gc('GET', '/status', ROOT)).json()) as GcStatus;
    expect(status.runs).toHaveLength(runsBefore);
  });

  it('believes only the admin API: a direct call to the gc service without a valid proof is 401', async () => {
    const path = '/internal/v1/gc/collect';
    const requestId = randomUUID();
    const forged = adminCallProof('not-the-shared-secret-but-just-as-long!!', requestId, 'POST', path, ROOT.user);
    for (const headers of [{}, { [ADMIN_CALL_HEADER]: ROOT.user }, { [ADMIN_CALL_HEADER]: ROOT.user, [ADMIN_CALL_PROOF_HEADER]: forged, [REQUEST_ID_HEADER]: requestId }]) {
      const res = await fetch(`${registry.gcUrl}${path}`, { method: 'POST', headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('UNAUTHORIZED');
    }
    // A proof bound to another path does not carry over either.
    const statusProof = adminCallProof(registry.config.upstreams.secret!, requestId, 'GET', '/internal/v1/gc/status', ROOT.user);
    const replayed = await fetch(`${registry.gcUrl}${path}`, { method: 'POST', headers: { [ADMIN_CALL_HEADER]: ROOT.user, [ADMIN_CALL_PROOF_HEADER]: statusProof, [REQUEST_ID_HEADER]: requestId } });
    expect(replayed.status).toBe(401);
  });
});
