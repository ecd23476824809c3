/**
 * `GET /admin/v1/gc/status` on the real embedded registry: admins only, the collector's queues and counters, and the
 * collections asked for through `POST /admin/v1/gc/collect`, newest first, with the admin who asked.
 */
import type { GcRun, GcStatus } from '@lading/gc';
import { type ServedRegistry, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-1' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe("the collector's status in the admin API", () => {
  let served: ServedRegistry;

  const admin = (method: string, route: string) => fetch(`${served.url}/admin/v1/gc${route}`, { method, headers: { authorization: basic(ROOT.user, ROOT.password) } });

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ admin: ROOT, auth: { enabled: true, loginFailureLimit: 1000 } });
  }, 120_000);
  afterAll(async () => {
    await served?.close();
  });

  it('refuses anyone without admin credentials', async () => {
    const res = await fetch(`${served.url}/admin/v1/gc/status`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
  });

  it('answers the queues and counters, and no collection before one was asked for', async () => {
    const res = await admin('GET', '/status');
    expect(res.status).toBe(200);
    const status = (await res.json()) as GcStatus;
    expect(status).toMatchObject({ collecting: false, collectionQueued: false, runs: [] });
    expect(status.queues).toMatchObject({ blobReviews: { size: expect.any(Number) }, manifestReviews: { size: expect.any(Number) }, tombstones: { blob: expect.any(Number) } });
    expect(status.counters.deleted).toEqual({ manifests: 0, blobs: 0, objects: 0, uploads: 0, tags: 0 });
  });

  it('lists the collections asked for, newest first, each with its admin, its times and what it deleted', async () => {
    expect((await admin('POST', '/collect')).status).toBe(200);
    expect((await admin('POST', '/collect')).status).toBe(200);
    const status = (await (await admin('GET', '/status')).json()) as GcStatus;
    expect(status.collecting).toBe(false);
    expect(status.runs).toHaveLength(2);
    const [newest, older] = status.runs as [GcRun, GcRun];
    expect(newest).toMatchObject({ requestedBy: ROOT.user, outcome: 'done', bytesFreed: 0, storageErrors: 0, deleted: { manifests: 0, blobs: 0 } });
    expect(Date.parse(newest.startedAt)).toBeGreaterThanOrEqual(Date.parse(older.finishedAt ?? ''));
    expect(Date.parse(older.finishedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(older.startedAt));
  });
});
