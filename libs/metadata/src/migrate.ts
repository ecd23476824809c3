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

/**
 * Brings the schema up to date with the migrations of `sets` (by default libs/metadata's own, which is what its specs
 * need; a process passes every lib's: `REGISTRY_MIGRATIONS` in libs/runtime) and resolves with the names it applied.
 * Safe to call from several processes at once (an advisory lock serialises them).
 */
export async function migrate(db: Database, sets: readonly MigrationSet[] = [METADATA_MIGRATIONS]): Promise<string[]> {
  const planned = await planMigrations(sets);
  const applied: string[] = [];
  await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(7340001)`);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ name: string }>(`SELECT name FROM schema_migrations`)).rows.map((r) => r.name));
    for (const migration of planned) {
      if (done.has(migration.name)) continue;
      const sql = await readFile(migration.file, 'utf8');
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query(`INSERT INTO schema_migrations (name) VALUES ($1)`, [migration.name]);
      applied.push(migration.name);
    }
  });
  return applied;
}

/** Splits a migration script into statements (our migrations use no dollar-quoted bodies). */
function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
}
