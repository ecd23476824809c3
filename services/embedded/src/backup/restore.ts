/**
 * Restoring a backup archive into an embedded data directory, with no registry running on it.
 *
 * - The directories are locked first (libs/runtime/src/data-dir-lock.ts), exactly as a registry locks them: a
 *   restore refuses a directory a registry holds, and a registry cannot start on one being restored.
 * - Only an empty target is restored into (no database at `database.path`, no blobs under `storage.root`).
 * - Everything is written aside first, inside each target (`<dir>/.restoring`, so on the same filesystem, mount
 *   points included): the whole archive is read and checked (backup-archive.ts: format, schema, checksums, every
 *   blob's digest, the trailer) with the blobs written into a staging store as they pass, then a database is
 *   created, given exactly the schema of the archive (its migrations, no newer one), loaded with the rows and checked
 *   against the summary's counts, then migrated to this Lading's schema. Only then are the staged entries renamed
 *   into place. A refused or failed restore removes what it staged and leaves the target as it found it (a restore
 *   killed during those last renames leaves a partial directory: empty it and restore again).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LadingConfig } from '@lading/config';
import { Database, createPgliteDatabase, loadTables, migrate, planMigrations } from '@lading/metadata';
import { REGISTRY_MIGRATIONS, ladingVersion, lockEmbeddedData } from '@lading/runtime';
import { BlobStore, blobKey, createFilesystemBlobStore } from '@lading/storage';
import { BackupArchiveError, BackupSummary, readBackupArchive } from './backup-archive';

/** A restore that cannot be done here: a directory that is not empty, a configuration that is not embedded. */
export class RestoreRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefusedError';
  }
}

/** What a restore did. */
export interface RestoreResult {
  summary: BackupSummary;
  databasePath: string;
  storageRoot: string;
  /** Migrations applied after the load, to bring the archive's schema up to this Lading's. */
  upgradedWith: string[];
}

/** Options of `restoreBackup`. */
export interface RestoreOptions {
  /** Told each step as it starts (for a CLI's progress lines). */
  progress?: (step: string) => void;
}

/** The directories an embedded configuration opens (the same resolution as the registry's lock). */
function targetsOf(config: LadingConfig): { databasePath: string; storageRoot: string } {
  if (config.database.driver !== 'pglite' || config.storage.driver !== 'filesystem') {
    throw new RestoreRefusedError(
      'restore writes an embedded data directory (database.driver pglite, storage.driver filesystem); ' +
        'a registry on PostgreSQL and S3 is restored with pg_restore and the bucket (docs/operations/backup.md)',
    );
  }
  const dataDir = path.resolve(config.data.dir);
  return {
    databasePath: path.resolve(config.database.path ?? path.join(dataDir, 'metadata')),
    storageRoot: path.resolve(config.storage.root ?? path.join(dataDir, 'blobs')),
  };
}

/** The entries of a directory, and of its subdirectories' empty skeleton: [] when there is nothing but empty folders. */
async function filesUnder(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: string[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(full)));
    else found.push(full);
    if (found.length > 0) break;
  }
  return found;
}

/** The name of the staging directories inside the targets. */
const STAGING = '.restoring';

/** Renames every entry of `from` into `to` (the same filesystem), then removes `from`; an empty folder of `to` is replaced. */
async function moveEntries(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from)) await rename(path.join(from, entry), path.join(to, entry));
  await rm(from, { recursive: true, force: true });
}

async function refuseUnlessEmpty(dir: string, key: string): Promise<void> {
  const [first] = await filesUnder(dir);
  if (first) throw new RestoreRefusedError(`${key} ${dir} is not empty (it holds ${path.relative(dir, first)}): restore only into an empty data directory; move this one away first`);
}

/** A migration set of exactly the archive's migrations, copied from this Lading's own (all known, checked before). */
async function archiveMigrationSet(dir: string, names: string[]): Promise<{ owner: string; dir: string }> {
  const planned = new Map((await planMigrations(REGISTRY_MIGRATIONS)).map((m) => [m.name, m.file]));
  await mkdir(dir, { recursive: true });
  for (const name of names) await copyFile(planned.get(name)!, path.join(dir, name));
  return { owner: 'backup', dir };
}

async function* linesOf(file: string): AsyncGenerator<string> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  for await (const line of lines) yield line;
}

