/**
 * Storage quotas on the real embedded registry (issue 23): admins set a namespace's quota through /admin/v1/quotas;
 * a manifest push or a blob upload that would take the namespace over it is refused with 403 DENIED (usage and limit
 * in the detail) and stores nothing; a layer shared by two repositories counts once; deletes free room (counted
 * afresh when a push would be refused, and by the collector's reconciliation); /admin/v1/usage reports namespaces and
 * repositories; bad input is a 400 that changes nothing.
 */
import { hashPassword } from '@lading/access';
import * as meta from '@lading/metadata';
import { imageManifest, makeBlob } from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';

const ADMIN = { user: 'root', password: 'root-password-7' };
const basic = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;

describe('storage quotas (embedded)', () => {
  let served: ServedRegistry;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- admin answers of several shapes, checked field by field
  async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`${served.url}/admin/v1${path}`, {
      method,
      headers: { authorization: basic, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** An image of a unique config and layers of the given sizes. */
  function image(...layerSizes: number[]) {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layers = layerSizes.map((size) => makeBlob(size));
    return { manifest: imageManifest(config, layers), blobs: [config, ...layers], bytes: config.size + layerSizes.reduce((a, b) => a + b, 0) };
  }

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ gc: { reviewDelay: '1s', allowShortDelay: true } });
    await meta.createUser(served.registry.db, ADMIN.user, await hashPassword(ADMIN.password), true);
    await meta.upsertNamespace(served.registry.db, 'team', false);
    await meta.upsertNamespace(served.registry.db, 'free', false);
  });
  afterAll(async () => {
    await served?.close();
  });

  it('refuses a push that would exceed the quota with 403 DENIED naming usage and limit, and stores no manifest or tag', async () => {
    const first = image(4000);
    expect(await pushImage(served.client, 'team/app', 'v1', first.manifest, first.blobs)).toBe(201);
    const set = await admin('PUT', '/quotas/team', { quotaBytes: first.bytes + 3000 });
    expect(set).toEqual({ status: 200, body: { namespace: 'team', quotaBytes: first.bytes + 3000, usedBytes: first.bytes } });

    // Each layer fits on its own (uploads are checked one by one); together they do not.
    const second = image(2000, 2000);
    for (const blob of second.blobs) await served.client.ensureBlob('team/app', blob);
    const refused = await served.client.putManifest('team/app', 'v2', { mediaType: second.manifest.mediaType, body: second.manifest.body });
    expect(refused.status).toBe(403);
    const error = JSON.parse(refused.body.toString()).errors[0];
    expect(error.code).toBe('DENIED');
    expect(error.message).toContain('quota exceeded');
    expect(error.detail).toEqual({ namespace: 'team', usedBytes: first.bytes, quotaBytes: first.bytes + 3000, addingBytes: second.bytes });
    expect((await served.client.getManifest('team/app', 'v2')).status).toBe(404);
    expect((await served.client.getManifest('team/app', second.manifest.digest)).status).toBe(404);
    expect((await admin('GET', '/usage/team')).body).toMatchObject({ prefix: 'team', bytes: first.bytes, manifests: 1, tags: 1 });
  });

  it('counts a layer shared by two repositories of the namespace once', async () => {
    const before = (await admin('GET', '/usage/team')).body.bytes as number;
    const shared = makeBlob(2500);
    const a = { config: makeBlob(`{"os":"linux","a":${Math.random()}}`) };
    const b = { config: makeBlob(`{"os":"linux","b":${Math.random()}}`) };
    await admin('PUT', '/quotas/team', { quotaBytes: before + shared.size + a.config.size + b.config.size });
    expect(await pushImage(served.client, 'team/one', 'latest', imageManifest(a.config, [shared]), [a.config, shared])).toBe(201);
    expect(await pushImage(served.client, 'team/two', 'latest', imageManifest(b.config, [shared]), [b.config, shared])).toBe(201);
    const usage = await admin('GET', '/usage/team?n=1');
    expect(usage.body.bytes).toBe(before + shared.size + a.config.size + b.config.size);
    expect(usage.body.repositories).toEqual([expect.objectContaining({ name: 'team/app' })]);
    expect(usage.body.next).toBe('team/app');
    const rest = await admin('GET', `/usage/team?n=10&last=${encodeURIComponent(usage.body.next)}`);
    expect(rest.body.repositories.map((r: { name: string }) => r.name)).toEqual(['team/one', 'team/two']);
    expect(rest.body.repositories[0]).toMatchObject({ bytes: shared.size + a.config.size, blobs: 2, manifests: 1, tags: 1 });
  });

  it('refuses a blob upload that a namespace it is new to has no room for, and keeps no blob', async () => {
    const used = (await admin('GET', '/usage/team')).body.bytes as number;
    await admin('PUT', '/quotas/team', { quotaBytes: used + 1000 });
    const big = makeBlob(1500);
    const monolithic = await served.client.uploadBlob('team/app', big);
    expect(monolithic.status).toBe(403);
    expect(JSON.parse(monolithic.body.toString()).errors[0]).toMatchObject({ code: 'DENIED', detail: { namespace: 'team', addingBytes: 1500 } });
    expect((await served.client.headBlob('team/app', big.digest)).status).toBe(404);
    await expect(served.client.pushBlobStream('team/app', big.digest, big.size, big.data)).rejects.toThrow(/403/);
    expect((await served.client.headBlob('team/app', big.digest)).status).toBe(404);
    // Another namespace has no quota.
    expect((await served.client.uploadBlob('free/app', big)).status).toBe(201);
  });

  it('lets room freed by deletes be used: at once when a push would be refused, and in the counts after reconciliation', async () => {
    const usage = (await admin('GET', '/usage/team')).body;
    await admin('PUT', '/quotas/team', { quotaBytes: usage.bytes });
    const old = image(3000);
    await admin('PUT', '/quotas/team', { quotaBytes: usage.bytes + old.bytes });
    expect(await pushImage(served.client, 'team/old', 'x', old.manifest, old.blobs)).toBe(201);
    expect((await served.client.deleteManifest('team/old', old.manifest.digest)).status).toBe(202);
    // The count still holds the deleted image; a push that fits only without it is counted afresh and let through.
    const quotas = (await admin('GET', '/quotas')).body.quotas;
    expect(quotas).toEqual([{ namespace: 'team', quotaBytes: usage.bytes + old.bytes, countedBytes: usage.bytes + old.bytes }]);
    const next = image(2900);
    expect(await pushImage(served.client, 'team/next', 'x', next.manifest, next.blobs)).toBe(201);
    // Deliberate drift, then the collector's reconciliation puts it right.
    await served.registry.db.query(`UPDATE namespace_usage_shards SET bytes = bytes + 999999 WHERE prefix = 'team' AND shard = 5`);
    expect(await served.registry.gc.reconcileQuotas()).toBe(1);
    expect((await admin('GET', '/quotas')).body.quotas[0].countedBytes).toBe((await admin('GET', '/usage/team')).body.bytes);
  });

  it('answers bad quota input with a 400 that changes nothing, and an unknown namespace with a 404', async () => {
    const before = (await admin('GET', '/quotas')).body;
    for (const body of [{ quotaBytes: -1 }, { quotaBytes: 1.5 }, { quotaBytes: '10GB' }, {}, { quotaBytes: 2 ** 61 }]) {
      const res = await admin('PUT', '/quotas/team', body);
      expect(res.status).toBe(400);
      expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    }
    expect((await admin('PUT', '/quotas/Bad..Name', { quotaBytes: 1 })).status).toBe(400);
    expect((await admin('PUT', '/quotas/nowhere', { quotaBytes: 1 })).status).toBe(404);
    expect((await admin('GET', '/usage/nowhere')).status).toBe(404);
    expect((await admin('GET', '/usage/team?n=0')).status).toBe(400);
    expect((await admin('GET', '/quotas')).body).toEqual(before);
    const anonymous = await fetch(`${served.url}/admin/v1/quotas`);
    expect(anonymous.status).toBe(401);
  });

  it('removes a quota: pushes are no longer checked and its counts are dropped', async () => {
    expect((await admin('DELETE', '/quotas/team')).status).toBe(204);
    expect((await admin('GET', '/quotas')).body.quotas).toEqual([]);
    const rows = await served.registry.db.query(`SELECT 1 FROM namespace_usage_shards WHERE prefix = 'team'`);
    expect(rows.rows).toHaveLength(0);
    const big = image(20_000);
    expect(await pushImage(served.client, 'team/big', 'x', big.manifest, big.blobs)).toBe(201);
    expect((await admin('GET', '/usage')).body.namespaces.map((n: { prefix: string; quotaBytes: number | null }) => [n.prefix, n.quotaBytes])).toEqual([
      ['free', null],
      ['team', null],
    ]);
  });
});
