/**
 * The schema version, and the checks that keep a process off a schema it was not written for.
 *
 * The code's schema version is the highest number among the migrations it knows (see `planMigrations`); a database's
 * is the highest number its `schema_migrations` records. A process never runs on a database that recorded a
 * migration the process does not know: that database was migrated by a newer release, whose tables and rows this
 * code would misread or damage (an older release cannot undo a migration, upgrades are forward only). Where
 * migrations run in a separate step (`lading-migrate`, `database.migrations: verify`) a process also refuses a schema
 * older than its own, instead of running on tables that lack what it needs.
 */
import type { SqlExecutor } from './database';
import type { PlannedMigration } from './migrate';

/**
 * The advisory lock that serialises migrations on one database: `applyMigrations` holds it exclusively for its whole
 * transaction, `verifySchema` shares it for its read, so that a check waits for a migration in progress.
 */
export const MIGRATION_LOCK_KEY = 7340001;

/** A database's schema compared with the migrations a process knows. */
export interface SchemaStatus {
  /** The process's schema version: the highest migration number it knows (0 when it knows none). */
  codeVersion: number;
  /** The database's: the highest number among the migrations it recorded (0 for an empty database). */
  databaseVersion: number;
  /** Known migrations the database has not applied, in the order they run. */
  pending: string[];
  /** Migrations the database recorded that the process does not know (a newer release's), by name. */
  unknown: string[];
}

/** The schema version of a list of migrations: the highest number among them, 0 for none. */
export function schemaVersionOf(planned: readonly Pick<PlannedMigration, 'number'>[]): number {
  return planned.reduce((highest, m) => Math.max(highest, m.number), 0);
}

/** The number a migration's file name starts with (0 for a name without one, which `planMigrations` never makes). */
function numberOf(name: string): number {
  const match = /^(\d+)_/.exec(name);
  return match ? Number(match[1]) : 0;
}

/** Compares the names a database recorded with the migrations a process knows. */
export function compareSchema(planned: readonly PlannedMigration[], recorded: Iterable<string>): SchemaStatus {
  const done = new Set(recorded);
  const known = new Set(planned.map((m) => m.name));
  return {
    codeVersion: schemaVersionOf(planned),
    databaseVersion: [...done].reduce((highest, name) => Math.max(highest, numberOf(name)), 0),
    pending: planned.filter((m) => !done.has(m.name)).map((m) => m.name),
    unknown: [...done].filter((name) => !known.has(name)).sort((a, b) => numberOf(a) - numberOf(b) || (a < b ? -1 : 1)),
  };
}

/** The migration names a database recorded; none when it has no `schema_migrations` table yet. */
export async function recordedMigrations(db: SqlExecutor): Promise<string[]> {
  const table = await db.query<{ present: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`);
  if (!table.rows[0]?.present) return [];
  return (await db.query<{ name: string }>(`SELECT name FROM schema_migrations`)).rows.map((r) => r.name);
}

/** Why a process will not run on a database: its schema is `newer` than the process knows, or `older` (verify mode). */
export type SchemaMismatch = 'newer' | 'older';

/**
 * A database whose schema the process must not run on. Its message is one line that names both versions and what
 * to do: the process reports it as a refusal, without a stack.
 */
export class SchemaVersionError extends Error {
  constructor(
    readonly mismatch: SchemaMismatch,
    readonly status: SchemaStatus,
  ) {
    super(mismatch === 'newer' ? newerMessage(status) : olderMessage(status));
    this.name = 'SchemaVersionError';
  }
}

function newerMessage(s: SchemaStatus): string {
  const unknown = s.unknown.join(', ');
  // Unknown names below the code's version mean another line of releases (or a hand-made row), not a newer one.
  const found =
    s.databaseVersion > s.codeVersion
      ? `the database's schema is version ${s.databaseVersion}, newer than this Lading's schema version ${s.codeVersion}: it has migrations this release does not know (${unknown}), applied by a newer release`
      : `the database's schema (version ${s.databaseVersion}) has migrations this Lading (schema version ${s.codeVersion}) does not know (${unknown}), applied by another release`;
  return `${found}. Lading does not run on a schema it does not know and cannot downgrade one: run that release or a later one (or restore the backup taken before the upgrade)`;
}

function olderMessage(s: SchemaStatus): string {
  const pending = `${s.pending.length} migration${s.pending.length === 1 ? '' : 's'} pending: ${s.pending.join(', ')}`;
  return (
    `the database's schema is version ${s.databaseVersion}, older than this Lading's schema version ${s.codeVersion} ` +
    `(${pending}); database.migrations is verify, so this process does not migrate: ` +
    'run lading-migrate (node dist/migrate/main.cjs) with the same database settings first'
  );
}

/** Throws `SchemaVersionError('newer')` when the database recorded a migration the process does not know. */
export function refuseNewerSchema(status: SchemaStatus): void {
  if (status.unknown.length > 0) throw new SchemaVersionError('newer', status);
}
