import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EVENT_TYPES, EventContext, createUuidV7Generator } from '@lading/events';
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { REGISTRY_MIGRATIONS } from '@lading/runtime';
import { type BlobStore, createFilesystemBlobStore } from '@lading/storage';
import { TestManifest, databaseEngines, ociRefusal, outboxEvents, seedImage } from '@lading/testing';
import { ManifestPush, ManifestWriteDeps, pushManifest, removeManifest, removeTag } from './manifest-writes';

const context: EventContext = { actor: { name: 'alice', type: 'user' }, request: null };

/** The same checks on PGlite (embedded) and on a real PostgreSQL with a pool of connections (replicas). */
describe.each(databaseEngines('immutabletags'))('immutable tags on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  let store: BlobStore;
  let storageRoot: string;
  let writes: ManifestWriteDeps;

  beforeAll(async () => {
    ({ db, drop } = await open());
    await meta.migrate(db, REGISTRY_MIGRATIONS);
    storageRoot = await mkdtemp(path.join(tmpdir(), 'lading-immutable-'));
    store = await createFilesystemBlobStore(path.join(storageRoot, 'blobs'));
    writes = { db, events: { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() }, reviewDelayMs: 60_000 };
    await meta.upsertNamespace(db, 'rel', false);
    await meta.setTagRules(db, 'rel', ['v*', 'release-?'], ['v*-dev']);
    await meta.upsertNamespace(db, 'rel/strict', false);
    await meta.setTagRules(db, 'rel/strict', ['latest'], []);
  });
  afterAll(async () => {
    await db.close();
    await drop();
    await rm(storageRoot, { recursive: true, force: true });
  });

  const image = (repository: string) => seedImage({ db, store }, repository);
  const push = (repository: string, m: TestManifest, tags: string[]): ManifestPush => ({ repository, body: m.body, contentType: m.mediaType, expectedDigest: null, tags, context });
  const tagOf = async (repository: string, tag: string) => (await meta.findManifestByTag(db, repository, tag))?.digest ?? null;

  it('allows the first push of an immutable tag and a push of the same digest again, and refuses moving it with DENIED naming the rule', async () => {
    const [first, second] = [await image('rel/app'), await image('rel/app')];
    await pushManifest(writes, push('rel/app', first, ['v1.0']));
    await pushManifest(writes, push('rel/app', first, ['v1.0']));
    const eventsBefore = (await outboxEvents(db, 'rel/app')).length;

    const refusal = await ociRefusal(pushManifest(writes, push('rel/app', second, ['v1.0'])));
    expect(refusal).toBeInstanceOf(OciError);
    expect(refusal.code).toBe('DENIED');
    expect(refusal.status).toBe(403);
    expect(refusal.message).toContain("rule 'v*' of namespace 'rel'");

    // Nothing of the refused push was kept: the tag, the manifest, the events.
    expect(await tagOf('rel/app', 'v1.0')).toBe(first.digest);
    expect(await meta.storedManifestExists(db, 'rel/app', second.digest)).toBe(false);
    expect(await outboxEvents(db, 'rel/app')).toHaveLength(eventsBefore);
  });

  it('lets tags outside the rules, and those its exceptions match, move and be deleted', async () => {
    const [first, second] = [await image('rel/free'), await image('rel/free')];
    await pushManifest(writes, push('rel/free', first, ['latest', 'v2-dev', 'release-10']));
    await pushManifest(writes, push('rel/free', second, ['latest', 'v2-dev', 'release-10']));
    expect(await tagOf('rel/free', 'latest')).toBe(second.digest);
    expect(await tagOf('rel/free', 'v2-dev')).toBe(second.digest);
    expect(await tagOf('rel/free', 'release-10')).toBe(second.digest);
    await removeTag(writes, { repository: 'rel/free', tag: 'v2-dev', context });
    expect(await tagOf('rel/free', 'v2-dev')).toBeNull();
  });

  it('refuses deleting an immutable tag, and deleting by digest a manifest an immutable tag points at', async () => {
    const m = await image('rel/del');
    await pushManifest(writes, push('rel/del', m, ['release-1', 'scratch']));
    expect((await ociRefusal(removeTag(writes, { repository: 'rel/del', tag: 'release-1', context }))).code).toBe('DENIED');
    const byDigest = await ociRefusal(removeManifest(writes, { repository: 'rel/del', digest: m.digest, context }));
    expect(byDigest.code).toBe('DENIED');
    expect(byDigest.message).toContain("rule 'release-?'");
    expect(await tagOf('rel/del', 'release-1')).toBe(m.digest);
    expect(await tagOf('rel/del', 'scratch')).toBe(m.digest);
    // A tag no rule covers is deleted as ever.
    await removeTag(writes, { repository: 'rel/del', tag: 'scratch', context });
  });

  it('binds a repository to the rules of every namespace covering it', async () => {
    const [first, second] = [await image('rel/strict/app'), await image('rel/strict/app')];
    await pushManifest(writes, push('rel/strict/app', first, ['latest', 'v3']));
    expect((await ociRefusal(pushManifest(writes, push('rel/strict/app', second, ['latest'])))).message).toContain("namespace 'rel/strict'");
    expect((await ociRefusal(pushManifest(writes, push('rel/strict/app', second, ['v3'])))).message).toContain("namespace 'rel'");
  });

  it('lets a pull-through cache follow its upstream: immutability governs pushes, not what the cache fetches', async () => {
    const [first, second] = [await image('rel/cache'), await image('rel/cache')];
    const proxy: EventContext = { ...context, proxy: { upstream: 'https://upstream.example', namespace: 'rel' } };
    await pushManifest(writes, { ...push('rel/cache', first, ['v9']), context: proxy });
    await pushManifest(writes, { ...push('rel/cache', second, ['v9']), context: proxy });
    expect(await tagOf('rel/cache', 'v9')).toBe(second.digest);
  });

  it('lets exactly one of many concurrent pushes of one immutable tag with different digests win; the others are DENIED', async () => {
    const images: TestManifest[] = [];
    for (let i = 0; i < 12; i++) images.push(await image('rel/race'));
    const outcomes = await Promise.allSettled(images.map((m) => pushManifest(writes, push('rel/race', m, ['v1']))));
    const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [images[i].digest] : []));
    expect(won).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as OciError).code).toBe('DENIED');
    expect(await tagOf('rel/race', 'v1')).toBe(won[0]);
    const tagEvents = (await outboxEvents(db, 'rel/race')).filter((e) => e.type === EVENT_TYPES.tagUpdated);
    expect(tagEvents.map((e) => e.data.digest)).toEqual(won);
  });
});
