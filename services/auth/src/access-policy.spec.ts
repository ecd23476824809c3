/**
 * One permission model: what search lists for a principal (`pullableRepositoryCondition`, in SQL) is exactly what
 * the token service would let that principal pull (`repositoryActions`), repository by repository.
 */
import * as meta from '@lading/metadata';
import { repositoryActions } from './access-policy';
import type { Principal } from './principals';

const REPOSITORIES = ['pub', 'pub/app', 'pub/deep/app', 'pubx/app', 'team', 'team/app', 'team/sub/app', 'teams/app', 'ci/app', 'none/app', 'top', 'a/b/c/d/e', 'a/b/c/d/f', 'a/b/c/x/y', 'a/b/c/dx'];

describe('search and the token service agree on who may pull what', () => {
  let db: meta.Database;
  beforeAll(async () => {
    db = await meta.createPgliteDatabase();
    await meta.migrate(db);
    await db.transaction(async (tx) => {
      for (const [i, name] of REPOSITORIES.entries()) {
        const repo = await meta.ensureRepository(tx, name);
        const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
        await meta.insertManifest(tx, { repositoryId: repo.id, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
      }
    });
    await meta.upsertNamespace(db, 'pub', true);
    await meta.upsertNamespace(db, 'team', false);
    await meta.upsertNamespace(db, 'team/sub', false);
    await meta.upsertNamespace(db, 'ci', false);
    await meta.upsertNamespace(db, 'a/b/c/d', false);
    await meta.upsertNamespace(db, 'a/b/c/d/f', false);
    await meta.addGrant(db, 'team', 'user', 'alice', 'pull');
    await meta.addGrant(db, 'team/sub', 'user', 'bob', 'delete');
    await meta.addGrant(db, 'ci', 'robot', 'robot$builder', 'push');
    await meta.addGrant(db, 'a/b/c/d', 'user', 'alice', 'pull');
    await meta.addGrant(db, 'a/b/c/d/f', 'user', 'bob', 'pull');
    await meta.createUser(db, 'root', 'x', true);
    await meta.createUser(db, 'alice', 'x', false);
    await meta.createUser(db, 'bob', 'x', false);
  });
  afterAll(async () => db.close());

  const principals: Principal[] = [
    { type: 'anonymous', name: '', isAdmin: false },
    { type: 'user', name: 'alice', isAdmin: false },
    { type: 'user', name: 'bob', isAdmin: false },
    { type: 'robot', name: 'robot$builder', isAdmin: false },
    { type: 'user', name: 'root', isAdmin: true },
  ];

  it.each(principals.map((p) => [p.name || 'anonymous', p] as const))('lists for %s exactly the repositories it may pull', async (_label, principal) => {
    const pullable: string[] = [];
    for (const name of REPOSITORIES) if ((await repositoryActions(db, principal, name)).has('pull')) pullable.push(name);
    const viewer: meta.SearchViewer = { kind: 'principal', type: principal.type === 'anonymous' ? null : principal.type, name: principal.type === 'anonymous' ? null : principal.name };
    const listed = (await meta.searchRepositories(db, { text: '', viewer, limit: 100, offset: 0 })).hits.map((h) => h.repository);
    expect(listed).toEqual([...pullable].sort());
    expect(listed.length).toBeGreaterThan(0);
  });
});
