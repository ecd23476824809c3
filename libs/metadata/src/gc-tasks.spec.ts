/**
 * When the collector's next task falls due (msUntilNextGcTask), on PGlite: nothing queued is "none waits" (null),
 * which lets an idle collector sleep its whole poll interval, not "due now".
 */
import type { Database } from './database';
import { REVIEW_JITTER, queueBlobReview } from './gc-queue';
import { msUntilNextGcTask } from './gc-tasks';
import { migrate } from './migrate';
import { createPgliteDatabase } from './pglite-adapter';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describe('msUntilNextGcTask', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db);
  });
  afterAll(async () => db.close());

  it('is null when no review or object deletion is queued', async () => {
    expect(await msUntilNextGcTask(db)).toBeNull();
  });

  it('is the time until the earliest queued review (its delay plus jitter)', async () => {
    await queueBlobReview(db, [digest(1)], 'later', 3_600_000);
    const ms = await msUntilNextGcTask(db);
    expect(ms).toBeGreaterThan(3_500_000);
    expect(ms).toBeLessThanOrEqual(3_600_000 * (1 + REVIEW_JITTER));
  });

  it('is 0, never negative, once a review is overdue', async () => {
    await db.query(`UPDATE gc_blob_review_queue SET review_after = now() - interval '1 hour'`);
    expect(await msUntilNextGcTask(db)).toBe(0);
  });
});
