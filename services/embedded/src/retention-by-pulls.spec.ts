/**
 * Retention by pulls (`gc.policies[].notPulledFor`) on a served embedded registry: pulls are recorded through the
 * real pull path and its batched writer, the clock is moved by ageing the recorded times (pushes, pulls) in the
 * database, then the collector's dry run says what would go and why (the policy and the last pull), and a collection
 * deletes exactly that: tags whose image was not pulled for the period and untagged manifests not pulled for it,
 * while recently pulled or recently pushed content stays.
 */
import request from 'supertest';
import type { GcPlan } from '@lading/gc';
import * as meta from '@lading/metadata';
import { type TestManifest, imageManifest, makeBlob, makeGcQueuesDue } from '@lading/testing';
import { type ServedRegistry, pushImage, serveEmbeddedRegistry } from '../test/served-registry';

const ROOT = { user: 'root', password: 'root-password-8' };
const basic = `Basic ${Buffer.from(`${ROOT.user}:${ROOT.password}`).toString('base64')}`;
const DAY = 86_400_000;

describe('retention by pulls', () => {
  let served: ServedRegistry;

  beforeAll(async () => {
    served = await serveEmbeddedRegistry({
      admin: ROOT,
      gc: { enabled: false, reviewDelay: '1ms', allowShortDelay: true, policies: [{ namespace: 'pulled', notPulledFor: '90d' }, { namespace: 'pulled/preview', notPulledFor: '90d', dryRun: true }] },
    });
  });
  afterAll(async () => served?.close());

  async function push(repository: string, reference: string): Promise<TestManifest> {
    const config = makeBlob(`{"architecture":"amd64","os":"linux","n":${Math.random()}}`);
    const layer = makeBlob(512);
    const manifest = imageManifest(config, [layer]);
    expect(await pushImage(served.client, repository, reference === 'digest' ? manifest.digest : reference, manifest, [config, layer])).toBe(201);
    return manifest;
  }
  const pull = async (repository: string, reference: string) => (await request(served.url).get(`/v2/${repository}/manifests/${reference}`).set('Accept', 'application/vnd.oci.image.manifest.v1+json')).status;
  const db = () => served.registry.db;
  /** Moves a manifest's recorded push and pull (and its tags' pushes) `days` into the past. */
  async function age(digest: string, pushedDaysAgo: number, pulledDaysAgo: number | null): Promise<void> {
    await db().query(
      `UPDATE manifests SET created_at = now() - make_interval(days => $2),
              last_pulled_at = CASE WHEN $3::int IS NULL THEN NULL ELSE now() - make_interval(days => $3::int) END WHERE digest = $1`,
      [digest, pushedDaysAgo, pulledDaysAgo],
    );
    await db().query(`UPDATE tags SET updated_at = now() - make_interval(days => $2) WHERE manifest_digest = $1`, [digest, pushedDaysAgo]);
  }
  const exists = async (repository: string, digest: string) => (await meta.findManifestByDigest(db(), repository, digest)) !== null;
  const tagged = async (repository: string, tag: string) => (await meta.findManifestByTag(db(), repository, tag))?.digest ?? null;

  it('records pulls in a namespace retained by pulls, through the batched writer', async () => {
    const m = await push('pulled/recorded', 'v1');
    expect(await pull('pulled/recorded', 'v1')).toBe(200);
    await served.registry.flushPulls();
    const row = await db().query<{ at: Date | null }>(`SELECT last_pulled_at AS at FROM manifests WHERE digest = $1`, [m.digest]);
    expect(row.rows[0].at).not.toBeNull();
    expect(Math.abs(Date.now() - new Date(row.rows[0].at!).getTime())).toBeLessThan(60_000);
  });

  it('explains in the dry run, then deletes, the tags and untagged manifests not pulled for notPulledFor, keeping what was pulled or pushed since', async () => {
    const stale = await push('pulled/app', 'stale'); // pushed 120 days ago, last pulled 100 days ago: goes
    const hot = await push('pulled/app', 'hot'); // pushed 120 days ago, pulled 10 days ago: stays
    const fresh = await push('pulled/app', 'fresh'); // pushed yesterday, never pulled: stays
    const orphan = await push('pulled/app', 'digest'); // untagged, pushed 120 days ago, never pulled: goes
    const used = await push('pulled/app', 'digest'); // untagged, pushed 120 days ago, pulled 5 days ago: stays
    for (const reference of ['stale', 'hot', used.digest]) expect(await pull('pulled/app', reference)).toBe(200);
    await served.registry.flushPulls();
    await age(stale.digest, 120, 100);
    await age(hot.digest, 120, 10);
    await age(fresh.digest, 1, null);
    await age(orphan.digest, 120, null);
    await age(used.digest, 120, 5);

    const plan = (await request(served.url).get('/admin/v1/gc/dry-run?all=1').set('Authorization', basic).expect(200)).body as GcPlan;
    const tagItem = plan.items.find((i) => i.target === 'pulled/app:stale');
    expect(tagItem).toMatchObject({ kind: 'tag', action: 'delete' });
    expect(tagItem!.reason).toMatch(/^retention of namespace 'pulled': not pulled for 90d \(last pulled \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
    const orphanItem = plan.items.find((i) => i.target === `pulled/app@${orphan.digest}`);
    expect(orphanItem).toMatchObject({ kind: 'manifest', action: 'delete' });
    expect(orphanItem!.queued).toMatch(/^retention of namespace 'pulled': untagged and not pulled for 90d \(never pulled, pushed \d{4}-/);
    const targets = plan.items.filter((i) => i.action === 'delete').map((i) => i.target);
    for (const kept of ['pulled/app:hot', 'pulled/app:fresh', `pulled/app@${hot.digest}`, `pulled/app@${fresh.digest}`, `pulled/app@${used.digest}`]) expect(targets).not.toContain(kept);

    for (let round = 0; round < 4; round++) {
      await request(served.url).post('/admin/v1/gc/collect').set('Authorization', basic).expect(200);
      await makeGcQueuesDue(db());
    }
    expect(await tagged('pulled/app', 'stale')).toBeNull();
    expect(await exists('pulled/app', stale.digest)).toBe(false);
    expect(await exists('pulled/app', orphan.digest)).toBe(false);
    expect(await tagged('pulled/app', 'hot')).toBe(hot.digest);
    expect(await tagged('pulled/app', 'fresh')).toBe(fresh.digest);
    expect(await exists('pulled/app', used.digest)).toBe(true);
  });

  it('keeps an untagged manifest queued for review while it was pulled within notPulledFor, saying why', async () => {
    const m = await push('pulled/queued', 'digest');
    await age(m.digest, 120, 3);
    const plan = (await request(served.url).get('/admin/v1/gc/dry-run?all=1').set('Authorization', basic).expect(200)).body as GcPlan;
    const item = plan.items.find((i) => i.target === `pulled/queued@${m.digest}`);
    expect(item).toMatchObject({ kind: 'manifest', action: 'keep' });
    expect(item!.reason).toMatch(/^untagged, but pulled \d{4}-.*, within notPulledFor 90d of namespace 'pulled'$/);
  });

  it('only reports under a dry-run policy', async () => {
    const m = await push('pulled/preview/app', 'old');
    await age(m.digest, 200, 150);
    const plan = (await request(served.url).get('/admin/v1/gc/dry-run').set('Authorization', basic).expect(200)).body as GcPlan;
    expect(plan.items.find((i) => i.target === 'pulled/preview/app:old')).toMatchObject({ action: 'report', reason: expect.stringContaining('(dry-run policy)') });
    await request(served.url).post('/admin/v1/gc/collect').set('Authorization', basic).expect(200);
    expect(await tagged('pulled/preview/app', 'old')).toBe(m.digest);
  });

  it('never removes an immutable tag, however long unpulled', async () => {
    await request(served.url).post('/admin/v1/namespaces').set('Authorization', basic).send({ prefix: 'pulled/locked', immutableTags: ['v*'] }).expect(201);
    const m = await push('pulled/locked/app', 'v1');
    await age(m.digest, 300, 200);
    const plan = (await request(served.url).get('/admin/v1/gc/dry-run').set('Authorization', basic).expect(200)).body as GcPlan;
    expect(plan.items.find((i) => i.target === 'pulled/locked/app:v1')).toBeUndefined();
    await request(served.url).post('/admin/v1/gc/collect').set('Authorization', basic).expect(200);
    expect(await tagged('pulled/locked/app', 'v1')).toBe(m.digest);
  });

  it('leaves a tag whose image is pulled between the listing and the deletion', async () => {
    const m = await push('pulled/saved', 'v1');
    await age(m.digest, 120, 100);
    const tags = await meta.tagsByAge(db(), (await meta.findRepository(db(), 'pulled/saved'))!.id);
    await age(m.digest, 120, 0); // the pull lands (a flush) after the candidates were listed
    const repo = (await meta.findRepository(db(), 'pulled/saved'))!;
    expect(await db().transaction((tx) => meta.deleteTagIfUnchanged(tx, repo.id, tags[0], Date.now() - 90 * DAY))).toBe(false);
    expect(await tagged('pulled/saved', 'v1')).toBe(m.digest);
  });
});
