/**
 * The pull audit: pulls are counted in memory and reach the database only when a window is written, as one
 * transaction (the pulls event and its audit log rows), however many pulls it counts.
 */
import { AUDIT_EVENT_TYPES, type AuditDataOf } from '@lading/events';
import type { Database } from '@lading/metadata';
import { TestDeps, createTestDeps } from '@lading/testing';
import { createPullAudit, pullBatchWriter } from './pull-audit';

type PullsData = AuditDataOf<typeof AUDIT_EVENT_TYPES.pulls>;

describe('pull audit', () => {
  let deps: TestDeps;
  /** Every statement and transaction the audit sends to the database. */
  const calls: string[] = [];
  /** The database, counting what the audit sends it. */
  let counted: Database;

  beforeAll(async () => {
    deps = await createTestDeps();
    counted = {
      ...deps.db,
      query: (sql, params) => (calls.push(sql), deps.db.query(sql, params)),
      transaction: (work) => (calls.push('BEGIN'), deps.db.transaction(work)),
    };
  });
  afterAll(async () => deps.close());
  beforeEach(() => (calls.length = 0));

  it('writes nothing to the database for a pull: 1000 pulls cost no statement until the window is written', async () => {
    const audit = createPullAudit({ db: counted, events: deps.events, logger: deps.logger, windowMs: 3_600_000 });
    for (let i = 0; i < 1000; i++) audit.note('alice', 'team/app');
    expect(calls).toEqual([]);
    expect(audit.pending).toBe(1);
    expect(await audit.flush()).toBe(1);
    expect(calls).toEqual(['BEGIN']);
  });

  it('counts N pulls per principal and repository as one row each, in one batch with its window', async () => {
    const written: PullsData[] = [];
    let clock = Date.parse('2026-12-07T10:00:00Z');
    const write = pullBatchWriter(deps.db, deps.events);
    const audit = createPullAudit({ db: counted, events: deps.events, logger: deps.logger, windowMs: 3_600_000, now: () => clock, write: async (data) => (written.push(data), write(data)) });
    for (let i = 0; i < 5; i++) audit.note('alice', 'team/app');
    clock += 2000;
    for (let i = 0; i < 3; i++) audit.note('robot$ci', 'team/app');
    audit.note('', 'public/base');
    audit.note('alice', 'public/base');
    clock += 1000;
    expect(written).toEqual([]);
    expect(await audit.flush()).toBe(4);
    expect(written).toEqual([
      {
        windowStart: '2026-12-07T10:00:00.000Z',
        windowEnd: '2026-12-07T10:00:03.000Z',
        pulls: [
          { actor: { type: 'user', name: 'alice' }, repository: 'team/app', count: 5 },
          { actor: { type: 'user', name: 'alice' }, repository: 'public/base', count: 1 },
          { actor: { type: 'robot', name: 'ci' }, repository: 'team/app', count: 3 },
          { actor: { type: 'anonymous', name: null }, repository: 'public/base', count: 1 },
        ],
      },
    ]);
    const rows = await deps.db.query<{ actor: string | null; repository: string; count: number }>(
      `SELECT actor, repository, (record->>'count')::int AS count FROM audit_log WHERE type = $1 AND record->>'windowStart' = $2 ORDER BY id`,
      [AUDIT_EVENT_TYPES.pulls, '2026-12-07T10:00:00.000Z'],
    );
    expect(rows.rows).toEqual([
      { actor: 'alice', repository: 'team/app', count: 5 },
      { actor: 'alice', repository: 'public/base', count: 1 },
      { actor: 'robot$ci', repository: 'team/app', count: 3 },
      { actor: null, repository: 'public/base', count: 1 },
    ]);
    expect(await audit.flush()).toBe(0);
    expect(written).toHaveLength(1);
  });

  it('keeps the counts of a window that failed to be written and adds them to the next', async () => {
    const written: PullsData[] = [];
    let fail = true;
    const audit = createPullAudit({
      db: counted,
      events: deps.events,
      logger: deps.logger,
      windowMs: 3_600_000,
      write: async (data) => {
        if (fail) throw new Error('database down');
        written.push(data);
      },
    });
    audit.note('alice', 'team/app');
    audit.note('alice', 'team/app');
    await expect(audit.flush()).rejects.toThrow('database down');
    fail = false;
    audit.note('alice', 'team/app');
    await audit.flush();
    expect(written.map((w) => w.pulls)).toEqual([[{ actor: { type: 'user', name: 'alice' }, repository: 'team/app', count: 3 }]]);
  });

  it('bounds the pairs counted in a window: pulls of a new pair past the bound are dropped, known pairs still count', async () => {
    const written: PullsData[] = [];
    const audit = createPullAudit({ db: counted, events: deps.events, logger: deps.logger, windowMs: 3_600_000, maxPairs: 2, write: async (data) => void written.push(data) });
    audit.note('a', 'r/one');
    audit.note('b', 'r/one');
    audit.note('c', 'r/one');
    audit.note('a', 'r/one');
    expect(audit.pending).toBe(2);
    await audit.flush();
    expect(written[0].pulls.map((p) => [p.actor.name, p.count])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('writes what is left when stopped', async () => {
    const written: PullsData[] = [];
    const audit = createPullAudit({ db: counted, events: deps.events, logger: deps.logger, windowMs: 3_600_000, write: async (data) => void written.push(data) });
    audit.start();
    audit.note('alice', 'team/app');
    await audit.stop();
    expect(written).toHaveLength(1);
  });
});
