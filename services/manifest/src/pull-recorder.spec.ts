/** The pull recorder on PGlite: pulls reach the database only in a flush, one statement per batch, bounded. */
import type { EventContext } from '@lading/events';
import type { SqlExecutor } from '@lading/metadata';
import { TestDeps, TestManifest, createTestDeps, seedImage } from '@lading/testing';
import { pushManifest } from './manifest-writes';
import { createPullRecorder } from './pull-recorder';

const context: EventContext = { actor: { name: 'alice', type: 'user' }, request: null };

describe('pull recorder', () => {
  let deps: TestDeps;
  let a: TestManifest;
  let b: TestManifest;
  const statements: string[] = [];
  /** The database, counting the statements the recorder sends. */
  let counted: SqlExecutor;

  beforeAll(async () => {
    deps = await createTestDeps();
    counted = { query: (sql, params) => (statements.push(sql), deps.db.query(sql, params)) };
    const writes = { db: deps.db, events: deps.events, reviewDelayMs: 60_000 };
    a = await seedImage(deps, 'hub/a');
    await pushManifest(writes, { repository: 'hub/a', body: a.body, contentType: a.mediaType, expectedDigest: null, tags: ['v1'], context });
    b = await seedImage(deps, 'hub/b');
    await pushManifest(writes, { repository: 'hub/b', body: b.body, contentType: b.mediaType, expectedDigest: null, tags: [], context });
  });
  afterAll(async () => deps.close());
  beforeEach(() => (statements.length = 0));

  const lastPulled = async (repository: string, digest: string): Promise<number | null> => {
    const r = await deps.db.query<{ at: Date | null }>(
      `SELECT m.last_pulled_at AS at FROM manifests m JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2`,
      [repository, digest],
    );
    return r.rows[0].at?.getTime() ?? null;
  };

  it('writes nothing per pull, then a thousand pulls of two manifests in one statement at the latest pull time', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const recorder = createPullRecorder({ db: counted, logger: deps.logger, flushIntervalMs: 60_000, now: () => now });
    for (let i = 0; i < 1000; i++) {
      now += 1000;
      recorder.note('hub/a', a.digest);
      recorder.note('hub/b', b.digest);
      recorder.note('hub/gone', 'sha256:' + '0'.repeat(64));
    }
    expect(statements).toEqual([]);
    expect(recorder.pending).toBe(3);
    expect(await recorder.flush()).toBe(2);
    expect(statements).toHaveLength(1);
    expect(await lastPulled('hub/a', a.digest)).toBe(now);
    expect(await lastPulled('hub/b', b.digest)).toBe(now);
    expect(recorder.pending).toBe(0);
    expect(await recorder.flush()).toBe(0);
    expect(statements).toHaveLength(1);
  });

  it('never moves a last-pulled time back (a late batch)', async () => {
    const at = Date.parse('2030-01-01T00:00:00Z');
    const later = createPullRecorder({ db: counted, logger: deps.logger, flushIntervalMs: 60_000, now: () => at });
    later.note('hub/a', a.digest);
    await later.flush();
    const late = createPullRecorder({ db: counted, logger: deps.logger, flushIntervalMs: 60_000, now: () => at - 3_600_000 });
    late.note('hub/a', a.digest);
    await late.flush();
    expect(await lastPulled('hub/a', a.digest)).toBe(at);
  });

  it('keeps at most maxPending manifests between flushes, counts the notes it drops, and flushes when stopped', async () => {
    const at = Date.parse('2031-01-01T00:00:00Z');
    let dropped = 0;
    const metrics = { proxyPullNotesDropped: { add: (n: number) => void (dropped += n) } };
    const recorder = createPullRecorder({ db: counted, logger: deps.logger, flushIntervalMs: 60_000, maxPending: 1, now: () => at, metrics });
    recorder.start();
    recorder.note('hub/b', b.digest);
    recorder.note('hub/a', a.digest);
    recorder.note('hub/b', b.digest);
    recorder.note('hub/a', a.digest);
    expect(recorder.pending).toBe(1);
    expect(dropped).toBe(2);
    await recorder.stop();
    expect(recorder.pending).toBe(0);
    expect(await lastPulled('hub/b', b.digest)).toBe(at);
    expect(await lastPulled('hub/a', a.digest)).not.toBe(at);
  });
});
