/**
 * Quota reconciliation: every namespace with a quota has its usage counted afresh from the references and written
 * back into its counter rows (one short transaction per namespace), which corrects what the counts drift by: deletes
 * (pushes add, nothing subtracts), concurrent first references of one blob (each counted it) and anything else. The
 * figures it finds feed the usage gauges.
 */
import * as meta from '@lading/metadata';
import type { Database } from '@lading/metadata';
import type { Logger, NamespaceQuotaFigure } from '@lading/telemetry';

/** The last figures reconciliation found, by namespace. */
export interface QuotaReconciliation {
  /** Reconciles every namespace with a quota; resolves with how many counts were corrected. */
  run(): Promise<number>;
  /** The figures of the last run (for the gauges). */
  figures(): readonly NamespaceQuotaFigure[];
}

/** Creates quota reconciliation over the database. */
export function createQuotaReconciliation(deps: { db: Database; logger: Logger }): QuotaReconciliation {
  let last: NamespaceQuotaFigure[] = [];
  return {
    async run() {
      const found: NamespaceQuotaFigure[] = [];
      let corrected = 0;
      for (const quota of await meta.namespacesWithQuota(deps.db)) {
        const { before, bytes } = await deps.db.transaction((tx) => meta.reconcileNamespaceUsage(tx, quota.prefix));
        if (before !== bytes) {
          corrected++;
          deps.logger.info({ namespace: quota.prefix, counted: before, usedBytes: bytes }, 'quota usage reconciled with the references');
        }
        found.push({ namespace: quota.prefix, quotaBytes: quota.quotaBytes, usedBytes: bytes });
      }
      await meta.dropUnusedUsageCounters(deps.db);
      last = found;
      return corrected;
    },
    figures: () => last,
  };
}
