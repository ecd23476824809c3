/**
 * A streaming reader of tar headers: it is fed the bytes of an (already decompressed) tar archive chunk by chunk,
 * parses each 512-byte header (ustar, with GNU long names and pax extended headers), and skips file contents
 * without holding them, unless the caller asks to see one entry's content, which it then receives in slices as
 * they pass. Memory stays bounded by one header (plus a long-name or pax record) whatever the layer's size.
 */

const BLOCK = 512;
/** Long names and pax records are the only data kept in memory; anything larger is not a real header. */
const MAX_META_BYTES = 1024 * 1024;

/** What an entry is. */
export type TarEntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

/** One entry of a tar archive, as its header (and any long-name or pax record before it) describes it. */
export interface TarEntry {
  /** The path inside the archive, without a leading `./` or `/`. */
  path: string;
  kind: TarEntryKind;
  /** Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000). */
  mode: number;
  size: number;
  uid: number;
  gid: number;
  linkTarget: string;
}

/** Receives an entry's content in slices (only for entries whose handler asked for it). */
export type ContentSink = (slice: Buffer) => void;

/** Called for each entry; returns a sink to receive its content, or nothing to skip it. */
export type EntryHandler = (entry: TarEntry) => ContentSink | void;

/** The archive is not a tar archive, or is cut short. */
export class TarFormatError extends Error {}

function cString(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** Reads a numeric field: octal text, or base-256 when the high bit of the first byte is set (GNU, for big values). */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  const text = cString(block, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumMatches(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  return sum === numeric(block, 148, 8);
}

function kindOf(typeflag: string): TarEntryKind {
  switch (typeflag) {
    case '0':
    case '\0':
    case '':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

function normalise(path: string): string {
  return path.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

/** Parses pax extended-header records (`<length> <key>=<value>\n`). */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = parseInt(data.subarray(at, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) records[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return records;
}

/** The reader; `write` every chunk in order, then `end`. */
export class TarHeaderReader {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the current entry's content (or metadata record) still to come, then padding to skip. */
  private remaining = 0;
  private padding = 0;
  private sink: ContentSink | undefined;
  /** Set while the content being read is a long name or pax record rather than a file. */
  private meta: { typeflag: string; chunks: Buffer[]; size: number } | null = null;
  private longPath: string | null = null;
  private longLink: string | null = null;
  private pax: Record<string, string> = {};
  private offset = 0;
  private finished = false;
  private entries = 0;

  constructor(private readonly onEntry: EntryHandler) {}

  /** Feeds the next bytes of the archive. */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.finished) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        const slice = chunk.subarray(at, at + take);
        if (this.meta) this.meta.chunks.push(Buffer.from(slice));
        else this.sink?.(slice);
        this.remaining -= take;
        at += take;
        this.offset += take;
        if (this.remaining === 0) this.finishContent();
        continue;
      }
      if (this.padding > 0) {
        const skip = Math.min(this.padding, chunk.length - at);
        this.padding -= skip;
        at += skip;
        this.offset += skip;
        continue;
      }
      const need = BLOCK - this.pending.length;
      const take = Math.min(need, chunk.length - at);
      this.pending = this.pending.length === 0 && take === BLOCK ? chunk.subarray(at, at + BLOCK) : Buffer.concat([this.pending, chunk.subarray(at, at + take)]);
      at += take;
      if (this.pending.length === BLOCK) {
        const block = this.pending;
        this.pending = Buffer.alloc(0);
        this.header(block);
        this.offset += BLOCK;
      }
    }
  }

  /** Declares the end of the input; throws when the archive stopped in the middle of an entry. */
  end(): { entries: number } {
    if (this.remaining > 0 || this.pending.length > 0) {
      throw new TarFormatError(`the tar archive ends in the middle of an entry (at byte ${this.offset})`);
    }
    return { entries: this.entries };
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      // End-of-archive marker (two zero blocks; one is enough to stop, and what follows is padding).
      this.finished = true;
      return;
    }
    if (!checksumMatches(block)) throw new TarFormatError(`not a tar archive: header checksum mismatch at byte ${this.offset}`);
    const typeflag = String.fromCharCode(block[156]);
    const size = numeric(block, 124, 12);
    if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g') {
      if (size > MAX_META_BYTES) throw new TarFormatError(`a ${typeflag} record of ${size} bytes is too large`);
      this.meta = { typeflag, chunks: [], size };
      this.startContent(size);
      return;
    }
    const magic = cString(block, 257, 6);
    const prefix = magic.startsWith('ustar') ? cString(block, 345, 155) : '';
    const name = cString(block, 0, 100);
    const entry: TarEntry = {
      path: normalise(this.pax.path ?? this.longPath ?? (prefix ? `${prefix}/${name}` : name)),
      kind: kindOf(typeflag),
      mode: numeric(block, 100, 8) & 0o7777,
      size: this.pax.size !== undefined ? Number(this.pax.size) : size,
      uid: this.pax.uid !== undefined ? Number(this.pax.uid) : numeric(block, 108, 8),
      gid: this.pax.gid !== undefined ? Number(this.pax.gid) : numeric(block, 116, 8),
      linkTarget: this.pax.linkpath ?? this.longLink ?? cString(block, 157, 100),
    };
    this.longPath = null;
    this.longLink = null;
    this.pax = {};
    this.entries++;
    // Only regular files carry content in the archive (a hard link's size is 0 by convention).
    const contentSize = entry.kind === 'file' || entry.kind === 'other' ? entry.size : 0;
    this.sink = this.onEntry(entry) ?? undefined;
    this.startContent(contentSize);
  }

  private startContent(size: number): void {
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.finishContent();
  }

  private finishContent(): void {
    if (this.meta) {
      const data = Buffer.concat(this.meta.chunks);
      if (this.meta.typeflag === 'L') this.longPath = cString(data, 0, data.length);
      else if (this.meta.typeflag === 'K') this.longLink = cString(data, 0, data.length);
      // Global pax headers ('g') apply to every later entry; this reader only needs per-entry ones.
      else if (this.meta.typeflag === 'x') this.pax = parsePax(data);
      this.meta = null;
    }
    this.sink = undefined;
  }
}
