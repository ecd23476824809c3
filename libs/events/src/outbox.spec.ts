import { METADATA_MIGRATIONS, Database, createPgliteDatabase, ensureRepository, migrate } from '@lading/metadata';
import { EVENTS_MIGRATIONS } from './migrations';
import { EVENT_TYPES, EventData, LadingEvent } from './event-types';
import { EventContext, NewEvent, OutboxContext, appendEvent } from './outbox';

const context: EventContext = {
  actor: { name: null, type: 'anonymous' },
  request: { id: 'req-1', addr: '127.0.0.1', method: 'PUT', useragent: 'test' },
};

describe('appendEvent', () => {
  let db: Database;
  let counter = 0;
  const ctx: OutboxContext = {
    source: '//test/lading/manifest',
    ids: () => `00000000-0000-7000-8000-${String(++counter).padStart(12, '0')}`,
    now: () => new Date('2025-01-02T03:04:05.678Z'),
  };

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
    await db.transaction(async (tx) => {
      for (const name of ['team/app', 'other', 'rolled/back', 'many']) await ensureRepository(tx, name);
    });
  });
  afterAll(async () => db.close());

  // The outbox stores what it is given and fills the rest with defaults; these records need not be valid events of
  // their type (the catalogue's types say what a real caller must give), hence the cast.
  const append = (repository: string, extra: Partial<Omit<NewEvent, 'data'>> & { data?: Partial<EventData> } = {}) =>
    db.transaction((tx) => appendEvent(tx, ctx, { type: EVENT_TYPES.tagUpdated, repository, subject: `${repository}:v1`, context, ...extra } as NewEvent));

  async function rows(repository: string) {
    return (
      await db.query<{ id: string; sequence: number; type: string; event: LadingEvent; published_at: Date | null; attempts: number }>(
        `SELECT id, sequence, type, event, published_at, attempts FROM outbox WHERE repository = $1 ORDER BY sequence`,
        [repository],
      )
    ).rows;
  }

  it('writes one outbox row per call with an increasing, zero-padded sequence per repository', async () => {
    const first = await append('team/app');
    const second = await append('team/app');
    const other = await append('other');
    const third = await append('team/app');
    expect([first.sequence, second.sequence, third.sequence]).toEqual(['00000000000000000001', '00000000000000000002', '00000000000000000003']);
    expect(other.sequence).toBe('00000000000000000001');
    const stored = await rows('team/app');
    expect(stored.map((r) => [r.id, r.sequence, r.published_at, r.attempts])).toEqual([
      [first.id, 1, null, 0],
      [second.id, 2, null, 0],
      [third.id, 3, null, 0],
    ]);
    expect(await rows('other')).toHaveLength(1);
  });

  it('writes a CloudEvents 1.0 record with the context, defaults and the data the caller gave', async () => {
    const event = await append('other', {
      type: EVENT_TYPES.manifestPushed,
      subject: 'other@sha256:abc',
      context: { ...context, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      data: { digest: 'sha256:abc', tag: 'v1', size: 12 },
    });
    expect(event).toEqual({
      specversion: '1.0',
      id: expect.stringMatching(/^00000000-0000-7000-8000-\d{12}$/),
      source: '//test/lading/manifest',
      type: 'io.lading.manifest.pushed',
      subject: 'other@sha256:abc',
      time: '2025-01-02T03:04:05.678Z',
      datacontenttype: 'application/json',
      partitionkey: 'other',
      sequence: '00000000000000000002',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      data: {
        repository: 'other',
        namespace: '',
        digest: 'sha256:abc',
        mediaType: null,
        artifactType: null,
        size: 12,
        tag: 'v1',
        previousDigest: null,
        references: [],
        subject: null,
        fromRepository: null,
        proxy: null,
        actor: { name: null, type: 'anonymous' },
        request: { id: 'req-1', addr: '127.0.0.1', method: 'PUT', useragent: 'test' },
      },
    });
    const stored = (await rows('other')).find((r) => r.id === event.id);
    expect(stored?.type).toBe('io.lading.manifest.pushed');
    expect(stored?.event).toEqual(event);
  });

  it('leaves traceparent out when the request had none, and gives a nested repository its namespace', async () => {
    const event = await append('team/app');
    expect(event).not.toHaveProperty('traceparent');
    expect(event.data.namespace).toBe('team');
  });

  it('writes no row, and uses no sequence number, when the transaction rolls back', async () => {
    await expect(
      db.transaction(async (tx) => {
        await appendEvent(tx, ctx, { type: EVENT_TYPES.tagDeleted, repository: 'rolled/back', subject: 'x', context, data: { tag: 'v1', digest: 'sha256:abc' } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await rows('rolled/back')).toEqual([]);
    expect((await append('rolled/back')).sequence).toBe('00000000000000000001');
  });

  it('refuses an event for a repository that does not exist', async () => {
    await expect(append('no/such/repo')).rejects.toThrow(/does not exist/);
  });

  it('pads the sequence so that text order equals numeric order past 9', async () => {
    const sequences: string[] = [];
    for (let i = 0; i < 12; i++) sequences.push((await append('many')).sequence);
    expect([...sequences].sort()).toEqual(sequences);
    expect(sequences[11]).toBe('00000000000000000012');
  });

  it('keeps a well-formed W3C traceparent and drops a malformed one a client sent', async () => {
    const good = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    for (const bad of ['garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', `${good}\n`, good.toUpperCase()]) {
      const event = await append('other', { context: { ...context, traceparent: bad } });
      expect(event).not.toHaveProperty('traceparent');
    }
    expect((await append('other', { context: { ...context, traceparent: good } })).traceparent).toBe(good);
  });
});
