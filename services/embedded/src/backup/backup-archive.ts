/**
 * The backup archive of the embedded mode: a tar file whose entries come in this order, every one checked on read.
 *
 *   lading-backup/backup.json          the summary: format and its version, Lading's version, the schema (the applied
 *                                      migrations), when, row counts, blob count and bytes, the two checksums below
 *   lading-backup/metadata.jsonl       the database's rows (libs/metadata/src/table-dump.ts), sha256 in the summary
 *   lading-backup/blobs.jsonl          the blobs, one `{"digest","size"}` a line, in the order they follow
 *   lading-backup/blobs/<alg>/<hex>    each blob's bytes, its digest checked on read (see `blobEntry`)
 *   lading-backup/end.json             the trailer: written only after every blob, so a cut archive lacks it
 *
 * `readBackupArchive` refuses anything else: another format or version, a schema it is not told to accept, a checksum
 * or digest that does not match, an entry out of place, a missing trailer. Nothing in an archive is trusted before
 * the reader has checked it; a caller that writes what it reads (restore) writes it aside until the end.
 */
import { createHash } from 'node:crypto';
import { TarFormatError, TarEntry, readTar } from './tar';

/** The format's name, in the summary. */
export const BACKUP_FORMAT = 'lading-backup';
/** The format's version: a reader refuses any other. */
export const BACKUP_FORMAT_VERSION = 1;

/** The archive's entry names. */
export const BACKUP_ENTRIES = {
  summary: 'lading-backup/backup.json',
  metadata: 'lading-backup/metadata.jsonl',
  blobList: 'lading-backup/blobs.jsonl',
  end: 'lading-backup/end.json',
  blob: blobEntry,
} as const;

/**
 * The entry of a blob: `lading-backup/blobs/<alg>/<hex>`, the hex of a sha512 digest cut in two folders' worth (ustar
 * holds no path component longer than 100 bytes).
 */
function blobEntry(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return `lading-backup/blobs/${algorithm}/${hex.length > 64 ? `${hex.slice(0, 64)}/${hex.slice(64)}` : hex}`;
}

/** The largest summary, blob-list line or trailer a reader accepts (they are small; a huge one is not ours). */
const MAX_SUMMARY_BYTES = 4 << 20;

/** A blob of the archive. */
export interface BackupBlob {
  digest: string;
  size: number;
}

/** The summary at the head of an archive. */
export interface BackupSummary {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  /** The Lading that wrote it (`name`, `version`, maybe `commit`). */
  lading: { name: string; version: string; commit?: string };
  createdAt: string;
  /** The schema of the dumped rows: the migrations applied, in order; `version` is the last one. */
  schema: { version: string; migrations: string[] };
  /** Rows per table (tables whose rows are not kept are listed in `excludedTables`). */
  tables: Record<string, number>;
  excludedTables: string[];
  sequences: Record<string, number>;
  /** What the metadata entry holds: its bytes and their sha256 (hex). */
  metadata: { bytes: number; sha256: string };
  /** The blob list entry, and the blobs themselves. */
  blobList: { bytes: number; sha256: string };
  blobs: { count: number; bytes: number };
}

/** The trailer: the counts again, proof that the writer got to the end. */
export interface BackupTrailer {
  complete: true;
  blobs: number;
  bytes: number;
}

