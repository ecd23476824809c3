/**
 * Immutable tags in the distributed mode: the rule is checked inside the write transaction of whichever manifest
 * service replica takes the push, so concurrent pushes of one immutable tag with different digests, spread over two
 * replicas with their own connection pools on one PostgreSQL, cannot both win.
 */
import { EVENT_TYPES } from '@lading/events';
import { type TestManifest, imageManifest, makeBlob } from '@lading/testing';
import { type DistributedRegistry, serveDistributedRegistry } from '../test/distributed-registry';
import { pushImage } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-9' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;

describe('immutable tags in the distributed mode', () => {
  let registry: DistributedRegistry;

  beforeAll(async () => {
    registry = await serveDistributedRegistry('immutable_race', ROOT);
  }, 60_000);
  afterAll(async () => registry?.close());

  async function image(repository: string): Promise<TestManifest> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(256);
    const manifest = imageManifest(config, [layer]);
    // Blobs first and the manifest by digest (untagged), so the race is only over the tag.
    expect(await pushImage(registry.client, repository, manifest.digest, manifest, [config, layer])).toBe(201);
    return manifest;
  }

  it('lets exactly one of concurrent pushes of one immutable tag through two manifest replicas win; the others are DENIED', async () => {
    const rule = await fetch(`${registry.url}/admin/v1/namespaces`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ prefix: 'rel', immutableTags: ['v*'] }),
    });
    expect(rule.status).toBe(201);
    const images: TestManifest[] = [];
    for (let i = 0; i < 8; i++) images.push(await image('rel/race'));

    // Each push goes straight to a replica, alternating, so both replicas race on the same tag.
    const answers = await Promise.all(
      images.map(async (m, i) => {
        const res = await fetch(`${registry.manifestUrls[i % 2]}/v2/rel/race/manifests/v1`, { method: 'PUT', headers: { 'content-type': m.mediaType }, body: m.body });
        return { digest: m.digest, status: res.status, code: res.status === 201 ? null : ((await res.json()) as { errors: Array<{ code: string }> }).errors[0].code };
      }),
    );
    const won = answers.filter((a) => a.status === 201);
    expect(won).toHaveLength(1);
    expect(answers.filter((a) => a.status !== 201).map((a) => [a.status, a.code])).toEqual(Array.from({ length: 7 }, () => [403, 'DENIED']));

    const head = await fetch(`${registry.url}/v2/rel/race/manifests/v1`, { method: 'HEAD', headers: { accept: images[0].mediaType } });
    expect(head.headers.get('docker-content-digest')).toBe(won[0].digest);
    const events = await registry.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE repository = 'rel/race' AND type = $1`, [EVENT_TYPES.tagUpdated]);
    expect(events.rows[0].n).toBe(1);
  });
});
