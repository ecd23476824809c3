/** Reading small request bodies (manifests) with a hard cap, never reading past it. */
import type { Request } from 'express';
import { OciError, errors } from '@lading/oci';

/**
 * Reads a request body of at most `limit` bytes. A declared Content-Length over the limit is refused before
 * a byte is read; a body that grows past the limit (lying or absent Content-Length) is refused as soon as it does.
 */
export async function readBodyCapped(req: Request, limit: number, what: string): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    if (!Number.isSafeInteger(length) || length < 0) throw errors.sizeInvalid('invalid Content-Length');
    if (length > limit) {
      req.resume();
      throw errors.tooLarge(what, limit);
    }
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      req.unpipe();
      req.resume();
      throw errors.tooLarge(what, limit);
    }
    chunks.push(chunk as Buffer);
  }
  if (declared !== undefined && Number(declared) !== total) {
    throw new OciError('SIZE_INVALID', 'body length does not match Content-Length');
  }
  return Buffer.concat(chunks, total);
}
