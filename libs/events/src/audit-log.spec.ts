/** The audit log on PGlite: written with its outbox row, paged by (time, id), filtered, and pruned past its retention. */
import { METADATA_MIGRATIONS, Database, createPgliteDatabase, migrate } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { appendAuditEvent } from './audit';
import { encodeAuditCursor, parseAuditQuery } from './audit-admin';
import { pruneAuditLog, queryAuditLog } from './audit-log';
import { AUDIT_EVENT_TYPES, AUDIT_PARTITION_KEY } from './event-types';
import { createUuidV7Generator } from './ids';
import { EVENTS_MIGRATIONS } from './migrations';
import type { OutboxContext } from './outbox';
import { createOutboxPruner } from './outbox-pruner';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const MINUTE = 60_000;

describe('audit log', () => {
  let db: Database;
  let clock = T0;
  const ctx: OutboxContext = { source: '//test/lading/auth', ids: createUuidV7Generator(), now: () => new Date(clock) };

  const login = (user: string, at: number) => {
    clock = at;
    return db.transaction((tx) =>
      appendAuditEvent(tx, ctx, {
        type: AUDIT_EVENT_TYPES.login,
        data: { actor: { type: 'user', name: user }, result: 'success', reason: null, method: 'password', request: null },
      }),
    );
  };

  beforeAll(async () => {
    db = await createPgliteDatabase();
    await migrate(db, [METADATA_MIGRATIONS, EVENTS_MIGRATIONS]);
  });
  afterAll(async () => db.close());
  beforeEach(async () => {
    await db.query(`DELETE FROM audit_log`);
    await db.query(`DELETE FROM outbox`);
  });

  it('writes an audit event to the outbox and the log in one go, numbered by its own sequence', async () => {
    const first = await login('alice', T0);
    const second = await login('bob', T0 + 1);
    expect(Number(second.sequence)).toBeGreaterThan(Number(first.sequence));
    expect(first.partitionkey).toBe(AUDIT_PARTITION_KEY);
    const outbox = await db.query<{ repository: string; type: string }>(`SELECT repository, type FROM outbox ORDER BY sequence`);
    expect(outbox.rows).toEqual([
      { repository: '_audit', type: AUDIT_EVENT_TYPES.login },
      { repository: '_audit', type: AUDIT_EVENT_TYPES.login },
    ]);
    expect((await queryAuditLog(db, { limit: 10 })).entries.map((e) => [e.actor, e.eventId])).toEqual([
      ['alice', first.id],
      ['bob', second.id],
    ]);
  });

  it('pages oldest first by (time, id), and filters by time, actor, repository and type', async () => {
    for (let i = 0; i < 5; i++) await login(i % 2 === 0 ? 'alice' : 'bob', T0 + i * MINUTE);
    clock = T0 + 2 * MINUTE;
    await db.transaction((tx) =>
      appendAuditEvent(tx, ctx, {
        type: AUDIT_EVENT_TYPES.pulls,
        data: { windowStart: new Date(T0).toISOString(), windowEnd: new Date(clock).toISOString(), pulls: [{ actor: { type: 'robot', name: 'ci' }, repository: 'team/app', count: 4 }] },
      }),
    );
    const page1 = await queryAuditLog(db, { limit: 4 });
    expect(page1.entries.map((e) => e.actor)).toEqual(['alice', 'bob', 'alice', 'robot$ci']);
    const page2 = await queryAuditLog(db, { limit: 4, after: page1.next! });
    expect(page2.entries.map((e) => e.actor)).toEqual(['bob', 'alice']);
    expect(page2.next).toBeNull();
    expect((await queryAuditLog(db, { limit: 10, actor: 'alice' })).entries).toHaveLength(3);
    expect((await queryAuditLog(db, { limit: 10, repository: 'team/app' })).entries.map((e) => e.record)).toEqual([
      expect.objectContaining({ repository: 'team/app', count: 4, actor: { type: 'robot', name: 'ci' } }),
    ]);
    expect((await queryAuditLog(db, { limit: 10, type: AUDIT_EVENT_TYPES.login })).entries).toHaveLength(5);
    const window = await queryAuditLog(db, { limit: 10, since: new Date(T0 + MINUTE), until: new Date(T0 + 3 * MINUTE) });
    expect(window.entries.map((e) => e.time)).toEqual([new Date(T0 + MINUTE), new Date(T0 + 2 * MINUTE), new Date(T0 + 2 * MINUTE)].map((d) => d.toISOString()));
  });

  it('pages newest first by (time, id) descending, ties by id, the filters unchanged', async () => {
    for (let i = 0; i < 5; i++) await login(i % 2 === 0 ? 'alice' : 'bob', T0 + i * MINUTE);
    // Two entries in the same millisecond: the id orders them, both ways.
    await login('carol', T0 + 4 * MINUTE);
    const all = (await queryAuditLog(db, { limit: 10 })).entries;
    const page1 = await queryAuditLog(db, { limit: 4, order: 'newest' });
    expect(page1.entries.map((e) => e.actor)).toEqual(['carol', 'alice', 'bob', 'alice']);
    const page2 = await queryAuditLog(db, { limit: 4, order: 'newest', after: page1.next! });
    expect(page2.entries.map((e) => e.actor)).toEqual(['bob', 'alice']);
    expect(page2.next).toBeNull();
    expect([...page1.entries, ...page2.entries].map((e) => e.id)).toEqual(all.map((e) => e.id).reverse());
    expect((await queryAuditLog(db, { limit: 10, order: 'newest', actor: 'alice' })).entries.map((e) => e.time)).toEqual(
      [4, 2, 0].map((i) => new Date(T0 + i * MINUTE).toISOString()),
    );
  });

  it('keeps cursor paging stable in both orders while entries are written: none is listed twice or skipped', async () => {
    for (let i = 0; i < 6; i++) await login(`u${i}`, T0 + i * MINUTE);
    for (const order of ['oldest', 'newest'] as const) {
      const seen: string[] = [];
      let page = await queryAuditLog(db, { limit: 2, order });
      seen.push(...page.entries.map((e) => e.actor!));
      // Written between pages: later than everything (newest first it belongs to a new first page, not this walk)
      // and, for the oldest-first walk, at the very end where the walk will reach it.
      await login(`late-${order}`, T0 + 10 * MINUTE);
      while (page.next) {
        page = await queryAuditLog(db, { limit: 2, order, after: page.next });
        seen.push(...page.entries.map((e) => e.actor!));
      }
      expect(new Set(seen).size).toBe(seen.length);
      if (order === 'oldest') expect(seen).toEqual(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'late-oldest']);
      else expect(seen).toEqual(['late-oldest', 'u5', 'u4', 'u3', 'u2', 'u1', 'u0']);
    }
    // The cursor of one order, read in the other, continues from the same place the other way.
    const newest = await queryAuditLog(db, { limit: 3, order: 'newest' });
    const back = await queryAuditLog(db, { limit: 10, order: 'oldest', after: newest.next! });
    expect(back.entries.map((e) => e.actor)).toEqual(['late-oldest', 'late-newest']);
  });

  it("filters by namespace: the namespace's own name and the repositories beneath it, not those it merely starts", async () => {
    const pulls = ['team', 'team/app', 'team/sub/x', 'teammates/app', 'other/team'].map((repository) => ({ actor: { type: 'user' as const, name: 'alice' }, repository, count: 1 }));
    await db.transaction((tx) => appendAuditEvent(tx, ctx, { type: AUDIT_EVENT_TYPES.pulls, data: { windowStart: new Date(T0).toISOString(), windowEnd: new Date(T0).toISOString(), pulls } }));
    const inTeam = await queryAuditLog(db, { limit: 10, namespace: 'team' });
    expect(inTeam.entries.map((e) => e.repository).sort()).toEqual(['team', 'team/app', 'team/sub/x']);
    expect((await queryAuditLog(db, { limit: 10, namespace: 'team/sub' })).entries.map((e) => e.repository)).toEqual(['team/sub/x']);
  });

  it('prunes entries past the retention in bounded batches, and the outbox pruner does it with audit.retention', async () => {
    const now = Date.now();
    for (let i = 0; i < 7; i++) await login('old', now - 100 * 86_400_000 + i);
    await login('recent', now - 1000);
    expect(await pruneAuditLog(db, 90 * 86_400_000, 3)).toBe(7);
    expect((await queryAuditLog(db, { limit: 10 })).entries.map((e) => e.actor)).toEqual(['recent']);
    await login('old', now - 100 * 86_400_000);
    const pruner = createOutboxPruner({ db, retentionMs: 7 * 86_400_000, auditRetentionMs: 90 * 86_400_000 });
    expect(await pruner.pruneOnce()).toBe(1);
    expect((await queryAuditLog(db, { limit: 10 })).entries.map((e) => e.actor)).toEqual(['recent']);
  });
});

