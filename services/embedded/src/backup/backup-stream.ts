/**
 * Taking a backup of a running embedded registry: one consistent instant of its metadata and every blob that instant
 * names, as a backup archive (backup-archive.ts), while pushes and pulls go on.
 *
 * How it stays consistent:
 * 1. The collector's object deletions are held first (services/gc/src/deletion-hold.ts), for as long as the backup
 *    lasts: no object the snapshot can name is deleted until it has been copied.
 * 2. The metadata is dumped in one REPEATABLE READ transaction (libs/metadata/src/table-dump.ts), with the blob list
 *    and the schema read in the same transaction. On PGlite, which runs one transaction at a time, requests wait
 *    while it runs (the rows, kilobytes per image, go to a local file: about a second for ten thousand images); the
 *    blobs are copied after, with nothing held but the deletion hold.
 * 3. Blobs are content-addressed and never rewritten: the object of a blob row in the snapshot is the blob's bytes
 *    until it is deleted, which step 1 rules out. Every row's object exists (an upload commits the object before it
 *    records the row), and each one's size and digest are checked again as it is copied.
 * Upload sessions in progress are left out (their partial data is not copied; a client restarts such an upload),
 * with the pins and tombstones that only describe objects outside the snapshot.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { Database, dumpTables, inSnapshot } from '@lading/metadata';
import { OciError } from '@lading/oci';
import { BlobStore, blobKey } from '@lading/storage';
import type { Logger } from '@lading/telemetry';
import { BACKUP_ENTRIES, BACKUP_FORMAT, BACKUP_FORMAT_VERSION, BackupBlob, BackupSummary, BackupTrailer } from './backup-archive';
import { TAR_END, tarEntryBytes, tarHeader, tarPadding } from './tar';

/**
 * Tables whose rows a backup leaves out: upload sessions in progress (their data is not copied), the pins of uploads
 * in flight, the tombstones of objects already deleted from the metadata (not copied, so nothing to delete), and the
 * leases of pull-through fetches in flight (no fetch survives a restore).
 */
export const BACKUP_EXCLUDED_TABLES: readonly string[] = ['uploads', 'gc_blob_pins', 'gc_tombstones', 'proxy_fetch_leases'];

/** Objects checked at a time before the archive starts. */
const STAT_CONCURRENCY = 8;

/** What a backup is taken from. */
export interface BackupSource {
  db: Database;
  store: BlobStore;
  /** Holds the collector's object deletions until the returned release is called (`GcWorker.holdObjectDeletions`). */
  holdObjectDeletions(): () => void;
  /** The running Lading's name and version, for the summary. */
  version: { name: string; version: string; commit?: string };
  logger: Logger;
  /** Where the metadata is dumped before it is sent (a directory of its own is made in it). */
  tmpDir: string;
  now?: () => Date;
  /** Test hooks; none is set in production. */
  hooks?: {
    /** The snapshot is taken (and the deletion hold with it); no blob is checked or copied yet. */
    afterSnapshot?(summary: BackupSummary): Promise<void>;
  };
}

/** A backup whose snapshot is taken, ready to be streamed. */
export interface PreparedBackup {
  summary: BackupSummary;
  /** The size of the whole archive in bytes. */
  bytes: number;
  /** The archive's bytes. Throws (ending the stream early) when an object does not match its blob row. */
  stream(): AsyncGenerator<Buffer>;
  /** Lets go of the deletion hold and removes the temporary files (idempotent); call it when streaming ends. */
  close(): Promise<void>;
}

/** Yields one whole small entry. */
function* smallEntry(name: string, bytes: Buffer, mtime: Date): Generator<Buffer> {
  yield tarHeader(name, bytes.length, mtime);
  yield bytes;
  yield tarPadding(bytes.length);
}

/** Checks that every blob's object exists with its size; throws naming the first few that do not. */
async function checkObjects(store: BlobStore, blobs: BackupBlob[]): Promise<void> {
  const wrong: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: STAT_CONCURRENCY }, async () => {
      while (next < blobs.length) {
        const blob = blobs[next++];
        const found = await store.stat(blobKey(blob.digest));
        if (!found) wrong.push(`${blob.digest} (no object)`);
        else if (found.size !== blob.size) wrong.push(`${blob.digest} (object of ${found.size} bytes, not ${blob.size})`);
      }
    }),
  );
  if (wrong.length > 0) {
    throw new OciError(
      'UNKNOWN',
      `the backup cannot be taken: ${wrong.length} blob(s) recorded in the database have no matching object in storage: ${wrong.slice(0, 5).join(', ')}${wrong.length > 5 ? ', ...' : ''}`,
      undefined,
      { status: 500 },
    );
  }
}

/**
 * Takes the snapshot of a backup (holding the collector's object deletions from before it until `close`), checks
 * that every blob it names has its object, and returns the archive to stream.
 */
