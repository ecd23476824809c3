import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { BLOCK, TAR_END, TarFormatError, readTar, tarEntryBytes, tarHeader, tarPadding } from './tar';

const MTIME = new Date('2026-12-07T10:00:00Z');

function archiveOf(files: Array<{ path: string; data: Buffer }>): Buffer {
  const parts = files.flatMap((f) => [tarHeader(f.path, f.data.length, MTIME), f.data, tarPadding(f.data.length)]);
  return Buffer.concat([...parts, TAR_END]);
}

/** The bytes in pieces of `size` (odd sizes cut headers and bodies anywhere). */
async function* inPieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

/** Files as path, size and sha256 (jest compares large buffers byte by byte, slowly). */
function fingerprints(files: Array<{ path: string; data: Buffer }>): string[] {
  return files.map((f) => `${f.path} ${f.data.length} ${createHash('sha256').update(f.data).digest('hex')}`);
}

async function readAll(source: AsyncIterable<Buffer>): Promise<string[]> {
  const out: Array<{ path: string; data: Buffer }> = [];
  for await (const entry of readTar(source)) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    out.push({ path: entry.path, data: Buffer.concat(chunks) });
  }
  return fingerprints(out);
}

const LONG = `lading-backup/blobs/sha512/${'ab'.repeat(32)}/${'cd'.repeat(32)}`;
const FILES = [
  { path: 'a/empty', data: Buffer.alloc(0) },
  { path: 'a/one', data: Buffer.from('x') },
  { path: 'a/block-1', data: randomBytes(BLOCK - 1) },
  { path: 'a/block', data: randomBytes(BLOCK) },
  { path: 'a/block+1', data: randomBytes(BLOCK + 1) },
  { path: LONG, data: randomBytes(100_000) },
];

describe('tar', () => {
  it('reads back what it writes, byte for byte, however the stream is cut', async () => {
    const archive = archiveOf(FILES);
    expect(archive.length).toBe(FILES.reduce((n, f) => n + tarEntryBytes(f.data.length), 0) + TAR_END.length);
    for (const size of [7, 511, 4096, archive.length]) expect(await readAll(inPieces(archive, size))).toEqual(fingerprints(FILES));
    const small = FILES.filter((f) => f.data.length < 1000);
    expect(await readAll(inPieces(archiveOf(small), 1))).toEqual(fingerprints(small));
  });

  it('writes archives that tar itself lists (a long path in the ustar prefix)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lading-tar-'));
    try {
      const file = path.join(dir, 'a.tar');
      await writeFile(file, archiveOf(FILES));
      const { stdout } = await promisify(execFile)('tar', ['-tvf', file]);
      const listed = stdout.trim().split('\n').map((line) => {
        const fields = line.trim().split(/\s+/);
        return { size: Number(fields[2]), path: fields[fields.length - 1] };
      });
      expect(listed).toEqual(FILES.map((f) => ({ size: f.data.length, path: f.path })));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a path component ustar cannot hold', () => {
    expect(() => tarHeader(`a/${'x'.repeat(101)}`, 0, MTIME)).toThrow(/too long for ustar/);
  });

  it('writes sizes of 8 GiB and more in base 256, and reads them back', async () => {
    const size = 2 ** 33 + 5;
    const header = tarHeader('big', size, MTIME);
    expect(header[124]).toBe(0x80);
    const entries = readTar(inPieces(header, BLOCK));
    const { value } = await entries.next();
    expect({ path: value!.path, size: value!.size }).toEqual({ path: 'big', size });
  });

  it('skips bodies a reader leaves unread, whole or in part', async () => {
    const archive = archiveOf(FILES);
    const seen: string[] = [];
    for await (const entry of readTar(inPieces(archive, 1000))) {
      seen.push(entry.path);
      if (entry.path === LONG) {
        for await (const chunk of entry.body) {
          void chunk;
          break;
        }
      }
    }
    expect(seen).toEqual(FILES.map((f) => f.path));
  });

  it('refuses a corrupted header, a truncated archive and an entry that is not a regular file', async () => {
    const archive = archiveOf(FILES);
    const corrupted = Buffer.from(archive);
    corrupted[3] ^= 0x01;
    await expect(readAll(inPieces(corrupted, 4096))).rejects.toThrow(/checksum does not match/);
    await expect(readAll(inPieces(archive.subarray(0, archive.length - TAR_END.length), 4096))).rejects.toThrow(/without its end blocks/);
    await expect(readAll(inPieces(archive.subarray(0, 3300), 4096))).rejects.toThrow(/ends within a\/block /);
    await expect(readAll(inPieces(archive.subarray(0, 100), 4096))).rejects.toThrow(TarFormatError);
    const link = tarHeader('link', 0, MTIME);
    link.write('2', 156, 1, 'ascii');
    let sum = 0;
    link.write('        ', 148, 8, 'ascii');
    for (const byte of link) sum += byte;
    link.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    await expect(readAll(inPieces(Buffer.concat([link, TAR_END]), 4096))).rejects.toThrow(/not a regular file/);
  });
});
