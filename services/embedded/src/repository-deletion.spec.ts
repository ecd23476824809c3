/**
 * Deleting a repository through the admin API of a served embedded registry (`DELETE /admin/v1/repositories/<name>`):
 * everything of the repository goes in one transaction, the catalog and both searches stop listing it, its
 * `repository.deleted` event conforms to the published schema, the collector then reclaims the blobs nothing else
 * references, immutable tags hold it unless forced, bad input changes nothing, and pulls racing the deletion are
 * answered in full or 404, never 5xx or a cut body. A large repository's deletion left pending (`202`) survives a
 * restart of the registry: the collector of the restarted process finishes it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { hashPassword } from '@lading/access';
import { createRegistryClient } from '@lading/client';
import { parseConfig } from '@lading/config';
import { createLogger } from '@lading/telemetry';
import { createEmbeddedRegistry } from './embedded-registry';
import { EVENT_TYPES, type LadingEvent, createEventSchemaValidator } from '@lading/events';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { type TestBlob, type TestManifest, binaryParser, imageManifest, makeBlob } from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-7' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;

describe('deleting a repository', () => {
  let served: ServedRegistry;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ admin: ROOT, gc: { enabled: false, reviewDelay: '1ms', allowShortDelay: true } });
  });
  afterAll(async () => served?.close());

  const admin = (method: 'delete' | 'patch' | 'post', path: string) => request(served.url)[method](`/admin/v1${path}`).set('Authorization', basic);

  /** An image of a fresh config and `layers` (fresh ones when not given), pushed under `tag`. */
  async function push(repository: string, tag: string, layers: TestBlob[] = [makeBlob(4096)]): Promise<{ manifest: TestManifest; blobs: TestBlob[] }> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const manifest = imageManifest(config, layers, { annotations: { 'org.opencontainers.image.title': `${repository} title` } });
    expect(await pushImage(served.client, repository, tag, manifest, [config, ...layers])).toBe(201);
    return { manifest, blobs: [config, ...layers] };
  }

  const outbox = async (repository: string): Promise<LadingEvent[]> =>
    (await served.registry.db.query<{ event: LadingEvent | string }>(`SELECT event FROM outbox WHERE repository = $1 ORDER BY sequence`, [repository])).rows.map((r) =>
      typeof r.event === 'string' ? (JSON.parse(r.event) as LadingEvent) : r.event,
    );
  const stored = async (digest: string) => (await served.registry.store.stat(blobKey(digest))) !== null;

  it('removes tags, manifests, blob links and uploads, unlists it from catalog and search, emits repository.deleted, and lets the collector reclaim only unshared blobs', async () => {
    const shared = makeBlob(2048);
    const gone = await push('team/gone', 'v1', [shared, makeBlob(1024)]);
    await push('team/gone', 'v2');
    const kept = await push('team/kept', 'v1', [shared]);
    const session = await request(served.url).post('/v2/team/gone/blobs/uploads/').expect(202);

    const res = await admin('delete', '/repositories/team/gone').expect(200);
    expect(res.body).toEqual({ repository: 'team/gone', tags: 2, manifests: 2, blobsQueued: 5, uploads: 1 });

    // Gone from every read: manifests, tags, blobs, the upload session, the catalog and both searches.
    expect((await request(served.url).get(`/v2/team/gone/manifests/v1`)).status).toBe(404);
    expect((await request(served.url).get(`/v2/team/gone/manifests/${gone.manifest.digest}`)).status).toBe(404);
    expect((await request(served.url).get(`/v2/team/gone/tags/list`)).body.errors[0].code).toBe('NAME_UNKNOWN');
    expect((await request(served.url).head(`/v2/team/gone/blobs/${shared.digest}`)).status).toBe(404);
    expect((await request(served.url).get(session.headers.location as string)).status).toBe(404);
    expect((await request(served.url).get('/v2/_catalog').expect(200)).body.repositories).toEqual(['team/kept']);
    expect((await request(served.url).get('/v1/search?q=gone').expect(200)).body.results).toEqual([]);
    const console = (await request(served.url).get('/api/v1/search?q=team').expect(200)).body;
    expect(JSON.stringify(console)).not.toContain('team/gone');
    expect(JSON.stringify(console)).toContain('team/kept');

    // One event, by the admin, that conforms to the published schema.
    const events = await outbox('team/gone');
    const deleted = events.filter((e) => e.type === EVENT_TYPES.repositoryDeleted);
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ subject: 'team/gone', data: { repository: 'team/gone', namespace: 'team', actor: { name: 'root', type: 'user' } } });
    expect((await createEventSchemaValidator())(deleted[0])).toEqual([]);
    expect(deleted[0].sequence > events.filter((e) => e.type !== EVENT_TYPES.repositoryDeleted).map((e) => e.sequence).sort().at(-1)!).toBe(true);

    // The collector reclaims the blobs only the deleted repository held; the shared layer stays with team/kept.
    await admin('post', '/gc/collect').expect(200);
    for (const blob of gone.blobs.filter((b) => b.digest !== shared.digest)) expect(await stored(blob.digest)).toBe(false);
    expect(await stored(shared.digest)).toBe(true);
    for (const blob of kept.blobs) expect(await stored(blob.digest)).toBe(true);
    const pulled = await served.client.readManifest('team/kept', 'v1');
    expect(pulled.bytes.equals(kept.manifest.body)).toBe(true);
    expect((await served.client.readBlob('team/kept', shared.digest, 1 << 20)).equals(shared.data)).toBe(true);

    // The name is free again: a push creates a new repository.
    await push('team/gone', 'v1');
    expect((await request(served.url).get('/v2/_catalog').expect(200)).body.repositories).toEqual(['team/gone', 'team/kept']);
  });

  it('refuses a repository holding an immutable tag with DENIED naming the rule, and deletes it with force=true', async () => {
    await admin('post', '/namespaces').send({ prefix: 'locked', immutableTags: ['v*'] }).expect(201);
    await push('locked/app', 'v1');
    const refused = await admin('delete', '/repositories/locked/app').expect(403);
    expect(refused.body.errors[0]).toMatchObject({ code: 'DENIED', message: expect.stringContaining("tag v1 (rule 'v*' of namespace 'locked')") });
    expect((await request(served.url).get('/v2/locked/app/manifests/v1')).status).toBe(200);
    await admin('delete', '/repositories/locked/app?force=true').expect(200);
    expect((await request(served.url).get('/v2/locked/app/manifests/v1')).status).toBe(404);
  });

  it('answers 404 NAME_UNKNOWN for no such repository, 400 for a bad name or force flag, 401/403 to non-admins, changing nothing', async () => {
    await push('bad/input', 'v1');
    expect((await admin('delete', '/repositories/no/such').expect(404)).body.errors[0].code).toBe('NAME_UNKNOWN');
    expect((await admin('delete', '/repositories/Bad..Name').expect(400)).body.errors[0].code).toBe('NAME_INVALID');
    expect((await admin('delete', '/repositories/bad/input?force=maybe').expect(400)).body.errors[0].code).toBe('UNSUPPORTED');
    expect((await request(served.url).delete('/admin/v1/repositories/bad/input')).status).toBe(401);
    await admin('post', '/users').send({ name: 'alice', password: 'alice-password-1' }).expect(201);
    const notAdmin = await request(served.url).delete('/admin/v1/repositories/bad/input').set('Authorization', `Basic ${Buffer.from('alice:alice-password-1').toString('base64')}`);
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.body.errors[0].code).toBe('DENIED');
    expect((await request(served.url).get('/v2/bad/input/manifests/v1')).status).toBe(200);
    expect(await meta.findRepository(served.registry.db, 'bad/input')).not.toBeNull();
  });

  it('answers pulls racing the deletion in full or with 404, never 5xx or a cut body', async () => {
    const layer = makeBlob(256 * 1024);
    const { manifest } = await push('race/app', 'v1', [layer]);
    const outcomes: string[] = [];
    let deleting = true;
    const pullLoop = async () => {
      while (deleting) {
        const m = await request(served.url).get('/v2/race/app/manifests/v1').set('Accept', manifest.mediaType).buffer(true).parse(binaryParser);
        if (m.status !== 200) {
          outcomes.push(String(m.status));
          continue;
        }
        expect((m.body as Buffer).equals(manifest.body)).toBe(true);
        const b = await request(served.url).get(`/v2/race/app/blobs/${layer.digest}`).buffer(true).parse(binaryParser);
        if (b.status === 200) expect((b.body as Buffer).equals(layer.data)).toBe(true);
        outcomes.push(String(b.status === 200 ? 'full' : b.status));
      }
    };
    const loops = Array.from({ length: 6 }, pullLoop);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await admin('delete', '/repositories/race/app').expect(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    deleting = false;
    await Promise.all(loops);
    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o !== 'full' && o !== '404')).toEqual([]);
    expect(outcomes).toContain('full');
    expect(outcomes).toContain('404');
  });
});