export async function prepareBackup(source: BackupSource): Promise<PreparedBackup> {
  const { db, store } = source;
  if (db.driverName !== 'pglite') {
    throw new OciError(
      'UNSUPPORTED',
      `online backups are taken of an embedded registry on PGlite; this one runs on ${db.driverName}: back it up with pg_dump and bucket versioning (docs/operations/backup.md)`,
      undefined,
      { status: 400 },
    );
  }
  const release = source.holdObjectDeletions();
  let dir: string | null = null;
  const close = async () => {
    release();
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = null;
  };
  try {
    dir = await mkdtemp(path.join(source.tmpDir, 'lading-backup-'));
    const metadataFile = path.join(dir, 'metadata.jsonl');
    const createdAt = (source.now ?? (() => new Date()))();
    const sink = createWriteStream(metadataFile);
    // A write that fails (a full disk) fails the backup, through `write` or `finished`, never the process.
    let failure: Error | null = null;
    sink.on('error', (err) => (failure ??= err));
    const hash = createHash('sha256');
    let metadataBytes = 0;
    const write = async (line: string) => {
      const bytes = Buffer.from(`${line}\n`, 'utf8');
      hash.update(bytes);
      metadataBytes += bytes.length;
      if (sink.write(bytes)) return;
      if (sink.destroyed) throw failure ?? new Error('backup: the metadata file was closed while being written');
      await once(sink, 'drain');
    };
    const snapshot = await inSnapshot(db, async (tx) => {
      const migrations = (await tx.query<{ name: string }>(`SELECT name FROM schema_migrations ORDER BY name COLLATE "C"`)).rows.map((r) => r.name);
      const blobs = (await tx.query<{ digest: string; size: number }>(`SELECT digest, size FROM blobs ORDER BY digest COLLATE "C"`)).rows.map((r) => ({
        digest: r.digest,
        size: Number(r.size),
      }));
      const counts = await dumpTables(tx, write, { exclude: BACKUP_EXCLUDED_TABLES });
      return { migrations, blobs, counts };
    }).catch((err: unknown) => {
      sink.destroy();
      throw err;
    });
    sink.end();
    await finished(sink);

    const blobList = Buffer.from(snapshot.blobs.map((b) => `${JSON.stringify(b)}\n`).join(''), 'utf8');
    const blobBytes = snapshot.blobs.reduce((sum, b) => sum + b.size, 0);
    const summary: BackupSummary = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      lading: source.version,
      createdAt: createdAt.toISOString(),
      schema: { version: snapshot.migrations[snapshot.migrations.length - 1] ?? '', migrations: snapshot.migrations },
      tables: snapshot.counts.tables,
      excludedTables: [...BACKUP_EXCLUDED_TABLES],
      sequences: snapshot.counts.sequences,
      metadata: { bytes: metadataBytes, sha256: hash.digest('hex') },
      blobList: { bytes: blobList.length, sha256: createHash('sha256').update(blobList).digest('hex') },
      blobs: { count: snapshot.blobs.length, bytes: blobBytes },
    };
    await source.hooks?.afterSnapshot?.(summary);
    await checkObjects(store, snapshot.blobs);

    const summaryBytes = Buffer.from(`${JSON.stringify(summary, null, 2)}\n`, 'utf8');
    const trailer: BackupTrailer = { complete: true, blobs: summary.blobs.count, bytes: summary.blobs.bytes };
    const trailerBytes = Buffer.from(`${JSON.stringify(trailer)}\n`, 'utf8');
    const bytes =
      tarEntryBytes(summaryBytes.length) +
      tarEntryBytes(metadataBytes) +
      tarEntryBytes(blobList.length) +
      snapshot.blobs.reduce((sum, b) => sum + tarEntryBytes(b.size), 0) +
      tarEntryBytes(trailerBytes.length) +
      TAR_END.length;

    async function* stream(): AsyncGenerator<Buffer> {
      yield* smallEntry(BACKUP_ENTRIES.summary, summaryBytes, createdAt);
      yield tarHeader(BACKUP_ENTRIES.metadata, metadataBytes, createdAt);
      let sent = 0;
      for await (const chunk of createReadStream(metadataFile, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        sent += chunk.length;
        yield chunk;
      }
      if (sent !== metadataBytes) throw new Error(`backup: the metadata file changed under the backup (${sent} bytes, not ${metadataBytes})`);
      yield tarPadding(metadataBytes);
      yield* smallEntry(BACKUP_ENTRIES.blobList, blobList, createdAt);
      for (const blob of snapshot.blobs) {
        yield tarHeader(BACKUP_ENTRIES.blob(blob.digest), blob.size, createdAt);
        const algorithm = blob.digest.slice(0, blob.digest.indexOf(':'));
        const digest = createHash(algorithm);
        let copied = 0;
        for await (const chunk of (await store.read(blobKey(blob.digest))) as AsyncIterable<Buffer>) {
          copied += chunk.length;
          if (copied > blob.size) break;
          digest.update(chunk);
          yield chunk;
        }
        if (copied !== blob.size) throw new Error(`backup: the object of ${blob.digest} is not ${blob.size} bytes long; the registry's storage is damaged`);
        if (`${algorithm}:${digest.digest('hex')}` !== blob.digest) throw new Error(`backup: the object of ${blob.digest} does not match its digest; the registry's storage is damaged`);
        yield tarPadding(blob.size);
      }
      yield* smallEntry(BACKUP_ENTRIES.end, trailerBytes, createdAt);
      yield TAR_END;
    }
    return { summary, bytes, stream, close };
  } catch (err) {
    await close();
    throw err;
  }
}
