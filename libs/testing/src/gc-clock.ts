/**
 * Moving the collector's clock on in tests: its queues wait (a review delay, a retry delay, a link's age) before they
 * act, and a test that wants the collector to act now makes those waits over instead of sleeping through them.
 */

/** What the step needs of a database: one multi-statement script. */
export interface ScriptRunner {
  exec(sql: string): Promise<unknown>;
}

/** How far to move the clock. */
export interface GcClockOptions {
  /** How old every repository–blob link is made, past the review delay (a PostgreSQL interval); default 2 hours. */
  linkAge?: string;
  /** Also make every tombstone's retry due; default true. */
  tombstones?: boolean;
}

/** Makes every blob and manifest review due now, every link older than the review delay, and (by default) every tombstone's retry due. */
export async function makeGcQueuesDue(db: ScriptRunner, options: GcClockOptions = {}): Promise<void> {
  const linkAge = options.linkAge ?? '2 hours';
  if (!/^\d+ (second|minute|hour|day)s?$/.test(linkAge)) throw new Error(`linkAge must be a plain interval such as '2 hours', not ${JSON.stringify(linkAge)}`);
  await db.exec(`
    UPDATE gc_blob_review_queue SET review_after = now() - interval '1 second';
    UPDATE gc_manifest_review_queue SET review_after = now() - interval '1 second';
    UPDATE repository_blobs SET created_at = now() - interval '${linkAge}';
    ${options.tombstones === false ? '' : `UPDATE gc_tombstones SET retry_after = now() - interval '1 second';`}
  `);
}
