/**
 * The quota coverage cache (issue 23): a push or blob commit into a repository no quota covers runs no quota query;
 * a quota another process sets is seen on the next poll (the documented bound) and at once on `refresh` (the
 * process that set it); a changed or removed quota is read in the write's transaction, so the cache never makes a
 * check wrong, only skips one.
 */
import * as meta from '@lading/metadata';
import type { Database, SqlExecutor } from '@lading/metadata';
import { createLogger } from '@lading/telemetry';
import { type TestDeps, createTestDeps, manualSleep } from '@lading/testing';
import { openQuotaCoverage } from './quota-coverage-source';

const silent = createLogger({ service: 'test', level: 'silent' });

/** The database, with the statements that read quotas counted. */
function countingQuotaReads(db: Database): { executor: SqlExecutor; reads: () => number } {
  let reads = 0;
  return {
    executor: {
      query: (text: string, params?: unknown[]) => {
        if (text.includes('quota_bytes')) reads++;
        return db.query(text, params);
      },
    } as SqlExecutor,
    reads: () => reads,
  };
}

describe('quota coverage', () => {
  let deps: TestDeps;

  beforeAll(async () => {
    deps = await createTestDeps();
    for (const prefix of ['team', 'team/ml', 'other']) await meta.upsertNamespace(deps.db, prefix, false);
  });
  afterAll(async () => deps?.close());

  it('covers a repository by its namespace or an enclosing one, never by a name that only starts alike', () => {
    const coverage = meta.quotaCoverageOf(['team/ml', 'solo']);
    expect(coverage.mayCover('team/ml')).toBe(true);
    expect(coverage.mayCover('team/ml/app')).toBe(true);
    expect(coverage.mayCover('team/ml/deep/app')).toBe(true);
    expect(coverage.mayCover('solo')).toBe(true);
    expect(coverage.mayCover('solo/app')).toBe(true);
    expect(coverage.mayCover('team/mlx/app')).toBe(false);
    expect(coverage.mayCover('team/app')).toBe(false);
    expect(coverage.mayCover('team')).toBe(false);
    expect(coverage.mayCover('solox')).toBe(false);
    expect(meta.quotaCoverageOf([]).mayCover('team/ml/app')).toBe(false);
  });

  it('skips the quota query for a repository no quota covers, and checks a covered one in the transaction', async () => {
    const { executor, reads } = countingQuotaReads(deps.db);
    await meta.setNamespaceQuota(deps.db, 'other', 1);
    const coverage = meta.quotaCoverageOf(await meta.namespacePrefixesWithQuota(deps.db));
    await meta.chargeNamespaceQuotas(executor, 'team/app', [], 0, coverage);
    await meta.assertBlobFitsQuotas(executor, 'team/app', `sha256:${'a'.repeat(64)}`, 10, coverage);
    expect(reads()).toBe(0);
    // Covered: the quota is read (and enforced) in the write's own statements.
    await expect(meta.assertBlobFitsQuotas(executor, 'other/app', `sha256:${'b'.repeat(64)}`, 10, coverage)).rejects.toMatchObject({ code: 'DENIED' });
    expect(reads()).toBeGreaterThan(0);
    await meta.setNamespaceQuota(deps.db, 'other', null);
  });

  it("sees another process's new quota on its next poll and at once on refresh; a removed one only costs a query until then", async () => {
    const polls = manualSleep();
    const coverage = await openQuotaCoverage({ db: deps.db, logger: silent, sleep: polls.sleep });
    try {
      expect(coverage.mayCover('team/ml/app')).toBe(false);

      // Set by another process: unseen until the next poll (the bound), then in force.
      await meta.setNamespaceQuota(deps.db, 'team/ml', 1000);
      expect(coverage.mayCover('team/ml/app')).toBe(false);
      await polls.step();
      expect(coverage.mayCover('team/ml/app')).toBe(true);

      // Set by this process: its admin API refreshes before answering, so the next write sees it.
      await meta.setNamespaceQuota(deps.db, 'team', 5000);
      await coverage.refresh();
      expect(coverage.mayCover('team/app')).toBe(true);

      // Removed: still "maybe" until the refresh, when the write reads no quota in its transaction and passes.
      await meta.setNamespaceQuota(deps.db, 'team/ml', null);
      await meta.setNamespaceQuota(deps.db, 'team', null);
      expect(coverage.mayCover('team/ml/app')).toBe(true);
      await meta.assertBlobFitsQuotas(deps.db, 'team/ml/app', `sha256:${'c'.repeat(64)}`, 1_000_000, coverage);
      await coverage.refresh();
      expect(coverage.mayCover('team/ml/app')).toBe(false);
    } finally {
      await coverage.close();
    }
  });
});