/** An archive that cannot be restored: not one, not this format or version, corrupted or truncated. */
export class BackupArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupArchiveError';
  }
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** The algorithm of a digest the archive may hold. */
function algorithmOf(digest: string): 'sha256' | 'sha512' {
  if (!DIGEST.test(digest)) throw new BackupArchiveError(`the archive names a blob with a malformed digest: ${JSON.stringify(digest.slice(0, 140))}`);
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** What a reader of an archive does with each part (each body, when given, must be read whole). */
export interface BackupArchiveVisitor {
  /** Decides whether the summary is acceptable (the schema, say); throws `BackupArchiveError` to refuse it. */
  summary(summary: BackupSummary): Promise<void>;
  /** The metadata entry's bytes (checked against the summary once read: throw nothing here for a mismatch). */
  metadata(body: AsyncIterable<Buffer>): Promise<void>;
  /** One blob's bytes: they have been checked for size, and the digest is checked when the body ends. */
  blob(blob: BackupBlob, body: AsyncIterable<Buffer>): Promise<void>;
}

async function readSmall(entry: TarEntry, what: string): Promise<Buffer> {
  if (entry.size > MAX_SUMMARY_BYTES) throw new BackupArchiveError(`the ${what} is ${entry.size} bytes: too large to be one this format writes`);
  const chunks: Buffer[] = [];
  for await (const chunk of entry.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new BackupArchiveError(`the ${what} is not JSON: the archive is corrupted`);
  }
}

/** Checks a parsed summary's shape; the caller has already checked format and version. */
function checkSummary(s: BackupSummary): void {
  const ok =
    typeof s.createdAt === 'string' &&
    s.schema && Array.isArray(s.schema.migrations) && s.schema.migrations.every((m) => typeof m === 'string') &&
    s.tables && typeof s.tables === 'object' &&
    s.metadata && Number.isSafeInteger(s.metadata.bytes) && typeof s.metadata.sha256 === 'string' &&
    s.blobList && Number.isSafeInteger(s.blobList.bytes) && typeof s.blobList.sha256 === 'string' &&
    s.blobs && Number.isSafeInteger(s.blobs.count) && Number.isSafeInteger(s.blobs.bytes);
  if (!ok) throw new BackupArchiveError('the summary of the archive lacks fields this format has: the archive is corrupted');
}

/** Yields an entry's bytes while hashing them; checks size and hash when they end. */
async function* checked(body: AsyncIterable<Buffer>, algorithm: string, expected: { bytes: number; hex: string }, what: string): AsyncGenerator<Buffer> {
  const hash = createHash(algorithm);
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
    yield chunk;
  }
  if (bytes !== expected.bytes) throw new BackupArchiveError(`${what} is ${bytes} bytes, not the ${expected.bytes} the archive says: it is corrupted`);
  const hex = hash.digest('hex');
  if (hex !== expected.hex) throw new BackupArchiveError(`${what} does not match its ${algorithm} checksum: the archive is corrupted`);
}

/**
 * Reads a whole archive from `source`, checking everything (see the top of this file) and handing each part to
 * `visitor`; resolves with the summary once the trailer and the end of the tar have been read. Throws
 * `BackupArchiveError` (or the visitor's error) at the first thing wrong.
 */
export async function readBackupArchive(source: AsyncIterable<Buffer>, visitor: BackupArchiveVisitor): Promise<BackupSummary> {
  try {
    return await readEntries(source, visitor);
  } catch (err) {
    if (err instanceof TarFormatError) throw new BackupArchiveError(`not a complete backup archive: ${err.message.replace(/^tar: /, '')}`);
    throw err;
  }
}

