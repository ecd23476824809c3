/** The search benchmark's corpus seeds what search reads, at the size asked for (small here; the bench makes it big). */
import { type Database, createPgliteDatabase, migrate, searchRepositories } from '@lading/metadata';
import { measureSearch, seedSearchCorpus } from './search-corpus';

describe('search corpus', () => {
  let db: Database;
  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db);
    await seedSearchCorpus(db, { repositories: 120, tags: 1200, namespaces: 4 });
  });
  afterAll(async () => db.close());

  const count = async (table: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;

  it('seeds the repositories, one manifest with its metadata each, the tags and the namespaces asked for', async () => {
    expect(await count('repositories')).toBe(120);
    expect(await count('manifests')).toBe(120);
    expect(await count('image_metadata')).toBe(120);
    expect(await count('tags')).toBe(1200);
    expect(await count('namespaces WHERE public')).toBe(2);
  });

  it('makes a corpus search finds by name, and filters by access (half of the namespaces are public)', async () => {
    const everyone = await searchRepositories(db, { text: 'postgres', viewer: { kind: 'everyone' }, limit: 25, offset: 0 });
    const anonymous = await searchRepositories(db, { text: 'postgres', viewer: { kind: 'principal', type: null, name: null }, limit: 25, offset: 0 });
    expect(everyone.total).toBeGreaterThan(0);
    expect(anonymous.total).toBeGreaterThan(0);
    expect(anonymous.total).toBeLessThan(everyone.total);
    expect(anonymous.hits.every((h) => /^ns[02]\//.test(h.repository))).toBe(true);
  });

  it('reports latency percentiles per viewer, over all terms and per term', async () => {
    const timings = await measureSearch(db, { terms: ['postgres', 'v1.2'], runs: 2, viewers: { everyone: { kind: 'everyone' } } });
    const percentiles = { p50: expect.any(Number), p95: expect.any(Number), max: expect.any(Number) };
    expect(timings).toEqual([{ label: 'everyone', runs: 4, ...percentiles, terms: { postgres: percentiles, 'v1.2': percentiles } }]);
  });
});
