/**
 * Immutable tags through the real app of a served embedded registry: an admin sets a namespace's rules with the
 * admin API (POST and PATCH `/admin/v1/namespaces`, bad input a 400 that changes nothing), then the Distribution API
 * refuses, with a 403 DENIED OCI error naming the rule, a push that would move such a tag and a delete that would
 * remove one, while first pushes, same-digest pushes and exempt tags go through.
 */
import request from 'supertest';
import { type TestManifest, imageManifest, makeBlob } from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-6' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;

describe('immutable tags', () => {
  let served: ServedRegistry;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({ admin: ROOT, gc: { enabled: false } });
  });
  afterAll(async () => served?.close());

  const admin = (method: 'get' | 'post' | 'patch', path: string) => request(served.url)[method](`/admin/v1${path}`).set('Authorization', basic);
  async function image(repository: string): Promise<TestManifest> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(256);
    const manifest = imageManifest(config, [layer]);
    // Blobs first, the manifest by digest (untagged), so each test chooses its tags.
    expect(await pushImage(served.client, repository, manifest.digest, manifest, [config, layer])).toBe(201);
    return manifest;
  }
  const put = (repository: string, tag: string, m: TestManifest) =>
    request(served.url).put(`/v2/${repository}/manifests/${tag}`).set('Content-Type', m.mediaType).send(m.body.toString());
  const digestOf = async (repository: string, tag: string) => (await request(served.url).head(`/v2/${repository}/manifests/${tag}`).set('Accept', 'application/vnd.oci.image.manifest.v1+json')).headers['docker-content-digest'];

  it('sets rules with POST and PATCH, lists them, and keeps what PATCH does not name', async () => {
    expect((await admin('post', '/namespaces').send({ prefix: 'prod', immutableTags: ['v*'] }).expect(201)).body).toEqual({
      prefix: 'prod',
      public: false,
      immutableTags: ['v*'],
      immutableTagExceptions: [],
    });
    expect((await admin('patch', '/namespaces?prefix=prod').send({ immutableTags: ['v*', 'release-*'], immutableTagExceptions: ['v*-rc*'] }).expect(200)).body).toMatchObject({
      immutableTags: ['v*', 'release-*'],
      immutableTagExceptions: ['v*-rc*'],
    });
    expect((await admin('patch', '/namespaces?prefix=prod').send({ public: true }).expect(200)).body).toEqual({
      prefix: 'prod',
      public: true,
      immutableTags: ['v*', 'release-*'],
      immutableTagExceptions: ['v*-rc*'],
    });
    const listed = (await admin('get', '/namespaces').expect(200)).body.namespaces.find((n: { prefix: string }) => n.prefix === 'prod');
    expect(listed).toMatchObject({ public: true, immutableTags: ['v*', 'release-*'], immutableTagExceptions: ['v*-rc*'] });
  });

  it('answers bad rules with a 400 OCI error and changes nothing; an unknown namespace is a 404', async () => {
    await admin('post', '/namespaces').send({ prefix: 'strict', immutableTags: ['v*'] }).expect(201);
    for (const body of [{ immutableTags: 'v*' }, { immutableTags: ['a/b'] }, { immutableTags: [''] }, { immutableTags: [7] }, { immutableTagExceptions: ['[x]'] }, { public: 'yes' }]) {
      const res = await admin('patch', '/namespaces?prefix=strict').send(body).expect(400);
      expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    }
    await admin('post', '/namespaces').send({ prefix: 'strict', immutableTags: Array.from({ length: 65 }, (_, i) => `t${i}`) }).expect(400);
    const listed = (await admin('get', '/namespaces').expect(200)).body.namespaces.find((n: { prefix: string }) => n.prefix === 'strict');
    expect(listed).toMatchObject({ public: false, immutableTags: ['v*'], immutableTagExceptions: [] });
    expect((await admin('patch', '/namespaces?prefix=nowhere').send({ immutableTags: ['v*'] }).expect(404)).body.errors[0].code).toBe('NOT_FOUND');
  });

  it('refuses moving and deleting an immutable tag with 403 DENIED naming the rule; first pushes, same-digest pushes and exceptions pass', async () => {
    await admin('post', '/namespaces').send({ prefix: 'rel', immutableTags: ['v*'], immutableTagExceptions: ['v*-dev'] }).expect(201);
    const [one, two] = [await image('rel/app'), await image('rel/app')];
    await put('rel/app', 'v1.0.0', one).expect(201);
    await put('rel/app', 'v1.0.0', one).expect(201);

    const moved = await put('rel/app', 'v1.0.0', two).expect(403);
    expect(moved.body.errors[0]).toMatchObject({ code: 'DENIED', detail: { repository: 'rel/app', tag: 'v1.0.0', namespace: 'rel', rule: 'v*' } });
    expect(moved.body.errors[0].message).toBe(`tag v1.0.0 of rel/app is immutable (rule 'v*' of namespace 'rel'): cannot move it from ${one.digest}`);
    // A push by digest that would also move the tag (`?tag=`) is refused the same way.
    await request(served.url).put(`/v2/rel/app/manifests/${two.digest}?tag=v1.0.0`).set('Content-Type', two.mediaType).send(two.body.toString()).expect(403);
    expect(await digestOf('rel/app', 'v1.0.0')).toBe(one.digest);

    expect((await request(served.url).delete('/v2/rel/app/manifests/v1.0.0').expect(403)).body.errors[0].code).toBe('DENIED');
    expect((await request(served.url).delete(`/v2/rel/app/manifests/${one.digest}`).expect(403)).body.errors[0].message).toContain(`cannot delete manifest ${one.digest}`);
    expect(await digestOf('rel/app', 'v1.0.0')).toBe(one.digest);

    await put('rel/app', 'v2-dev', one).expect(201);
    await put('rel/app', 'v2-dev', two).expect(201);
    await put('rel/app', 'latest', one).expect(201);
    await put('rel/app', 'latest', two).expect(201);
    await request(served.url).delete('/v2/rel/app/manifests/latest').expect(202);

    // Clearing the rules frees the tag.
    await admin('patch', '/namespaces?prefix=rel').send({ immutableTags: [] }).expect(200);
    await put('rel/app', 'v1.0.0', two).expect(201);
  });
});
