/**
 * The tar format of backup archives: POSIX ustar, regular files only, written and read as streams of buffers so that
 * an archive of any size passes through a fixed amount of memory. Sizes of 8 GiB and more use the base-256 size field
 * (GNU and bsdtar read it). `tar tvf` lists an archive; the reader here accepts only what the writer produces.
 */

/** The size of a tar block. */
export const BLOCK = 512;

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** The largest size the octal field holds (8 GiB - 1); larger ones are written in base 256. */
const MAX_OCTAL_SIZE = 0o77777777777;

/** A tar archive that cannot be read: truncated, corrupted, or not one the writer produced. */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** Splits a path into ustar's prefix (up to 155 bytes) and name (up to 100 bytes), at a slash. */
function splitName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { prefix, name };
  }
  throw new Error(`tar: the path ${path} is too long for ustar`);
}

/** The header block of a regular file of `size` bytes. */
export function tarHeader(path: string, size: number, mtime: Date): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`tar: bad size ${size}`);
  const block = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(path);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  if (size <= MAX_OCTAL_SIZE) writeOctal(block, 124, 12, size);
  else {
    block[124] = 0x80;
    let rest = BigInt(size);
    for (let i = 135; i > 124; i--) {
      block[i] = Number(rest & 0xffn);
      rest >>= 8n;
    }
  }
  writeOctal(block, 136, 12, Math.floor(mtime.getTime() / 1000));
  block.write('        ', 148, 8, 'ascii');
  block.write('0', 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

/** The zero bytes that pad a file of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The bytes a file of `size` bytes takes in an archive: its header, its data and the padding. */
export function tarEntryBytes(size: number): number {
  return BLOCK + size + tarPadding(size).length;
}

/** One file of an archive. `body` yields its `size` bytes; read it whole (or not at all) before the next entry. */
export interface TarEntry {
  path: string;
  size: number;
  body: AsyncIterable<Buffer>;
}

function readString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

function readOctal(block: Buffer, offset: number, length: number, what: string): number {
  const text = readString(block, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar: the ${what} field of a header is not a number`);
  return Number.parseInt(text, 8);
}

function readSize(block: Buffer): number {
  if ((block[124] & 0x80) === 0) return readOctal(block, 124, 12, 'size');
  let size = 0n;
  for (let i = 125; i < 136; i++) size = (size << 8n) | BigInt(block[i]);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError('tar: a size is too large');
  return Number(size);
}

/** Parses a header block; null for a zero block (the end of the archive). */
function parseHeader(block: Buffer): { path: string; size: number } | null {
  if (block.every((b) => b === 0)) return null;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  if (readOctal(block, 148, 8, 'checksum') !== sum) throw new TarFormatError('tar: a header checksum does not match (the archive is corrupted)');
  if (readString(block, 257, 6) !== 'ustar') throw new TarFormatError('tar: not a ustar archive');
  const type = String.fromCharCode(block[156]);
  if (type !== '0' && type !== '\0') throw new TarFormatError(`tar: an entry of type ${JSON.stringify(type)}, not a regular file`);
  const name = readString(block, 0, 100);
  const prefix = readString(block, 345, 155);
  return { path: prefix ? `${prefix}/${name}` : name, size: readSize(block) };
}

/** Reads exact amounts from a stream of buffers. */
class ByteReader {
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.source.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return true;
  }

  /** Exactly `n` bytes (small: a header), or null at a clean end of the stream; throws when it ends within them. */
  async exactly(n: number, what: string): Promise<Buffer | null> {
    while (this.pending.length < n) {
      if (!(await this.fill())) {
        if (this.pending.length === 0) return null;
        throw new TarFormatError(`tar: the archive ends within ${what} (it is truncated)`);
      }
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** Yields the next `n` bytes as they come; throws when the stream ends first. */
  async *take(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw new TarFormatError(`tar: the archive ends within ${what} (it is truncated)`);
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }
}

/**
 * Reads an archive entry by entry. An entry's body must be consumed before asking for the next entry; one that was
 * not is skipped. Throws `TarFormatError` on a corrupted header, an entry that is not a regular file, and an archive
 * that ends before its end blocks.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  for (;;) {
    const block = await reader.exactly(BLOCK, 'a header');
    if (!block) throw new TarFormatError('tar: the archive ends without its end blocks (it is truncated)');
    const header = parseHeader(block);
    if (!header) return;
    const { path, size } = header;
    let delivered = 0;
    let opened = false;
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => {
        if (opened) throw new Error(`tar: the body of ${path} was read already`);
        opened = true;
        return (async function* () {
          for await (const piece of reader.take(size, path)) {
            delivered += piece.length;
            yield piece;
          }
        })();
      },
    };
    yield { path, size, body };
    // What the consumer left unread (all of it, or the rest after it stopped) is skipped.
    for await (const piece of reader.take(size - delivered, path)) void piece;
    for await (const piece of reader.take(tarPadding(size).length, `the padding of ${path}`)) void piece;
  }
}
