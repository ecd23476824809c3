import express, { NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { METADATA_MIGRATIONS, Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EVENTS_MIGRATIONS } from './migrations';
import { OciError, toErrorEnvelope } from '@lading/oci';
import { EventBus, EventsRefusedError } from './bus';
import { EVENT_TYPES, LadingEvent } from './event-types';
import { createUuidV7Generator } from './ids';
import { OutboxContext, appendEvent } from './outbox';
import { createOutboxAdminRouter } from './outbox-admin';
import { createOutboxRelay } from './outbox-relay';

const ctx: OutboxContext = { source: '//test/lading', ids: createUuidV7Generator(), now: () => new Date() };
/** The fields a tag.updated must carry; these specs are about outbox rows, not about what the events say. */
const TAG_DATA = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, tag: 't' };

describe('outbox admin router', () => {
  let db: Database;
  let app: express.Express;
  let requeued = 0;

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    await db.transaction((tx) => ensureRepository(tx, 'team/app'));
    app = express();
    app.use('/admin/v1/outbox', createOutboxAdminRouter({ db, onRequeued: () => requeued++ }));
    // What the admin API's error handler does: OciError → its status and the OCI envelope.
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err instanceof OciError ? err.status : 500).json(toErrorEnvelope(err as OciError));
    });
  });
  afterAll(async () => db.close());

  it('lists the rows the relay parked, and requeues one so that the relay publishes it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(
        (await db.transaction((tx) =>
          appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository: 'team/app', subject: `team/app:t${i}`, context: { actor: { name: null, type: 'anonymous' }, request: null }, data: TAG_DATA }),
        )).id,
      );
    }
    let refuse = true;
    const accepted: LadingEvent[] = [];
    const bus: EventBus = {
      driverName: 'refusing',
      async publish(events) {
        if (refuse && events.some((e) => e.id === ids[1])) throw new EventsRefusedError('kafka refused the records: MESSAGE_TOO_LARGE');
        accepted.push(...events);
      },
      subscribe: async () => async () => undefined,
      close: async () => undefined,
    };
    const relay = createOutboxRelay({ db, bus, maxAttempts: 1 });
    expect(await relay.drain()).toBe(2);

    const list = await request(app).get('/admin/v1/outbox/parked').expect(200);
    expect(list.body.parked).toHaveLength(1);
    expect(list.body.parked[0]).toMatchObject({
      id: ids[1],
      repository: 'team/app',
      sequence: 2,
      type: 'io.lading.tag.updated',
      attempts: 1,
      lastError: 'kafka refused the records: MESSAGE_TOO_LARGE',
      event: { id: ids[1], subject: 'team/app:t1' },
    });
    expect(Date.parse(list.body.parked[0].parkedAt)).not.toBeNaN();

    refuse = false;
    const done = await request(app).post(`/admin/v1/outbox/parked/${ids[1]}/requeue`).expect(200);
    expect(done.body).toEqual({ id: ids[1], requeued: true });
    expect(requeued).toBe(1);
    expect((await request(app).get('/admin/v1/outbox/parked').expect(200)).body.parked).toEqual([]);
    const row = (await db.query<{ attempts: number; last_error: string | null; parked_at: Date | null }>(`SELECT attempts, last_error, parked_at FROM outbox WHERE id = $1`, [ids[1]])).rows[0];
    expect(row).toEqual({ attempts: 0, last_error: null, parked_at: null });
    expect(await relay.drain()).toBe(1);
    expect(accepted.map((e) => e.id)).toEqual([ids[0], ids[2], ids[1]]);
  });

  it('answers 404 NOT_FOUND for a row that is not parked, an unknown id and a malformed id, changing nothing', async () => {
    const published = (await db.query<{ id: string }>(`SELECT id::text AS id FROM outbox WHERE published_at IS NOT NULL LIMIT 1`)).rows[0].id;
    for (const id of [published, '0190f1c2-7b3a-7fff-bfff-ffffffffffff', 'not-a-uuid', "x'; DROP TABLE outbox; --"]) {
      const res = await request(app).post(`/admin/v1/outbox/parked/${encodeURIComponent(id)}/requeue`);
      expect(res.status).toBe(404);
      expect(res.body.errors[0].code).toBe('NOT_FOUND');
    }
    expect((await db.query(`SELECT 1 FROM outbox WHERE id = $1 AND published_at IS NOT NULL`, [published])).rows).toHaveLength(1);
  });

  it('refuses a limit that is not a positive integer with a 400', async () => {
    for (const limit of ['0', '-1', 'abc', '1.5']) {
      const res = await request(app).get(`/admin/v1/outbox/parked?limit=${limit}`);
      expect(res.status).toBe(400);
      expect(res.body.errors[0].code).toBe('UNSUPPORTED');
    }
    expect((await request(app).get('/admin/v1/outbox/parked?limit=5')).status).toBe(200);
  });
});