/** Compares what was loaded with what the summary says was dumped. */
function checkCounts(summary: BackupSummary, loaded: { tables: Record<string, number>; sequences: Record<string, number> }): void {
  for (const [table, rows] of Object.entries(summary.tables)) {
    if (loaded.tables[table] !== rows) throw new BackupArchiveError(`table ${table}: the archive says ${rows} rows, ${loaded.tables[table] ?? 0} were loaded; it is corrupted`);
  }
  for (const table of Object.keys(loaded.tables)) {
    if (!(table in summary.tables)) throw new BackupArchiveError(`the metadata has table ${table}, which the summary does not list; the archive is corrupted`);
  }
  for (const [sequence, value] of Object.entries(summary.sequences)) {
    if (loaded.sequences[sequence] !== value) throw new BackupArchiveError(`sequence ${sequence}: the archive says ${value}, the metadata ${loaded.sequences[sequence]}; it is corrupted`);
  }
}

/** Checks that the restored blob rows are exactly the archive's blobs (each of which was written, digest checked). */
async function checkBlobRows(db: Database, written: Set<string>): Promise<void> {
  const rows = (await db.query<{ digest: string }>(`SELECT digest FROM blobs`)).rows;
  const missing = rows.filter((r) => !written.has(r.digest)).map((r) => r.digest);
  if (missing.length > 0 || rows.length !== written.size) {
    throw new BackupArchiveError(`the metadata records ${rows.length} blobs, the archive holds ${written.size}${missing.length ? ` (missing ${missing.slice(0, 3).join(', ')})` : ''}; it is corrupted`);
  }
}

/**
 * Restores the archive read from `archive` into the embedded data directory of `config` (see the top of this file).
 * Throws `DataDirLockedError` when a registry holds it, `RestoreRefusedError` when it is not empty or not embedded,
 * `BackupArchiveError` when the archive is not one this Lading can restore whole.
 */
export async function restoreBackup(config: LadingConfig, archive: AsyncIterable<Buffer>, options: RestoreOptions = {}): Promise<RestoreResult> {
  const progress = options.progress ?? (() => undefined);
  const { databasePath, storageRoot } = targetsOf(config);
  const lock = await lockEmbeddedData(config);
  const staged = {
    database: path.join(databasePath, STAGING),
    storage: path.join(storageRoot, STAGING),
    work: path.join(databasePath, `${STAGING}-work`),
  };
  const cleanUp = () => Promise.all(Object.values(staged).map((dir) => rm(dir, { recursive: true, force: true })));
  try {
    // Left by a restore that was killed: nothing else writes these (the lock is held).
    await cleanUp();
    await refuseUnlessEmpty(databasePath, 'database.path');
    await refuseUnlessEmpty(storageRoot, 'storage.root');
    await mkdir(staged.work, { recursive: true });
    const store: BlobStore = await createFilesystemBlobStore(staged.storage);
    const metadataFile = path.join(staged.work, 'metadata.jsonl');
    const written = new Set<string>();
    const known = new Set((await planMigrations(REGISTRY_MIGRATIONS)).map((m) => m.name));

    progress('reading and checking the archive');
    const summary = await readBackupArchive(archive, {
      async summary(s) {
        const unknown = s.schema.migrations.filter((m) => !known.has(m));
        if (unknown.length > 0) {
          throw new BackupArchiveError(
            `the archive's schema is newer than this Lading (${ladingVersion().version}): it has migrations this version does not know ` +
              `(${unknown.join(', ')}); restore it with ${s.lading?.name ?? 'lading'} ${s.lading?.version ?? '?'} or later`,
          );
        }
        progress(`archive of ${s.createdAt} by ${s.lading.name} ${s.lading.version}: schema ${s.schema.version}, ${s.blobs.count} blobs (${s.blobs.bytes} bytes)`);
      },
      async metadata(body) {
        await pipeline(Readable.from(body), createWriteStream(metadataFile));
      },
      async blob(blob, body) {
        const upload = `restore-${randomUUID()}`;
        await store.writeUpload(upload, 0, Readable.from(body));
        await store.commitUpload(upload, blobKey(blob.digest), blob.size);
        written.add(blob.digest);
      },
    });

    progress('loading the metadata');
    const db = await createPgliteDatabase(staged.database);
    let upgradedWith: string[];
    try {
      await migrate(db, [await archiveMigrationSet(path.join(staged.work, 'migrations'), summary.schema.migrations)]);
      checkCounts(summary, await loadTables(db, linesOf(metadataFile)));
      await checkBlobRows(db, written);
      upgradedWith = await migrate(db, REGISTRY_MIGRATIONS);
    } finally {
      await db.close();
    }

    progress('moving the restored data into place');
    await moveEntries(staged.storage, storageRoot);
    await moveEntries(staged.database, databasePath);
    await rm(staged.work, { recursive: true, force: true });
    return { summary, databasePath, storageRoot, upgradedWith };
  } catch (err) {
    await cleanUp().catch(() => undefined);
    throw err;
  } finally {
    await lock.release();
  }
}
