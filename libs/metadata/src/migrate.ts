/**
 * Applies SQL migrations in one ordered sequence, once each, recording them in the database. Each lib keeps the
 * migrations of its tables beside its queries (a migration set: `libs/<owner>/migrations`); the process's wiring
 * passes the sets, and their files run together in the order of their file names, whose numeric prefix is global
 * across the sets (0001, 0002, ... whichever lib owns each). A file is recorded by its name alone, so moving a
 * migration to another set never runs it again on a database that has it.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from './database';
import { MIGRATION_LOCK_KEY, SchemaStatus, SchemaVersionError, compareSchema, recordedMigrations, refuseNewerSchema } from './schema-version';

/** The migrations of one owner (a lib): the `.sql` files in one directory. */
export interface MigrationSet {
  /** Who owns the tables (the lib's name), for messages. */
  owner: string;
  /** The directory of its `NNNN_name.sql` files. */
  dir: string;
}

/** One migration file of a set. */
export interface PlannedMigration {
  owner: string;
  /** The file name: what `schema_migrations` records. */
  name: string;
  /** Its global position (the file name's numeric prefix). */
  number: number;
  file: string;
}

/** Where libs/metadata's own migrations live (repositories, blobs, manifests, tags, uploads, auth, GC queues). */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', 'migrations');

/**
 * The migration set of the lib whose source directory is `srcDir`: its `migrations` folder beside `src`. Call it
 * with the owning lib's own `__dirname`, so that a bundle (which rewrites `__dirname`) finds the files too.
 */
export function migrationSetBeside(owner: string, srcDir: string): MigrationSet {
  return { owner, dir: path.resolve(srcDir, '..', 'migrations') };
}

/** libs/metadata's own migration set. */
export const METADATA_MIGRATIONS: MigrationSet = { owner: 'metadata', dir: MIGRATIONS_DIR };

/** A migration file name: a numeric prefix, an underscore, a name. */
const MIGRATION_NAME = /^(\d+)_[^/]+\.sql$/;

/**
 * The files of `sets` in the order they run. Refuses (throws, before anything runs) a `.sql` file without a numeric
 * prefix and a number used twice, within a set or across sets: two libs that took the same number would otherwise run
 * in an order nobody chose.
 */
export async function planMigrations(sets: readonly MigrationSet[]): Promise<PlannedMigration[]> {
  const planned: PlannedMigration[] = [];
  for (const set of sets) {
    for (const name of (await readdir(set.dir)).filter((f) => f.endsWith('.sql'))) {
      const match = MIGRATION_NAME.exec(name);
      if (!match) throw new Error(`migration ${set.owner}/${name} has no numeric prefix (NNNN_name.sql)`);
      planned.push({ owner: set.owner, name, number: Number(match[1]), file: path.join(set.dir, name) });
    }
  }
  planned.sort((a, b) => a.number - b.number || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < planned.length; i++) {
    const [a, b] = [planned[i - 1], planned[i]];
    if (a.number === b.number) {
      throw new Error(`migration number ${a.number} is taken twice: ${a.owner}/${a.name} and ${b.owner}/${b.name}; give one of them the next free number`);
    }
  }
  return planned;
}

/** What a migration run did: the schema version before and after, and the migrations it applied. */
export interface MigrationReport {
  /** The database's schema version when the run took the lock (0 for an empty database). */
  from: number;
  /** Its version after the run: the code's schema version. */
  to: number;
  /** The migrations applied, in order (none when the schema was up to date). */
  applied: string[];
}

/**
 * Brings the schema up to date with the migrations of `sets` (by default libs/metadata's own, which is what its specs
 * need; a process passes every lib's: `REGISTRY_MIGRATIONS` in libs/runtime), in one transaction, and reports what it
 * did. Refuses (`SchemaVersionError`, before changing anything) a database that recorded a migration `sets` do not
 * have: a newer release migrated it.
 *
 * Safe to call from any number of processes at once: the transaction first takes the migration advisory lock
 * (`MIGRATION_LOCK_KEY`), so one process applies each migration while the others wait for its commit, then find
 * nothing to do. The wait and each statement are bounded by the connection's statement timeout
 * (`database.statementTimeout`).
 */
export async function applyMigrations(db: Database, sets: readonly MigrationSet[] = [METADATA_MIGRATIONS]): Promise<MigrationReport> {
  const planned = await planMigrations(sets);
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    const status = compareSchema(planned, await recordedMigrations(tx));
    refuseNewerSchema(status);
    if (status.pending.length > 0) {
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    }
    const pending = new Set(status.pending);
    const applied: string[] = [];
    for (const migration of planned) {
      if (!pending.has(migration.name)) continue;
      const sql = await readFile(migration.file, 'utf8');
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query(`INSERT INTO schema_migrations (name) VALUES ($1)`, [migration.name]);
      applied.push(migration.name);
    }
    return { from: status.databaseVersion, to: status.codeVersion, applied };
  });
}

/** `applyMigrations`, resolving with the names of the migrations it applied. */
export async function migrate(db: Database, sets: readonly MigrationSet[] = [METADATA_MIGRATIONS]): Promise<string[]> {
  return (await applyMigrations(db, sets)).applied;
}

/**
 * Checks, without changing anything, that the database's schema is exactly the process's: resolves with its status
 * when it is, throws `SchemaVersionError` when it is newer or older. Waits for a migration in progress (it shares
 * the migration lock), so that a process started beside `lading-migrate` sees the schema it leaves.
 */
export async function verifySchema(db: Database, sets: readonly MigrationSet[]): Promise<SchemaStatus> {
  const planned = await planMigrations(sets);
  const status = await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock_shared(${MIGRATION_LOCK_KEY})`);
    return compareSchema(planned, await recordedMigrations(tx));
  });
  refuseNewerSchema(status);
  if (status.pending.length > 0) throw new SchemaVersionError('older', status);
  return status;
}

/**
 * Splits a migration script into statements at each `;` outside a dollar-quoted body (`$$ ... $$`, `$fn$ ... $fn$`:
 * a function's statements stay in it). Whole-line `--` comments are dropped first; single-quoted literals must not
 * hold a `;`.
 */
function splitStatements(sql: string): string[] {
  const text = sql
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n');
  const statements: string[] = [];
  let quote: string | null = null;
  let start = 0;
  for (const token of text.matchAll(/\$[A-Za-z_]*\$|;/g)) {
    if (token[0] !== ';') {
      if (quote === null) quote = token[0];
      else if (quote === token[0]) quote = null;
    } else if (quote === null) {
      statements.push(text.slice(start, token.index));
      start = token.index + 1;
    }
  }
  statements.push(text.slice(start));
  return statements.map((s) => s.trim()).filter(Boolean);
}
