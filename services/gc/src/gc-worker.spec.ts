import { Readable } from 'node:stream';
import { parseConfig } from '@lading/config';
import type { LadingEvent } from '@lading/events';
import * as meta from '@lading/metadata';
import { blobKey } from '@lading/storage';
import { TestDeps, createTestDeps, makeBlob } from '@lading/testing';
import { createGcWorker } from './gc-worker';
import { backoffMs, describeDuration, gcSettings, hasRetention, policyFor } from './gc-settings';

describe('gc settings', () => {
  const settings = gcSettings(
    parseConfig({
      gc: {
        policies: [
          { namespace: '', keepLast: 50 },
          { namespace: 'team', deleteUntagged: false },
          { namespace: 'team/ci/', olderThan: '72h', tagPattern: '^pr-' },
        ],
      },
    }),
  );

  it('picks the policy of the longest matching namespace, by whole path segments', () => {
    expect(policyFor(settings, 'team/app')).toMatchObject({ namespace: 'team', deleteUntagged: false });
    expect(policyFor(settings, 'team')).toMatchObject({ namespace: 'team' });
    expect(policyFor(settings, 'team/ci/build')).toMatchObject({ namespace: 'team/ci', olderThanMs: 72 * 3_600_000, deleteUntagged: true });
    expect(policyFor(settings, 'teammate/app')).toMatchObject({ namespace: '', keepLast: 50 });
    expect(policyFor(gcSettings(parseConfig({})), 'any/thing')).toMatchObject({ namespace: '', deleteUntagged: true, keepLast: null });
  });

  it('evicts only the proxy namespaces that set evictAfter, and none by default', () => {
    const proxies = [
      { namespace: 'hub', upstream: 'https://registry-1.docker.io', evictAfter: '30d' },
      { namespace: 'ghcr', upstream: 'https://ghcr.io' },
    ];
    expect(gcSettings(parseConfig({ proxies })).evictions).toEqual([{ namespace: 'hub', afterMs: 30 * 86_400_000 }]);
    expect(gcSettings(parseConfig({})).evictions).toEqual([]);
  });

  it('reads notPulledFor as retention by pulls, and refuses one that is not a duration', () => {
    const byPulls = gcSettings(parseConfig({ gc: { policies: [{ namespace: 'team', notPulledFor: '90d' }] } }));
    expect(policyFor(byPulls, 'team/app')).toMatchObject({ notPulledForMs: 90 * 86_400_000, keepLast: null, olderThanMs: null });
    expect(hasRetention(policyFor(byPulls, 'team/app'))).toBe(true);
    expect(policyFor(byPulls, 'other/app').notPulledForMs).toBeNull();
    expect(describeDuration(90 * 86_400_000)).toBe('90d');
    expect(describeDuration(36 * 3_600_000)).toBe('36h');
    expect(describeDuration(1500)).toBe('2s');
    expect(() => parseConfig({ gc: { policies: [{ namespace: 'x', notPulledFor: 'ninety days' }] } })).toThrow(/notPulledFor/);
  });

  it('has production defaults: 24 h review delay and upload TTL', () => {
    const defaults = gcSettings(parseConfig({}));
    expect(defaults.reviewDelayMs).toBe(86_400_000);
    expect(defaults.uploadTtlMs).toBe(86_400_000);
  });

  it('refuses short delays and TTLs unless allowShortDelay is set, and bad tag patterns', () => {
    expect(() => parseConfig({ gc: { reviewDelay: '0s' } })).toThrow(/gc.reviewDelay/);
    expect(() => parseConfig({ gc: { uploadTtl: '5s' } })).toThrow(/gc.uploadTtl/);
    expect(parseConfig({ gc: { reviewDelay: '0s', uploadTtl: '5s', allowShortDelay: true } }).gc.reviewDelay).toBe('0s');
    expect(() => parseConfig({ gc: { policies: [{ namespace: 'x', tagPattern: '(' }] } })).toThrow(/tagPattern/);
  });

  it('backs off from about half a second to its cap (a minute at most)', () => {
    expect(backoffMs(0, 60_000, () => 0.5)).toBe(500);
    expect(backoffMs(3, 60_000, () => 0.5)).toBe(4000);
    expect(backoffMs(20, 60_000, () => 0.5)).toBe(60_000);
    expect(backoffMs(20, 60_000, () => 0.999)).toBeLessThan(90_001);
    expect(backoffMs(20, 5_000, () => 0.5)).toBe(5_000);
  });
});

