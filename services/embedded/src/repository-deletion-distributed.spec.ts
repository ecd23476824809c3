/**
 * Deleting a repository in the distributed mode: `DELETE /admin/v1/repositories/<name>` at the gateway reaches the
 * auth service's admin API, which forwards it (with the admin call's proof) to a manifest service replica; that
 * replica runs the same domain operation as the embedded registry over PostgreSQL. Everything of the repository goes
 * in one transaction, its `repository.deleted` event is in the outbox, the catalog and searches of both replicas stop
 * listing it, the collector reclaims what only it held, the manifest service's internal route believes no one but
 * the auth service, and pulls racing the deletion through both replicas are answered in full or 404, never a 5xx.
 * A large repository goes in bounded batches: the request answers `202` after its own, the repository is out of
 * sight at once, a push of its name makes a new repository, and a collector started afresh (a restart) finishes it.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { EVENT_TYPES, type LadingEvent, createEventSchemaValidator } from '@lading/events';
import { ADMIN_CALL_HEADER, ADMIN_CALL_PROOF_HEADER, REQUEST_ID_HEADER } from '@lading/http';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { type TestBlob, type TestManifest, imageManifest, makeBlob } from '@lading/testing';
import { type DistributedRegistry, serveDistributedRegistry } from '../test/distributed-registry';
import { pushImage } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-7' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;

describe('deleting a repository in the distributed mode', () => {
  let registry: DistributedRegistry;

  beforeAll(async () => {
    registry = await serveDistributedRegistry('repo_deletion', ROOT);
  }, 60_000);
  afterAll(async () => registry?.close());

  const deleteRepository = (name: string, query = '') => fetch(`${registry.url}/admin/v1/repositories/${name}${query}`, { method: 'DELETE', headers: { authorization: basic } });

  async function push(repository: string, tag: string, layers: TestBlob[] = [makeBlob(4096)]): Promise<{ manifest: TestManifest; blobs: TestBlob[] }> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const manifest = imageManifest(config, layers, { annotations: { 'org.opencontainers.image.title': `${repository} title` } });
    expect(await pushImage(registry.client, repository, tag, manifest, [config, ...layers])).toBe(201);
    return { manifest, blobs: [config, ...layers] };
  }

  const outbox = async (repository: string): Promise<LadingEvent[]> =>
    (await registry.db.query<{ event: LadingEvent | string }>(`SELECT event FROM outbox WHERE repository = $1 ORDER BY sequence`, [repository])).rows.map((r) =>
      typeof r.event === 'string' ? (JSON.parse(r.event) as LadingEvent) : r.event,
    );
  const stored = async (digest: string) => (await registry.store.stat(blobKey(digest))) !== null;

  it('removes everything of the repository through a manifest replica, emits repository.deleted, unlists it on every replica, and the collector reclaims only unshared blobs', async () => {
    const shared = makeBlob(2048);
    const gone = await push('team/gone', 'v1', [shared, makeBlob(1024)]);
    await push('team/gone', 'v2');
    const kept = await push('team/kept', 'v1', [shared]);
    const session = await fetch(`${registry.url}/v2/team/gone/blobs/uploads/`, { method: 'POST' });
    expect(session.status).toBe(202);

    const res = await deleteRepository('team/gone');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ repository: 'team/gone', tags: 2, manifests: 2, blobsQueued: 5, uploads: 1 });

    // Gone on both replicas (each asked directly) and through the gateway.
    for (const base of [registry.url, ...registry.manifestUrls]) {
      expect((await fetch(`${base}/v2/team/gone/manifests/v1`)).status).toBe(404);
      expect((await fetch(`${base}/v2/team/gone/manifests/${gone.manifest.digest}`)).status).toBe(404);
      expect(((await (await fetch(`${base}/v2/team/gone/tags/list`)).json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('NAME_UNKNOWN');
      expect(((await (await fetch(`${base}/v2/_catalog`)).json()) as { repositories: string[] }).repositories).toEqual(['team/kept']);
      expect(((await (await fetch(`${base}/v1/search?q=gone`)).json()) as { results: unknown[] }).results).toEqual([]);
      const search = JSON.stringify(await (await fetch(`${base}/api/v1/search?q=team`)).json());
      expect(search).not.toContain('team/gone');
      expect(search).toContain('team/kept');
    }
    expect((await fetch(`${registry.url}/v2/team/gone/blobs/${shared.digest}`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${registry.url}${session.headers.get('location')}`)).status).toBe(404);

    // One event, by the admin, conforming to the published schema, after the repository's other events.
    const events = await outbox('team/gone');
    const deleted = events.filter((e) => e.type === EVENT_TYPES.repositoryDeleted);
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ subject: 'team/gone', data: { repository: 'team/gone', namespace: 'team', actor: { name: 'root', type: 'user' } } });
    expect((await createEventSchemaValidator())(deleted[0])).toEqual([]);
    expect(deleted[0].sequence > events.filter((e) => e.type !== EVENT_TYPES.repositoryDeleted).map((e) => e.sequence).sort().at(-1)!).toBe(true);

    // The collector (the gc service's worker) reclaims the blobs only the deleted repository held.
    await registry.gc.runUntilIdle();
    for (const blob of gone.blobs.filter((b) => b.digest !== shared.digest)) expect(await stored(blob.digest)).toBe(false);
    expect(await stored(shared.digest)).toBe(true);
    for (const blob of kept.blobs) expect(await stored(blob.digest)).toBe(true);
    expect((await registry.client.readManifest('team/kept', 'v1')).bytes.equals(kept.manifest.body)).toBe(true);
    expect((await registry.client.readBlob('team/kept', shared.digest, 1 << 20)).equals(shared.data)).toBe(true);

    // A second deletion finds nothing; a push afterwards creates a new repository.
    expect(((await (await deleteRepository('team/gone')).json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('NAME_UNKNOWN');
    await push('team/gone', 'v3');
    expect(((await (await fetch(`${registry.url}/v2/team/gone/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['v3']);
  });

  it('answers bad input and immutable tags as the embedded registry does, changing nothing', async () => {
    await push('rel/app', 'v1');
    await meta.upsertNamespace(registry.db, 'rel', false);
    await meta.setTagRules(registry.db, 'rel', ['v*'], null);
    const refused = await deleteRepository('rel/app');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { errors: Array<{ code: string; detail: unknown }> }).errors[0]).toMatchObject({ code: 'DENIED', detail: { repository: 'rel/app', tag: 'v1', namespace: 'rel', rule: 'v*' } });
    expect((await deleteRepository('rel/app', '?force=maybe')).status).toBe(400);
    expect((await deleteRepository('Not_Valid')).status).toBe(400);
    expect((await fetch(`${registry.url}/v2/rel/app/manifests/v1`)).status).toBe(200);
    expect((await deleteRepository('rel/app', '?force=true')).status).toBe(200);
    expect((await fetch(`${registry.url}/v2/rel/app/manifests/v1`)).status).toBe(404);
    // Only admins: no credentials is 401 at the auth service, before anything is forwarded.
    expect((await fetch(`${registry.url}/admin/v1/repositories/team/kept`, { method: 'DELETE' })).status).toBe(401);
  });

  it('believes only the auth service: a direct call to a manifest replica without a valid proof is 401 and deletes nothing', async () => {
    await push('team/guarded', 'v1');
    const path = '/internal/v1/repositories/team/guarded';
    const requestId = randomUUID();
    const forged = createHmac('sha256', 'not-the-shared-secret-but-just-as-long!!').update(`lading-admin-call\n${requestId}\nDELETE ${path}\nroot`).digest('base64url');
    for (const headers of [
      {},
      { [ADMIN_CALL_HEADER]: 'root' },
      { [ADMIN_CALL_HEADER]: 'root', [ADMIN_CALL_PROOF_HEADER]: forged, [REQUEST_ID_HEADER]: requestId },
    ]) {
      const res = await fetch(`${registry.manifestUrls[0]}${path}`, { method: 'DELETE', headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code).toBe('UNAUTHORIZED');
    }
    // The gateway never routes a client to the internal path.
    expect((await fetch(`${registry.url}${path}`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/team/guarded/manifests/v1`)).status).toBe(200);
  });

  it('answers pulls racing the deletion through both replicas in full or with 404, never a 5xx or wrong bytes', async () => {
    const images = await Promise.all(['a', 'b', 'c', 'd'].map((tag) => push('team/hot', tag, [makeBlob(64 * 1024)])));
    const outcomes: string[] = [];
    let deleting = true;
    const pullers = Array.from({ length: 6 }, async (_, p) => {
      let round = 0;
      // Keeps pulling until the deletion answered and one more round has seen it.
      for (let after = 0; after < 2; round++) {
        if (!deleting) after++;
        const i = (p + round) % images.length;
        const image = images[i];
        const base = [registry.url, ...registry.manifestUrls][round % 3];
        const manifest = await fetch(`${base}/v2/team/hot/manifests/${'abcd'[i]}`, { headers: { accept: image.manifest.mediaType } });
        const bytes = Buffer.from(await manifest.arrayBuffer());
        if (manifest.status === 200) {
          expect(bytes.equals(image.manifest.body)).toBe(true);
        } else {
          expect(manifest.status).toBe(404);
          expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']).toContain((JSON.parse(bytes.toString()) as { errors: Array<{ code: string }> }).errors[0].code);
        }
        const layer = image.blobs[1];
        const blob = await fetch(`${registry.url}/v2/team/hot/blobs/${layer.digest}`);
        const data = Buffer.from(await blob.arrayBuffer());
        if (blob.status === 200) expect(data.equals(layer.data)).toBe(true);
        else {
          expect(blob.status).toBe(404);
          expect(['BLOB_UNKNOWN', 'NAME_UNKNOWN']).toContain((JSON.parse(data.toString()) as { errors: Array<{ code: string }> }).errors[0].code);
        }
        outcomes.push(`${manifest.status}/${blob.status}`);
      }
    });
    // Let some pulls succeed first.
    while (outcomes.length < 12) await new Promise((resolve) => setTimeout(resolve, 10));
    const res = await deleteRepository('team/hot');
    deleting = false;
    expect(res.status).toBe(200);
    await Promise.all(pullers);
    expect(outcomes).toContain('200/200');
    expect(outcomes.at(-1)).toBe('404/404');
    expect(outcomes.some((o) => o.includes('5'))).toBe(false);
  });
});

describe('deleting a large repository in the distributed mode', () => {
  let registry: DistributedRegistry;

  beforeAll(async () => {
    // Two manifests per batch, one batch in the request: five manifests leave the rest to the collector.
    const gc = { enabled: false, reviewDelay: '1ms', allowShortDelay: true, repositoryDeletionBatch: 2, repositoryDeletionInlineBatches: 1 };
    registry = await serveDistributedRegistry('repo_deletion_batches', ROOT, { gc });
  }, 60_000);
  afterAll(async () => registry?.close());

  it('answers 202 after its first batch, is out of sight at once, takes a re-push as a new repository, and a collector started after a restart finishes it', async () => {
    const images: Array<{ manifest: TestManifest; blobs: TestBlob[] }> = [];
    for (let i = 0; i < 5; i++) {
      const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
      const layer = makeBlob(2048);
      const manifest = imageManifest(config, [layer]);
      expect(await pushImage(registry.client, 'team/big', `t${i}`, manifest, [config, layer])).toBe(201);
      images.push({ manifest, blobs: [config, layer] });
    }

    const res = await fetch(`${registry.url}/admin/v1/repositories/team/big`, { method: 'DELETE', headers: { authorization: basic } });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ repository: 'team/big', tags: 5, manifests: 5, blobsQueued: 4, uploads: 0, pending: true });
    expect(await meta.listRepositoryDeletions(registry.db)).toMatchObject([{ repository: 'team/big', manifests: 5, manifestsDeleted: 2, batches: 1 }]);

    // Out of sight at once, on every replica, though three manifests are still stored.
    for (const base of [registry.url, ...registry.manifestUrls]) {
      for (const [i, image] of images.entries()) {
        expect((await fetch(`${base}/v2/team/big/manifests/t${i}`)).status).toBe(404);
        expect((await fetch(`${base}/v2/team/big/manifests/${image.manifest.digest}`)).status).toBe(404);
      }
      expect(((await (await fetch(`${base}/v2/_catalog`)).json()) as { repositories: string[] }).repositories).toEqual([]);
      expect(((await (await fetch(`${base}/api/v1/search?q=big`)).json()) as { results: unknown[] }).results).toEqual([]);
      expect(((await (await fetch(`${base}/api/v1/repositories`)).json()) as { repositories: unknown[] }).repositories).toEqual([]);
    }

    // A push of the name meanwhile makes a new repository.
    const config = makeBlob(`{"architecture":"amd64","os":"linux","again":${Math.random()}}`);
    const layer = makeBlob(1024);
    const again = imageManifest(config, [layer]);
    expect(await pushImage(registry.client, 'team/big', 'again', again, [config, layer])).toBe(201);
    expect(((await (await fetch(`${registry.url}/v2/team/big/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['again']);

    // The process that answered stops; a collector started afterwards (its own pool, no state) finishes the job.
    const collector = await registry.newCollector();
    await collector.runUntilIdle();
    expect(await meta.listRepositoryDeletions(registry.db)).toEqual([]);
    expect(Number((await registry.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM repositories WHERE name LIKE '~%'`)).rows[0].n)).toBe(0);
    for (const image of images) for (const blob of image.blobs) expect(await stored(blob.digest)).toBe(false);
    for (const blob of [config, layer]) expect(await stored(blob.digest)).toBe(true);
    expect((await registry.client.readManifest('team/big', 'again')).bytes.equals(again.body)).toBe(true);
    // One repository.deleted event for the whole deletion, none per batch.
    const types = (await registry.db.query<{ type: string }>(`SELECT type FROM outbox WHERE repository = 'team/big' ORDER BY id`)).rows.map((r) => r.type);
    expect(types.filter((t) => t === EVENT_TYPES.repositoryDeleted)).toHaveLength(1);
    expect(types.filter((t) => t === EVENT_TYPES.manifestDeleted || t === EVENT_TYPES.tagDeleted)).toEqual([]);
  });

  const stored = async (digest: string) => (await registry.store.stat(blobKey(digest))) !== null;
});

