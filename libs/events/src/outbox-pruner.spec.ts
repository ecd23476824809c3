import { METADATA_MIGRATIONS, Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EVENTS_MIGRATIONS } from './migrations';
import { EVENT_TYPES } from './event-types';
import { createUuidV7Generator } from './ids';
import { OutboxContext, appendEvent } from './outbox';
import { createOutboxPruner } from './outbox-pruner';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
/** The fields a tag.updated must carry; these specs are about outbox rows, not about what the events say. */
const TAG_DATA = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, tag: 't' };
const HOUR = 3_600_000;

describe('outbox pruner', () => {
  let db: Database;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    await db.transaction((tx) => ensureRepository(tx, 'prune/me'));
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await db.query(`DELETE FROM outbox`);
  });

  /** Appends an event and sets its state: published `publishedHoursAgo` ago (null: unpublished), parked or not. */
  async function row(publishedHoursAgo: number | null, parked = false): Promise<string> {
    const event = await db.transaction((tx) =>
      appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: 'prune/me', subject: 'prune/me:t', context: { actor: { name: null, type: 'anonymous' }, request: null }, data: TAG_DATA }),
    );
    await db.query(
      `UPDATE outbox SET created_at = now() - interval '1000 hours',
              published_at = CASE WHEN $2::float8 IS NULL THEN NULL ELSE now() - $2::float8 * interval '1 hour' END,
              parked_at = CASE WHEN $3 THEN now() - interval '1000 hours' END, attempts = CASE WHEN $3 THEN 10 ELSE 0 END
        WHERE id = $1`,
      [event.id, publishedHoursAgo, parked],
    );
    return event.id;
  }

  const remaining = async () => (await db.query<{ id: string }>(`SELECT id::text AS id FROM outbox ORDER BY id`)).rows.map((r) => r.id).sort();

  it('deletes published rows older than the retention, in batches, and never an unpublished, parked or recent row', async () => {
    const old = [];
    for (let i = 0; i < 7; i++) old.push(await row(200));
    const recent = await row(1);
    const unpublished = await row(null);
    const parked = await row(null, true);
    const pruner = createOutboxPruner({ db, retentionMs: 168 * HOUR, batchSize: 3 });
    expect(await pruner.pruneOnce()).toBe(7);
    expect(await remaining()).toEqual([recent, unpublished, parked].sort());
    expect(await pruner.pruneOnce()).toBe(0);
    expect(await remaining()).toEqual([recent, unpublished, parked].sort());
  });

  it('deletes each row once when several processes prune at the same moment', async () => {
    for (let i = 0; i < 20; i++) await row(500);
    const keep = await row(null);
    const pruners = [1, 2, 3].map(() => createOutboxPruner({ db, retentionMs: HOUR, batchSize: 4 }));
    const counts = await Promise.all(pruners.map((p) => p.pruneOnce()));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(20);
    expect(await remaining()).toEqual([keep]);
  });
});