describe('gc worker loops', () => {
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await createTestDeps({ gc: { reviewDelay: '300ms', allowShortDelay: true, pollInterval: '10s' } });
  });
  afterAll(async () => deps.close());

  /** A blob uploaded long ago to `repository` that no manifest references. */
  async function danglingBlob(repository: string): Promise<string> {
    const blob = makeBlob(64);
    await deps.store.writeUpload(`seed-${repository.replace('/', '-')}`, 0, Readable.from([blob.data]));
    await deps.store.commitUpload(`seed-${repository.replace('/', '-')}`, blobKey(blob.digest), blob.size);
    await deps.db.transaction(async (tx) => {
      const repo = await meta.ensureRepository(tx, repository);
      await meta.insertBlob(tx, blob.digest, blob.size);
      await meta.linkBlob(tx, repo.id, blob.digest);
    });
    await deps.db.query(`UPDATE repository_blobs SET created_at = now() - interval '1 hour' WHERE blob_digest = $1`, [blob.digest]);
    return blob.digest;
  }

  async function until(check: () => Promise<boolean>, ms: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < ms) {
      if (await check()) return Date.now() - started;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`not within ${ms} ms`);
  }

  const gone = (digest: string) => async () => (await deps.db.query(`SELECT 1 FROM blobs WHERE digest = $1`, [digest])).rows.length === 0;

  it('sleeps until the next review falls due, then collects it, and stops promptly', async () => {
    const digest = await danglingBlob('loop/app');
    await meta.queueBlobReview(deps.db, [digest], 'test', 300);
    const worker = createGcWorker(deps);
    worker.start();
    const took = await until(gone(digest), 5000);
    expect(took).toBeLessThan(3000);
    expect(await deps.store.stat(blobKey(digest))).toBeNull();
    const stopping = Date.now();
    await worker.stop();
    expect(Date.now() - stopping).toBeLessThan(1000);
  });

  it('puts off a review that fails instead of letting it hold up the queue', async () => {
    const bad = await danglingBlob('poison/bad');
    const good = await danglingBlob('poison/good');
    await meta.queueBlobReview(deps.db, [bad], 'test', 0);
    await meta.queueBlobReview(deps.db, [good], 'test', 0);
    await deps.db.query(`UPDATE gc_blob_review_queue SET review_after = now() - interval '1 minute' WHERE digest = $1`, [bad]);
    const worker = createGcWorker({
      ...deps,
      hooks: {
        afterLock: async (t) => {
          if (t.kind === 'blob' && t.digest === bad) throw new Error('boom');
        },
      },
    });
    await worker.runUntilIdle();
    expect(await gone(good)()).toBe(true);
    expect(await gone(bad)()).toBe(false);
    expect(worker.counters.errors).toBe(1);
    const queued = await deps.db.query<{ attempts: number }>(`SELECT attempts FROM gc_blob_review_queue WHERE digest = $1`, [bad]);
    expect(queued.rows).toEqual([{ attempts: 1 }]);
  });

  it('is woken by events for reviews queued while it sleeps (the poll interval is far longer)', async () => {
    const worker = createGcWorker({ ...deps, bus: deps.bus });
    worker.start();
    await new Promise((r) => setTimeout(r, 200));
    const digest = await danglingBlob('wake/app');
    await meta.queueBlobReview(deps.db, [digest], 'test', 300);
    const event = { type: 'io.lading.blob.uploaded', data: { repository: 'wake/app' } } as unknown as LadingEvent;
    await deps.bus.publish([event]);
    const took = await until(gone(digest), 5000);
    expect(took).toBeLessThan(2500);
    await worker.stop();
  });
});