describe('the audit query parameters', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const status = (query: Record<string, unknown>): number | string => {
    try {
      parseAuditQuery(query, now);
      return 'ok';
    } catch (err) {
      return err instanceof OciError ? `${err.status} ${err.message}` : String(err);
    }
  };

  it('takes RFC 3339 times or durations back from now, a page size, filters and a cursor', () => {
    const cursor = encodeAuditCursor({ time: '2026-12-07T11:00:00.000Z', id: 42 });
    expect(parseAuditQuery({ since: '1h', until: '2026-12-07T11:30:00Z', actor: 'robot$ci', repository: 'team/app', type: 'io.lading.audit.pulls', n: '5', last: cursor }, now)).toEqual({
      since: new Date(now - 3_600_000),
      until: new Date('2026-12-07T11:30:00Z'),
      actor: 'robot$ci',
      repository: 'team/app',
      type: 'io.lading.audit.pulls',
      limit: 5,
      order: 'oldest',
      after: { time: '2026-12-07T11:00:00.000Z', id: 42 },
    });
    expect(parseAuditQuery({}, now).limit).toBe(100);
    expect(parseAuditQuery({}, now).order).toBe('oldest');
    expect(parseAuditQuery({ order: 'newest' }, now).order).toBe('newest');
  });

  it.each([
    [{ since: 'yesterday' }, 'since'],
    [{ since: '2026-12-07' }, 'since'],
    [{ n: '0' }, 'n'],
    [{ n: '1001' }, 'n'],
    [{ n: '1.5' }, 'n'],
    [{ n: ['1', '2'] }, 'n'],
    [{ type: 'login' }, 'type'],
    [{ last: 'not-a-cursor' }, 'last'],
    [{ since: '1h', until: '2h' }, 'until'],
    [{ actor: '' }, 'actor'],
    [{ colour: 'red' }, 'colour'],
    [{ order: 'desc' }, 'order'],
    [{ order: ['newest', 'oldest'] }, 'order'],
  ])('answers 400 naming the parameter for %j', (query, name) => {
    expect(status(query)).toMatch(new RegExp(`^400 ${name} `));
  });
});
