import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { descriptorsOn } from '@lading/testing';
import { canCopyTo } from './blob-stream';
import { BufferPool, createBufferPool, FileEndedEarlyError, FileRangeStream } from './file-stream';


/**
 * A sink that acknowledges each write after `delayMs`, keeping a copy of what it was given and checking that a chunk's
 * bytes did not change while it held it (a refilled buffer would show here).
 */
function recordingSink(delayMs = 0) {
  const received: Buffer[] = [];
  const sizes: number[] = [];
  let changedWhileHeld = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const snapshot = Buffer.from(chunk);
      sizes.push(chunk.length);
      setTimeout(() => {
        if (!snapshot.equals(chunk)) changedWhileHeld++;
        received.push(snapshot);
        callback();
      }, delayMs);
    },
  });
  return { sink, received: () => Buffer.concat(received), sizes, changedWhileHeld: () => changedWhileHeld };
}

/** A pool that remembers what it was given back. */
function watchedPool(bufferBytes: number): BufferPool & { given: Buffer[] } {
  const pool = createBufferPool(bufferBytes, 4);
  const given: Buffer[] = [];
  return {
    bufferBytes,
    take: () => pool.take(),
    give(buffer) {
      given.push(buffer);
      pool.give(buffer);
    },
    given,
  };
}

describe('file range stream', () => {
  let dir: string;
  let file: string;
  const data = randomBytes(300_000 + 17);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lading-file-stream-'));
    file = path.join(dir, 'blob');
    await writeFile(file, data);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  async function streamOf(start: number, end: number, pool: BufferPool = createBufferPool(64 * 1024, 4)): Promise<FileRangeStream> {
    return new FileRangeStream(await open(file, 'r'), { start, end, pool });
  }

  it('copies a range spanning many buffers byte for byte, then ends the sink and closes the file', async () => {
    const stream = await streamOf(1000, data.length - 5);
    expect(canCopyTo(stream)).toBe(true);
    const { sink, received, sizes } = recordingSink();
    const finished = new Promise((resolve) => sink.on('finish', resolve));
    await expect(stream.copyTo(sink)).resolves.toBe('complete');
    await finished;
    expect(received().equals(data.subarray(1000, data.length - 5))).toBe(true);
    expect(sizes.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...sizes)).toBe(64 * 1024);
    expect(descriptorsOn(file)).toBe(0);
  });

  it('never refills a buffer the sink still holds, though the next read runs during each write', async () => {
    const { sink, received, changedWhileHeld } = recordingSink(5);
    await expect((await streamOf(0, data.length)).copyTo(sink)).resolves.toBe('complete');
    expect(changedWhileHeld()).toBe(0);
    expect(received().equals(data)).toBe(true);
  });

  it('hands a range that fits one buffer over with the end, in a buffer of its own', async () => {
    const pool = watchedPool(64 * 1024);
    const { sink, received, sizes } = recordingSink();
    const finished = new Promise((resolve) => sink.on('finish', resolve));
    await expect((await streamOf(10, 20, pool)).copyTo(sink)).resolves.toBe('complete');
    await finished;
    expect(received().equals(data.subarray(10, 20))).toBe(true);
    expect(sizes).toEqual([10]);
    expect(pool.given).toHaveLength(0);
  });

  it('stops with "aborted" when the sink closes mid-copy, keeps the buffer the sink held out of the pool, and closes the file', async () => {
    const pool = watchedPool(16 * 1024);
    const held: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (held.length === 3) {
          // The client goes away with this write still queued: its callback never runs.
          held.push(chunk);
          setTimeout(() => sink.destroy(), 5);
          return;
        }
        held.push(chunk);
        callback();
      },
    });
    const stream = await streamOf(0, data.length, pool);
    expect(descriptorsOn(file)).toBe(1);
    await expect(stream.copyTo(sink)).resolves.toBe('aborted');
    expect(held).toHaveLength(4);
    const stillHeld = held[3];
    expect(pool.given.some((b) => b.buffer === stillHeld.buffer)).toBe(false);
    expect(pool.given).toHaveLength(1);
    expect(descriptorsOn(file)).toBe(0);
    expect(stream.destroyed).toBe(true);
  });

  it('rejects when the file ends before the range does, and closes the file', async () => {
    const short = path.join(dir, 'short');
    await writeFile(short, data);
    const stream = new FileRangeStream(await open(short, 'r'), { start: 0, end: data.length, pool: createBufferPool(64 * 1024, 4) });
    // Cut short after it was opened, as a disk error or a concurrent truncation would.
    await truncate(short, 100_000);
    const { sink } = recordingSink();
    await expect(stream.copyTo(sink)).rejects.toBeInstanceOf(FileEndedEarlyError);
    expect(descriptorsOn(short)).toBe(0);
  });

  it('is read as a Readable in chunks of their own, which a consumer may keep', async () => {
    const stream = await streamOf(5, data.length);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
    expect(Buffer.concat(chunks).equals(data.subarray(5))).toBe(true);
    expect(descriptorsOn(file)).toBe(0);
  });

  it('closes the file when a Readable is destroyed part-way', async () => {
    const stream = await streamOf(0, data.length);
    await new Promise<void>((resolve) => stream.once('readable', () => resolve()));
    expect(descriptorsOn(file)).toBe(1);
    stream.destroy();
    await new Promise((resolve) => stream.once('close', resolve));
    expect(descriptorsOn(file)).toBe(0);
  });

  it('refuses a copy of a stream already read', async () => {
    const stream = await streamOf(0, data.length);
    await new Promise<void>((resolve) => stream.once('readable', () => resolve()));
    stream.read();
    await expect(stream.copyTo(recordingSink().sink)).rejects.toThrow(/once/);
    stream.destroy();
  });
});
