import { Readable } from 'node:stream';
import type { Request } from 'express';
import { OciError } from '@lading/oci';
import { readBodyCapped } from './body';

/** A request stand-in: a readable body with the headers readBodyCapped looks at; `null` chunks never arrive. */
function fakeRequest(chunks: Buffer[] | null, headers: Record<string, string> = {}): Request {
  const queue = chunks ? [...chunks] : null;
  const stream = new Readable({
    read() {
      // A client that declared a body and never sends it: the test hangs if the body is awaited.
      if (queue === null) return;
      this.push(queue.length > 0 ? queue.shift() : null);
    },
  });
  return Object.assign(stream, { headers }) as unknown as Request;
}

async function rejection(promise: Promise<unknown>): Promise<OciError> {
  return promise.then(
    () => {
      throw new Error('readBodyCapped resolved');
    },
    (err: OciError) => err,
  );
}

describe('readBodyCapped', () => {
  it('reads a body under the cap, with or without Content-Length', async () => {
    const body = [Buffer.from('hello, '), Buffer.from('world')];
    expect((await readBodyCapped(fakeRequest(body, { 'content-length': '12' }), 100, 'manifest')).toString()).toBe('hello, world');
    expect((await readBodyCapped(fakeRequest(body), 100, 'manifest')).toString()).toBe('hello, world');
  });

  it('reads a body of exactly the cap', async () => {
    const body = Buffer.alloc(64, 1);
    expect(await readBodyCapped(fakeRequest([body], { 'content-length': '64' }), 64, 'manifest')).toEqual(body);
    expect(await readBodyCapped(fakeRequest([body]), 64, 'manifest')).toEqual(body);
  });

  it('refuses a declared Content-Length over the cap with 413 without waiting for the body', async () => {
    const req = fakeRequest(null, { 'content-length': '1000' });
    const err = await rejection(readBodyCapped(req, 999, 'manifest'));
    expect(err).toBeInstanceOf(OciError);
    expect(err.status).toBe(413);
    expect(err.code).toBe('SIZE_INVALID');
    expect(err.message).toContain('manifest');
  }, 5000);

  it('refuses a body without Content-Length once it grows past the cap, with 413', async () => {
    const err = await rejection(readBodyCapped(fakeRequest([Buffer.alloc(60), Buffer.alloc(60), Buffer.alloc(60)]), 100, 'manifest'));
    expect(err.status).toBe(413);
    expect(err.code).toBe('SIZE_INVALID');
  });

  it('refuses a body longer than a Content-Length that was itself under the cap, with 413 once past the cap', async () => {
    const err = await rejection(readBodyCapped(fakeRequest([Buffer.alloc(80), Buffer.alloc(80)], { 'content-length': '10' }), 100, 'manifest'));
    expect(err.status).toBe(413);
  });

  it.each([
    ['shorter', '20', [Buffer.alloc(10)]],
    ['longer', '5', [Buffer.alloc(10)]],
  ])('refuses a body %s than its Content-Length with SIZE_INVALID (400)', async (_what, declared, body) => {
    const err = await rejection(readBodyCapped(fakeRequest(body, { 'content-length': declared }), 100, 'manifest'));
    expect(err.code).toBe('SIZE_INVALID');
    expect(err.status).toBe(400);
  });

  it.each(['abc', '-1', '1.5'])('refuses Content-Length %s with SIZE_INVALID (400)', async (declared) => {
    const err = await rejection(readBodyCapped(fakeRequest([Buffer.alloc(1)], { 'content-length': declared }), 100, 'manifest'));
    expect(err.code).toBe('SIZE_INVALID');
    expect(err.status).toBe(400);
  });
});