async function readEntries(source: AsyncIterable<Buffer>, visitor: BackupArchiveVisitor): Promise<BackupSummary> {
  const entries = readTar(source);
  const next = async (expected: string): Promise<TarEntry> => {
    const { value, done } = await entries.next();
    if (done) throw new BackupArchiveError(`the archive ends where ${expected} should be: it is truncated`);
    return value;
  };
  const expect = async (name: string, what: string): Promise<TarEntry> => {
    const entry = await next(what);
    if (entry.path !== name) throw new BackupArchiveError(`the archive has ${JSON.stringify(entry.path)} where ${what} (${name}) should be: it is not a Lading backup of this format`);
    return entry;
  };

  const head = await next('the summary');
  if (head.path !== BACKUP_ENTRIES.summary) throw new BackupArchiveError(`not a Lading backup archive: it starts with ${JSON.stringify(head.path)}, not ${BACKUP_ENTRIES.summary}`);
  const summary = parseJson<BackupSummary>(await readSmall(head, 'summary'), 'summary');
  if (summary?.format !== BACKUP_FORMAT) throw new BackupArchiveError(`not a Lading backup archive (format ${JSON.stringify(summary?.format)})`);
  if (summary.formatVersion !== BACKUP_FORMAT_VERSION) {
    throw new BackupArchiveError(
      `the archive is in backup format version ${JSON.stringify(summary.formatVersion)}, written by ${summary.lading?.name ?? 'lading'} ${summary.lading?.version ?? '?'}; ` +
        `this Lading reads version ${BACKUP_FORMAT_VERSION} only`,
    );
  }
  checkSummary(summary);
  await visitor.summary(summary);

  const metadata = await expect(BACKUP_ENTRIES.metadata, 'the metadata');
  await visitor.metadata(checked(metadata.body, 'sha256', { bytes: summary.metadata.bytes, hex: summary.metadata.sha256 }, 'the metadata'));

  const listEntry = await expect(BACKUP_ENTRIES.blobList, 'the blob list');
  if (listEntry.size !== summary.blobList.bytes) throw new BackupArchiveError(`the blob list is ${listEntry.size} bytes, not the ${summary.blobList.bytes} the summary says: the archive is corrupted`);
  const listBytes: Buffer[] = [];
  for await (const chunk of checked(listEntry.body, 'sha256', { bytes: summary.blobList.bytes, hex: summary.blobList.sha256 }, 'the blob list')) listBytes.push(chunk);
  const list = Buffer.concat(listBytes)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => parseJson<BackupBlob>(Buffer.from(line), 'blob list'));
  const total = list.reduce((sum, b) => sum + b.size, 0);
  if (list.length !== summary.blobs.count || total !== summary.blobs.bytes) {
    throw new BackupArchiveError(`the blob list has ${list.length} blobs of ${total} bytes, not the ${summary.blobs.count} of ${summary.blobs.bytes} the summary says`);
  }

  for (const [i, blob] of list.entries()) {
    const algorithm = algorithmOf(blob.digest);
    if (!Number.isSafeInteger(blob.size) || blob.size < 0) throw new BackupArchiveError(`the blob list gives ${blob.digest} a bad size`);
    const entry = await expect(BACKUP_ENTRIES.blob(blob.digest), `blob ${i + 1} of ${list.length}`);
    if (entry.size !== blob.size) throw new BackupArchiveError(`blob ${blob.digest} is ${entry.size} bytes in the archive, not ${blob.size}: it is corrupted`);
    await visitor.blob(blob, checked(entry.body, algorithm, { bytes: blob.size, hex: blob.digest.slice(algorithm.length + 1) }, `blob ${blob.digest}`));
  }

  const end = await expect(BACKUP_ENTRIES.end, 'the trailer');
  const trailer = parseJson<BackupTrailer>(await readSmall(end, 'trailer'), 'trailer');
  if (trailer?.complete !== true || trailer.blobs !== summary.blobs.count || trailer.bytes !== summary.blobs.bytes) {
    throw new BackupArchiveError('the trailer does not match the summary: the archive is corrupted');
  }
  const after = await entries.next();
  if (!after.done) throw new BackupArchiveError(`the archive has ${JSON.stringify(after.value.path)} after its trailer: it is not one this format writes`);
  return summary;
}

/** Reads a whole archive and checks it (see `readBackupArchive`) without keeping anything; resolves with its summary. */
export function verifyBackupArchive(source: AsyncIterable<Buffer>): Promise<BackupSummary> {
  const drain = async (body: AsyncIterable<Buffer>) => {
    for await (const chunk of body) void chunk;
  };
  return readBackupArchive(source, { summary: async () => undefined, metadata: drain, blob: (_blob, body) => drain(body) });
}
