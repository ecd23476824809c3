import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { DigestAlgorithm } from '@lading/oci';
import { chunksAreDisposable } from '@lading/storage';
import { DigestingStream, MultiDigester, createNativeDigester, createResumableDigester } from './digester';

const content = randomBytes(200_003);
const chunks = [content.subarray(0, 1), content.subarray(1, 65_537), content.subarray(65_537)];
const expected = (algorithm: DigestAlgorithm, data: Buffer = content) => `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;

describe('createResumableDigester', () => {
  it.each<DigestAlgorithm>(['sha256', 'sha512'])('resumed from saved state across three chunks gives the same %s as node:crypto', async (algorithm) => {
    let state: Buffer | null = null;
    for (const chunk of chunks) {
      // A fresh digester per chunk, as a different replica would build it.
      const digester = await createResumableDigester(algorithm, state);
      digester.update(chunk);
      state = digester.save();
      expect(Buffer.isBuffer(state)).toBe(true);
    }
    const last = await createResumableDigester(algorithm, state);
    expect(last.algorithm).toBe(algorithm);
    expect(last.digest()).toBe(expected(algorithm));
  });

  it.each<DigestAlgorithm>(['sha256', 'sha512'])('digests the empty input as node:crypto does (%s)', async (algorithm) => {
    expect((await createResumableDigester(algorithm, null)).digest()).toBe(expected(algorithm, Buffer.alloc(0)));
  });

  it('refuses to resume from a state that is not a saved state', async () => {
    await expect(createResumableDigester('sha256', Buffer.from('not a hash state'))).rejects.toThrow();
  });
});

describe('MultiDigester', () => {
  it('round-trips save and resume across three chunks and gives both digests', async () => {
    let state: Buffer | null = null;
    for (const chunk of chunks) {
      const multi = await MultiDigester.resume(['sha256', 'sha512'], state);
      multi.update(chunk);
      state = multi.save();
    }
    const done = await MultiDigester.resume(['sha256', 'sha512'], state);
    expect(done.digest('sha256')).toBe(expected('sha256'));
    const again = await MultiDigester.resume(['sha256', 'sha512'], state);
    expect(again.digest('sha512')).toBe(expected('sha512'));
  });

  it('resumes only the algorithms asked for, and has no digest for the others', async () => {
    const multi = await MultiDigester.resume(['sha256', 'sha512'], null);
    multi.update(content);
    const only256 = await MultiDigester.resume(['sha256'], multi.save());
    expect(only256.digest('sha256')).toBe(expected('sha256'));
    expect(only256.digest('sha512')).toBeUndefined();
  });

  it('starts afresh from a null state', async () => {
    const multi = await MultiDigester.resume(['sha256'], null);
    expect(multi.digest('sha256')).toBe(expected('sha256', Buffer.alloc(0)));
  });
});

describe('createNativeDigester', () => {
  it.each<DigestAlgorithm>(['sha256', 'sha512'])('gives the %s of every chunk it was fed, and no state to save', (algorithm) => {
    const digester = createNativeDigester(algorithm);
    for (const chunk of chunks) digester.update(chunk);
    expect(digester.save()).toBeNull();
    expect(digester.algorithm).toBe(algorithm);
    expect(digester.digest()).toBe(expected(algorithm));
  });
});

describe('DigestingStream', () => {
  it('passes bytes through unchanged while digesting and counting them', async () => {
    const digester = createNativeDigester('sha256');
    const stream = new DigestingStream(digester);
    const out: Buffer[] = [];
    await pipeline(
      Readable.from(chunks),
      stream,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(out).equals(content)).toBe(true);
    expect(stream.bytes).toBe(content.length);
    expect(digester.digest()).toBe(expected('sha256'));
  });
});

describe('DigestingStream and disposable chunks', () => {
  it('marks its chunks disposable when piped from an HTTP request body, and not when piped from any other stream', async () => {
    const seen: boolean[] = [];
    const server = createServer((req, res) => {
      const counter = new DigestingStream(createNativeDigester('sha256'));
      req.pipe(counter).resume();
      seen.push(chunksAreDisposable(counter));
      counter.on('end', () => res.end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method: 'POST' }, (res) => res.resume().on('end', resolve));
        req.on('error', reject);
        req.end(content);
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const other = new DigestingStream(createNativeDigester('sha256'));
    Readable.from(chunks).pipe(other).resume();
    expect(seen).toEqual([true]);
    expect(chunksAreDisposable(other)).toBe(false);
  });
});