describe('a large repository deletion across a restart of the embedded registry', () => {
  it('answers 202 after its first batch, and the restarted process finishes the job', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lading-deletion-restart-'));
    const config = parseConfig({
      log: { level: 'silent', access: false },
      data: { dir },
      // Two manifests per batch, one in the request: the rest is the collector's (run by hand here).
      gc: { enabled: false, reviewDelay: '1ms', allowShortDelay: true, repositoryDeletionBatch: 2, repositoryDeletionInlineBatches: 1 },
    });
    const logger = createLogger({ service: 'test', level: 'silent' });
    try {
      const before = await createEmbeddedRegistry(config, logger);
      const images: TestBlob[][] = [];
      try {
        await meta.createUser(before.db, ROOT.user, await hashPassword(ROOT.password), true);
        const server = before.app.listen(0, '127.0.0.1');
        await new Promise((resolve) => server.once('listening', resolve));
        const client = createRegistryClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 20_000 });
        try {
          for (let i = 0; i < 5; i++) {
            const configBlob = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
            const layer = makeBlob(1024);
            expect(await pushImage(client, 'team/big', `t${i}`, imageManifest(configBlob, [layer]), [configBlob, layer])).toBe(201);
            images.push([configBlob, layer]);
          }
        } finally {
          await client.close();
          server.closeAllConnections();
          await new Promise((resolve) => server.close(resolve));
        }
        const res = await request(before.app).delete('/admin/v1/repositories/team/big').set('Authorization', basic).expect(202);
        expect(res.body).toEqual({ repository: 'team/big', tags: 5, manifests: 5, blobsQueued: 4, uploads: 0, pending: true });
        expect((await request(before.app).get('/v2/team/big/manifests/t4')).status).toBe(404);
        expect((await request(before.app).get('/v2/_catalog').expect(200)).body.repositories).toEqual([]);
      } finally {
        await before.close();
      }

      // The restarted process finds the job in its database, and its collector finishes it.
      const after = await createEmbeddedRegistry(config, logger);
      try {
        expect(await meta.listRepositoryDeletions(after.db)).toMatchObject([{ repository: 'team/big', manifestsDeleted: 2 }]);
        await after.gc.runUntilIdle();
        expect(await meta.listRepositoryDeletions(after.db)).toEqual([]);
        expect(Number((await after.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM manifests`)).rows[0].n)).toBe(0);
        for (const blob of images.flat()) expect(await after.store.stat(blobKey(blob.digest))).toBeNull();
      } finally {
        await after.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

