/**
 * The embedded database's maintenance loop: PGlite has no autovacuum, so a process on PGlite vacuums and analyzes
 * the tables that need it every `database.maintenanceInterval` (`createPgliteMaintenance`, one table at a time).
 * A process on PostgreSQL starts none: the server's autovacuum does this.
 */
import { type LadingConfig, durationMs } from '@lading/config';
import { type Database, type MaintenanceRun, createPgliteMaintenance } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';
import { type InterruptibleSleep, createPollingLoop } from './polling-loop';

/** A running maintenance loop. */
export interface RunningDatabaseMaintenance {
  /** Runs the maintenance now, outside the schedule (tests; the loop's own runs go on). */
  runNow(): Promise<MaintenanceRun>;
  /**
   * Stops the loop: a run in progress finishes the table it is vacuuming and starts no other, and this resolves once
   * it has (so that the database can be closed after).
   */
  stop(): Promise<void>;
}

/** What startDatabaseMaintenance needs besides the database. */
export interface DatabaseMaintenanceOptions {
  config: LadingConfig;
  logger: Logger;
  /** The sleep between runs, for tests to drive by hand (see createPollingLoop). */
  sleep?: InterruptibleSleep;
}

/**
 * Starts the maintenance loop of `db` when it is PGlite and `database.maintenanceInterval` is not `0s` (the first run
 * waits one interval); resolves with null otherwise. Each run is logged at debug with its tables and times.
 */
export function startDatabaseMaintenance(db: Database, options: DatabaseMaintenanceOptions): RunningDatabaseMaintenance | null {
  const intervalMs = durationMs(options.config.database.maintenanceInterval);
  if (db.driverName !== 'pglite' || intervalMs === 0) return null;
  const { logger } = options;
  const maintenance = createPgliteMaintenance(db);
  const stopping = new AbortController();
  const run = async () => {
    const result = await maintenance.run(stopping.signal);
    if (result.tables.length > 0 || result.skippedByStop > 0) {
      logger.debug({ tables: result.tables, skippedByStop: result.skippedByStop, ms: result.ms }, 'database maintenance: vacuumed and analyzed tables');
    }
    return result;
  };
  const loop = createPollingLoop({
    step: async () => {
      await run();
    },
    idleMs: intervalMs,
    delayFirstStep: true,
    backoff: { initialMs: Math.min(intervalMs, 1000), maxMs: intervalMs },
    onError: (err, retryInMs) => logger.warn({ err, retryInMs }, 'database maintenance failed; will retry'),
    sleep: options.sleep,
  });
  loop.start();
  logger.info({ intervalMs }, 'database maintenance started (PGlite has no autovacuum)');
  return {
    runNow: run,
    async stop() {
      stopping.abort();
      await loop.stop();
    },
  };
}
