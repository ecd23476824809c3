/** Search's read model and its ranked, access-filtered query, on PGlite (embedded) and a real PostgreSQL. */
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { databaseEngines } from '@lading/testing';
import { addGrant, createUser, upsertNamespace } from './auth-store';
import type { Database, SqlExecutor } from './database';
import { deleteManifest, deleteTag, insertManifest, upsertTag } from './manifests';
import { MIGRATIONS_DIR, migrate } from './migrate';
import { ensureRepository, lockRepositoryForDeletion } from './repositories';
import { continueRepositoryDeletion, detachRepositoryForDeletion } from './repository-deletions';
import { ImageMetadata, SearchQuery, SearchViewer, recordImageMetadata, searchRepositories } from './search';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const EVERYONE: SearchViewer = { kind: 'everyone' };
const IMAGE = 'application/vnd.oci.image.manifest.v1+json';

function metadata(extra: Partial<ImageMetadata> = {}): ImageMetadata {
  return { mediaType: IMAGE, artifactType: 'application/vnd.oci.image.config.v1+json', title: null, description: null, source: null, labels: {}, platforms: [], ...extra };
}

let next = 1;
/** Pushes manifest `n` into `repository` with its metadata and tags, as a push does (one transaction). */
async function push(db: Database, repository: string, m: ImageMetadata = metadata(), tags: string[] = ['latest']): Promise<string> {
  const d = digest(next++);
  await db.transaction(async (tx: SqlExecutor) => {
    const repo = await ensureRepository(tx, repository);
    await insertManifest(tx, { repositoryId: repo.id, digest: d, mediaType: m.mediaType, artifactType: m.artifactType, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
    await recordImageMetadata(tx, repo.id, d, m);
    for (const tag of tags) await upsertTag(tx, repo.id, tag, d);
  });
  return d;
}

describe.each(databaseEngines('search', 4))('search on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  const search = async (text: string, extra: Partial<SearchQuery> = {}) => searchRepositories(db, { text, viewer: EVERYONE, limit: 50, offset: 0, ...extra });
  const names = async (text: string, extra: Partial<SearchQuery> = {}) => (await search(text, extra)).hits.map((h) => h.repository);

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
    // Ranking corpus: each repository matches "postgres" one way.
    await push(db, 'postgres');
    await push(db, 'library/postgres');
    await push(db, 'db/postgres-exporter');
    await push(db, 'ops/my-postgres-backup');
    await push(db, 'ops/postgrse');
    await push(db, 'apps/billing', metadata(), ['postgres-16']);
    await push(db, 'apps/ledger', metadata({ title: 'Ledger', description: 'double-entry ledger stored in PostgreSQL', source: 'https://example.com/ledger' }));
    await push(db, 'apps/unrelated');
    await push(db, 'odd/a_b%c');
    await push(db, 'odd/axbyc');
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('ranks an exact name first, then a prefix, a substring, a similar name, a tag, then metadata', async () => {
    const page = await search('postgres');
    expect(page.hits.map((h) => [h.repository, h.match])).toEqual([
      ['library/postgres', 'exact'],
      ['postgres', 'exact'],
      ['db/postgres-exporter', 'prefix'],
      ['ops/my-postgres-backup', 'substring'],
      ['ops/postgrse', 'similar'],
      ['apps/billing', 'tag'],
      ['apps/ledger', 'metadata'],
    ]);
    expect(page.total).toBe(7);
    const ledger = page.hits.find((h) => h.repository === 'apps/ledger');
    expect(ledger).toMatchObject({ title: 'Ledger', description: 'double-entry ledger stored in PostgreSQL', source: 'https://example.com/ledger', tags: ['latest'] });
    expect(ledger?.pushedAt).toBeInstanceOf(Date);
    // The matching tags come first.
    expect(page.hits.find((h) => h.repository === 'apps/billing')?.tags).toEqual(['postgres-16']);
  });

  it('pages through the ranked results and counts them all on every page', async () => {
    const first = await search('postgres', { limit: 3, offset: 0 });
    const second = await search('postgres', { limit: 3, offset: 3 });
    const third = await search('postgres', { limit: 3, offset: 6 });
    const past = await search('postgres', { limit: 3, offset: 30 });
    expect([first.total, second.total, third.total, past.total]).toEqual([7, 7, 7, 7]);
    expect([first.capped, past.capped]).toEqual([false, false]);
    expect([...first.hits, ...second.hits, ...third.hits].map((h) => h.repository)).toEqual(await names('postgres'));
    expect(past.hits).toEqual([]);
  });

  it('takes LIKE wildcards in the term literally', async () => {
    expect(await names('a_b%c')).toEqual(['odd/a_b%c']);
  });

  it('lists every repository by name for an empty term', async () => {
    const all = await names('');
    expect(all).toEqual([...all].sort());
    expect(all).toHaveLength(10);
  });

  it('filters by namespace, platform, label, media and artifact type, and pushed time', async () => {
    await push(db, 'team/web', metadata({ platforms: ['linux/amd64', 'linux/arm64'], labels: { tier: 'front', owner: 'web' } }));
    await push(db, 'team/worker', metadata({ platforms: ['linux/amd64'], labels: { tier: 'back' } }));
    await push(db, 'team/chart', metadata({ artifactType: 'application/vnd.cncf.helm.config.v1+json' }));
    await push(db, 'teamwork/web');
    expect(await names('', { filters: { namespace: 'team' } })).toEqual(['team/chart', 'team/web', 'team/worker']);
    expect(await names('', { filters: { platform: 'linux/arm64' } })).toEqual(['team/web']);
    expect(await names('', { filters: { platform: 'linux/amd64', labels: { tier: 'back' } } })).toEqual(['team/worker']);
    expect(await names('', { filters: { labels: { tier: 'front', owner: 'web' } } })).toEqual(['team/web']);
    expect(await names('', { filters: { artifactType: 'application/vnd.cncf.helm.config.v1+json' } })).toEqual(['team/chart']);
    expect(await names('web', { filters: { mediaType: IMAGE, namespace: 'team' } })).toEqual(['team/web']);
    expect(await names('', { filters: { pushedSince: new Date(Date.now() + 60_000) } })).toEqual([]);
    expect(await names('', { filters: { namespace: 'team', pushedSince: new Date(Date.now() - 60_000) } })).toHaveLength(3);
  });

  it('lists only what the viewer may pull: public namespaces for anonymous, granted ones for a principal, all for an admin', async () => {
    await push(db, 'open/tool');
    await push(db, 'secret/tool');
    await push(db, 'granted/tool');
    await push(db, 'robots/tool');
    await upsertNamespace(db, 'open', true);
    await upsertNamespace(db, 'secret', false);
    await upsertNamespace(db, 'granted', false);
    await upsertNamespace(db, 'robots', false);
    await addGrant(db, 'granted', 'user', 'alice', 'pull');
    await addGrant(db, 'robots', 'robot', 'robot$ci', 'push');
    await createUser(db, 'root', 'x', true);
    await createUser(db, 'alice', 'x', false);
    const as = (viewer: SearchViewer) => names('tool', { viewer });
    expect(await as({ kind: 'principal', type: null, name: null })).toEqual(['open/tool']);
    expect(await as({ kind: 'principal', type: 'user', name: 'alice' })).toEqual(['granted/tool', 'open/tool']);
    // A robot's grant is not a user's of the same name.
    expect(await as({ kind: 'principal', type: 'user', name: 'robot$ci' })).toEqual(['open/tool']);
    expect(await as({ kind: 'principal', type: 'robot', name: 'robot$ci' })).toEqual(['open/tool', 'robots/tool']);
    expect(await as({ kind: 'principal', type: 'user', name: 'root' })).toEqual(['granted/tool', 'open/tool', 'robots/tool', 'secret/tool']);
    expect((await search('tool', { viewer: { kind: 'principal', type: null, name: null } })).total).toBe(1);
  });

  it('counts the grants of the viewer\'s identity-provider groups, and only of those it names', async () => {
    await push(db, 'teamed/tool');
    await upsertNamespace(db, 'teamed', false);
    await addGrant(db, 'teamed', 'group', 'platform', 'pull');
    const as = (viewer: SearchViewer) => names('tool', { viewer });
    expect(await as({ kind: 'principal', type: 'user', name: 'bob', groups: ['platform'] })).toContain('teamed/tool');
    expect(await as({ kind: 'principal', type: 'user', name: 'bob', groups: ['devs'] })).not.toContain('teamed/tool');
    expect(await as({ kind: 'principal', type: 'user', name: 'bob' })).not.toContain('teamed/tool');
    // A user named like the group is not in it.
    expect(await as({ kind: 'principal', type: 'user', name: 'platform' })).not.toContain('teamed/tool');
  });

  it('forgets a manifest\'s metadata with the manifest', async () => {
    const d = await push(db, 'gone/app', metadata({ description: 'vanishing quokka' }));
    expect(await names('quokka')).toEqual(['gone/app']);
    await db.transaction(async (tx) => deleteManifest(tx, (await ensureRepository(tx, 'gone/app')).id, d));
    expect(await names('quokka')).toEqual([]);
  });

  it('reads at most the match limit of tags, says so, and still ranks the name matches first', async () => {
    for (const n of [1, 2, 3]) await push(db, `capped/app${n}`, metadata(), ['quux-1', 'quux-2']);
    await push(db, 'capped/quux');
    const full = await search('quux');
    expect(full).toMatchObject({ total: 4, capped: false });
    const capped = await search('quux', { matchLimit: 2 });
    expect(capped.capped).toBe(true);
    expect(capped.hits[0]).toMatchObject({ repository: 'capped/quux', match: 'exact' });
    expect(capped.total).toBeLessThan(4);
    expect(capped.total).toBe(capped.hits.length);
  });

  it('reads at most the match limit of metadata matches, and then counts them as a lower bound', async () => {
    for (const n of [1, 2, 3]) await push(db, `described/app${n}`, metadata({ description: 'a wallaby of a service' }));
    await push(db, 'described/wallaby');
    expect(await search('wallaby')).toMatchObject({ total: 4, capped: false });
    const capped = await search('wallaby', { matchLimit: 2 });
    expect(capped.capped).toBe(true);
    expect(capped.hits[0]).toMatchObject({ repository: 'described/wallaby', match: 'exact' });
    // What was read is listed and counted: never more than there is, never fewer than the page shows.
    expect(capped.total).toBe(capped.hits.length);
    expect(capped.total).toBeLessThan(4);
    expect(capped.hits.slice(1).every((h) => h.match === 'metadata')).toBe(true);
  });

  it('counts at most four match limits of repositories without a term, and still pages through all of them by name', async () => {
    const all = await names('');
    const counted = await search('', { matchLimit: 2, limit: 5 });
    expect(counted).toMatchObject({ total: 8, capped: true });
    expect(counted.hits.map((h) => h.repository)).toEqual(all.slice(0, 5));
    expect((await search('', { matchLimit: 2, limit: 5, offset: 10 })).hits.map((h) => h.repository)).toEqual(all.slice(10, 15));
    expect(await search('', { limit: 1 })).toMatchObject({ total: all.length, capped: false });
  });
});

describe.each(databaseEngines('searchtiers', 4))('name match tiers on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  const ANONYMOUS: SearchViewer = { kind: 'principal', type: null, name: null };
  const search = async (text: string, extra: Partial<SearchQuery> = {}) => searchRepositories(db, { text, viewer: EVERYONE, limit: 50, offset: 0, ...extra });
  /** Every page of `limit` in turn, each search reading little more than its page needs (a match limit of 2). */
  const pages = async (text: string, limit: number, viewer: SearchViewer = EVERYONE) => {
    const all = [];
    for (let offset = 0; ; offset += limit) {
      const page = await search(text, { limit, offset, viewer, matchLimit: 2 });
      all.push(page);
      if (page.hits.length < limit) return all;
    }
  };
  // Each kind of match, in the order a search for "pelican" lists them.
  const RANKED: Array<[string, string]> = [
    ['birds/pelican', 'exact'],
    ['pelican', 'exact'],
    ['birds/pelican-brown', 'prefix'],
    ['zoo/pelican-white', 'prefix'],
    ['pelican2', 'prefix'],
    ['pelican-team/app', 'prefix'],
    ['birds/great-pelican', 'substring'],
    ['zoo/old-pelican-x', 'substring'],
    ['birds/pelicna', 'similar'],
    ['birds/heron', 'tag'],
    ['zoo/stork', 'metadata'],
  ];

  beforeAll(async () => {
    ({ db, drop } = await open());
    await migrate(db);
    // Pushed in an order of their own, so that no order of insertion can pass for the ranking.
    for (const name of ['zoo/old-pelican-x', 'pelican2', 'birds/pelicna', 'birds/great-pelican', 'pelican-team/app', 'zoo/pelican-white', 'pelican', 'birds/pelican-brown', 'birds/pelican']) {
      await push(db, name);
    }
    await push(db, 'birds/heron', metadata(), ['pelican-1']);
    await push(db, 'zoo/stork', metadata({ description: 'eats like a pelican' }));
    await push(db, 'birds/gull');
    await upsertNamespace(db, 'birds', true);
    await upsertNamespace(db, 'zoo', false);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('lists an exact name before a prefix match, a prefix match before a substring, and a substring before a similar name', async () => {
    const page = await search('pelican');
    expect(page.hits.map((h) => [h.repository, h.match])).toEqual(RANKED);
    expect(page).toMatchObject({ total: RANKED.length, capped: false });
  });

  it('continues page 1 on page 2 across every tier boundary, without a repository twice or one left out', async () => {
    for (const limit of [2, 3, 4]) {
      const walked = await pages('pelican', limit);
      expect(walked.flatMap((p) => p.hits.map((h) => [h.repository, h.match]))).toEqual(RANKED);
      // Read only as far as each page needs: the count is then a lower bound (capped) that says a next page exists.
      for (const [i, page] of walked.entries()) {
        if (i < walked.length - 1) expect(page.total).toBeGreaterThan((i + 1) * limit);
        if (!page.capped) expect(page.total).toBe(RANKED.length);
        expect(page.total).toBeLessThanOrEqual(RANKED.length);
      }
      expect(walked[0]).toMatchObject({ capped: true, total: expect.any(Number) });
      expect(walked[0].total).toBeLessThan(RANKED.length);
    }
  });

  it('stops at the first tiers when they fill the page, and says the count is a lower bound', async () => {
    const page = await search('pelican', { limit: 1, matchLimit: 1 });
    expect(page.hits.map((h) => [h.repository, h.match])).toEqual([['birds/pelican', 'exact']]);
    // The two exact names are enough for this page and to say there is a next one: nothing past them was read.
    expect(page).toMatchObject({ total: 2, capped: true });
  });

  it('ranks and pages an anonymous caller\'s matches among the public repositories only', async () => {
    const visible = RANKED.filter(([name]) => name.startsWith('birds/'));
    expect((await search('pelican', { viewer: ANONYMOUS })).hits.map((h) => [h.repository, h.match])).toEqual(visible);
    for (const limit of [1, 2]) {
      const walked = await pages('pelican', limit, ANONYMOUS);
      expect(walked.flatMap((p) => p.hits.map((h) => [h.repository, h.match]))).toEqual(visible);
      // Every page but the last is full of what the caller may pull, whatever the tiers read past it.
      expect(walked.slice(0, -1).every((p) => p.hits.length === limit)).toBe(true);
    }
  });
});

/** A repository's search document as stored (0018_search_documents.sql), or null when it has none. */
async function documentOf(db: SqlExecutor, repository: string): Promise<{ namespaces: string[]; metadataText: string } | null> {
  const r = await db.query<{ namespaces: string[]; metadataText: string }>(
    `SELECT namespaces, metadata_text AS "metadataText" FROM search_documents WHERE name = $1`,
    [repository],
  );
  return r.rows[0] ?? null;
}

describe.each(databaseEngines('searchdocs', 4))('search documents on %s', (_name, open) => {
  let db: Database;
  let drop: () => Promise<void>;
  const names = async (text: string, viewer: SearchViewer = EVERYONE) =>
    (await searchRepositories(db, { text, viewer, limit: 50, offset: 0 })).hits.map((h) => [h.repository, h.match]);

  let applied: string[];

  beforeAll(async () => {
    ({ db, drop } = await open());
    // The schema before 0018, with a repository pushed into it; then the rest of the migrations.
    const before = await mkdtemp(path.join(tmpdir(), 'lading-migrations-'));
    try {
      for (const file of await readdir(MIGRATIONS_DIR)) {
        if (Number(file.slice(0, 4)) < 18) await copyFile(path.join(MIGRATIONS_DIR, file), path.join(before, file));
      }
      await migrate(db, [{ owner: 'metadata', dir: before }]);
    } finally {
      await rm(before, { recursive: true, force: true });
    }
    await db.transaction(async (tx) => {
      const repo = await ensureRepository(tx, 'legacy/team/app');
      await insertManifest(tx, { repositoryId: repo.id, digest: digest(9001), mediaType: IMAGE, artifactType: null, payload: Buffer.from('{}'), subjectDigest: null, annotations: null, blobDigests: [], childDigests: [] });
      await recordImageMetadata(tx, repo.id, digest(9001), metadata({ title: 'Legacy', description: 'a wombat from before', labels: { team: 'marsupials' } }));
    });
    applied = await migrate(db);
  });
  afterAll(async () => {
    await db.close();
    await drop();
  });

  it('backfills a document for every repository already there when migration 0018 runs', async () => {
    expect(applied[0]).toBe('0018_search_documents.sql');
    expect(await documentOf(db, 'legacy/team/app')).toEqual({
      namespaces: ['legacy', 'legacy/team', 'legacy/team/app'],
      metadataText: 'Legacy\na wombat from before\nteam=marsupials',
    });
    expect(await names('wombat')).toEqual([['legacy/team/app', 'metadata']]);
  });

  it('gives a repository its document when it is created, before anything is pushed into it', async () => {
    await db.transaction(async (tx) => ensureRepository(tx, 'empty/newcomer'));
    expect(await documentOf(db, 'empty/newcomer')).toEqual({ namespaces: ['empty', 'empty/newcomer'], metadataText: '' });
    expect(await names('newcomer')).toEqual([['empty/newcomer', 'exact']]);
  });

  it('keeps each distinct image text once, with its labels, and drops a manifest\'s text with its last manifest', async () => {
    const first = await push(db, 'docs/app', metadata({ description: 'platypus service', labels: { owner: 'echidna', tier: 'back' } }), ['v1']);
    await push(db, 'docs/app', metadata({ description: 'platypus service', labels: { owner: 'echidna', tier: 'back' } }), ['v2']);
    const third = await push(db, 'docs/app', metadata({ description: 'numbat edition' }), ['v3']);
    expect((await documentOf(db, 'docs/app'))?.metadataText).toBe('numbat edition\nplatypus service\nowner=echidna\ntier=back');
    // A label's value is found, as metadata.
    expect(await names('echidna')).toEqual([['docs/app', 'metadata']]);
    const repositoryId = async (tx: SqlExecutor) => (await ensureRepository(tx, 'docs/app')).id;
    await db.transaction(async (tx) => deleteManifest(tx, await repositoryId(tx), third));
    expect(await names('numbat')).toEqual([]);
    await db.transaction(async (tx) => deleteManifest(tx, await repositoryId(tx), first));
    // The second manifest still says it.
    expect(await names('platypus')).toEqual([['docs/app', 'metadata']]);
  });

  it('finds a tag as soon as it is pushed and forgets it when it is deleted, in the same transaction', async () => {
    await push(db, 'docs/tagged', metadata(), ['kookaburra-1']);
    expect(await names('kookaburra')).toEqual([['docs/tagged', 'tag']]);
    await db.transaction(async (tx) => {
      await deleteTag(tx, (await ensureRepository(tx, 'docs/tagged')).id, 'kookaburra-1');
      // Inside the deleting transaction the tag is already gone from search.
      expect((await searchRepositories(tx, { text: 'kookaburra', viewer: EVERYONE, limit: 5, offset: 0 })).hits).toEqual([]);
    });
    expect(await names('kookaburra')).toEqual([]);
  });

  it('loses a repository from search as soon as its deletion begins, and its document with its last batch', async () => {
    await push(db, 'doomed/app', metadata({ description: 'quoll tracker' }));
    expect(await names('quoll')).toEqual([['doomed/app', 'metadata']]);
    const id = await db.transaction(async (tx) => {
      const locked = (await lockRepositoryForDeletion(tx, 'doomed/app'))!;
      await detachRepositoryForDeletion(tx, { id: locked.id, name: locked.name, tags: locked.tags.length, manifests: locked.manifests });
      return locked.id;
    });
    // Detached: the rename carried the document along, so neither the old name nor the text finds it.
    expect(await documentOf(db, 'doomed/app')).toBeNull();
    expect(await names('quoll')).toEqual([]);
    expect(await names('doomed')).toEqual([]);
    let progress = await continueRepositoryDeletion(db, { repositoryId: id, batchSize: 10, reviewDelayMs: 0 });
    while (progress && !progress.finished) progress = await continueRepositoryDeletion(db, { repositoryId: id, batchSize: 10, reviewDelayMs: 0 });
    expect((await db.query(`SELECT count(*)::int AS n FROM search_documents WHERE repository_id = $1`, [id])).rows[0]).toEqual({ n: 0 });
  });

  it('checks access by the namespaces that cover a deep name, as pulls do', async () => {
    await push(db, 'deep/a/b/c/tool', metadata({ description: 'bilby' }));
    await upsertNamespace(db, 'deep', false);
    await upsertNamespace(db, 'deep/a/b/c', true);
    const anonymous: SearchViewer = { kind: 'principal', type: null, name: null };
    expect(await names('bilby', anonymous)).toEqual([['deep/a/b/c/tool', 'metadata']]);
    await upsertNamespace(db, 'deep/a/b/c', false);
    expect(await names('bilby', anonymous)).toEqual([]);
    await upsertNamespace(db, 'deep/a', false);
    await addGrant(db, 'deep/a', 'user', 'carol', 'pull');
    expect(await names('bilby', { kind: 'principal', type: 'user', name: 'carol' })).toEqual([['deep/a/b/c/tool', 'metadata']]);
    expect(await names('bilby', { kind: 'principal', type: 'user', name: 'dave' })).toEqual([]);
  });
});
