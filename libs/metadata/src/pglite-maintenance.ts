/**
 * Maintenance of the embedded (PGlite) database, which has no autovacuum and no auto-analyze: single-user Postgres
 * runs no background workers, so dead row versions (search documents rewritten on every push, moved tags, deleted
 * outbox rows, expired sessions) are never reclaimed and the planner's statistics are never gathered unless someone
 * runs VACUUM and ANALYZE.
 *
 * A run asks Postgres which tables need it, from the cumulative statistics it keeps (`pg_stat_user_tables`, kept in
 * PGlite too: a backend flushes its pending counters at most once a second, and a run forces the flush first), with
 * autovacuum's own default thresholds, and runs `VACUUM (ANALYZE)` on those tables one at a time. Each statement holds
 * the adapter's one connection for its duration, so requests run between tables rather than waiting for a whole
 * database-wide VACUUM; a stop asked for mid-run lets the running table finish and starts no other.
 */
import type { Database } from './database';

/** When a table is due (autovacuum's defaults): more than `base + scale × live rows` dead, or changed since analyze. */
export interface MaintenanceThresholds {
  /** Dead rows always tolerated (autovacuum_vacuum_threshold); default 50. */
  vacuumBase?: number;
  /** Share of the live rows that may be dead (autovacuum_vacuum_scale_factor); default 0.2. */
  vacuumScale?: number;
  /** Rows changed since the last analyze always tolerated (autovacuum_analyze_threshold); default 50. */
  analyzeBase?: number;
  /** Share of the live rows that may change before an analyze (autovacuum_analyze_scale_factor); default 0.1. */
  analyzeScale?: number;
}

/** One table a run vacuumed and analyzed, with the counters that made it due. */
export interface MaintainedTable {
  /** `schema.table`. */
  table: string;
  deadRows: number;
  modifiedSinceAnalyze: number;
  /** Milliseconds its `VACUUM (ANALYZE)` took. */
  ms: number;
}

/** What one maintenance run did. */
export interface MaintenanceRun {
  /** The tables vacuumed and analyzed, in order. */
  tables: MaintainedTable[];
  /** Tables that were due but left for the next run because a stop was asked for. */
  skippedByStop: number;
  /** Milliseconds the whole run took. */
  ms: number;
}

/** Vacuums and analyzes the embedded database's tables that need it (see the module comment). */
export interface PgliteMaintenance {
  /**
   * Runs once: finds the tables due and runs `VACUUM (ANALYZE)` on each, one statement at a time. Once `signal`
   * aborts, the table being vacuumed finishes and no other starts.
   */
  run(signal?: AbortSignal): Promise<MaintenanceRun>;
}

/** Makes the statistics this backend has counted but not yet flushed visible to the next statement. */
const FLUSH_STATS_SQL = `SELECT pg_stat_force_next_flush()`;

/** The tables due, most work first, each with its VACUUM statement (identifiers quoted by Postgres). */
const DUE_TABLES_SQL = `
  SELECT schemaname || '.' || relname AS "table",
         format('VACUUM (ANALYZE) %I.%I', schemaname, relname) AS statement,
         n_dead_tup AS "deadRows", n_mod_since_analyze AS "modifiedSinceAnalyze"
    FROM pg_stat_user_tables
   WHERE n_dead_tup > $1::float8 + $2::float8 * n_live_tup
      OR n_mod_since_analyze > $3::float8 + $4::float8 * n_live_tup
   ORDER BY n_dead_tup + n_mod_since_analyze DESC, relname`;

/** Creates the maintenance of a PGlite database (see PgliteMaintenance); it runs only when asked to. */
export function createPgliteMaintenance(db: Database, thresholds: MaintenanceThresholds = {}): PgliteMaintenance {
  const limits = [thresholds.vacuumBase ?? 50, thresholds.vacuumScale ?? 0.2, thresholds.analyzeBase ?? 50, thresholds.analyzeScale ?? 0.1];
  return {
    async run(signal) {
      const started = performance.now();
      const tables: MaintainedTable[] = [];
      if (signal?.aborted) return { tables, skippedByStop: 0, ms: 0 };
      await db.query(FLUSH_STATS_SQL);
      const due = await db.query<{ table: string; statement: string; deadRows: number; modifiedSinceAnalyze: number }>(DUE_TABLES_SQL, limits);
      let done = 0;
      for (const { statement, ...counters } of due.rows) {
        if (signal?.aborted) break;
        const tableStarted = performance.now();
        await db.query(statement);
        tables.push({ ...counters, ms: Math.round(performance.now() - tableStarted) });
        done++;
      }
      return { tables, skippedByStop: due.rows.length - done, ms: Math.round(performance.now() - started) };
    },
  };
}
