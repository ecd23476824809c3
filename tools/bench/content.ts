/** The content the benchmark loads into every registry: a small image, a large random blob, a generated huge blob. */
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { makeBlob, imageManifest, type TestBlob, type TestManifest } from '@lading/testing';

/** An image: a config blob, its layers and the OCI manifest over them. */
export interface BenchImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: TestManifest;
}

/** A config + `layerCount` random layers image, each layer `layerBytes` long. */
export function makeImage(layerBytes: number, layerCount = 4): BenchImage {
  const config = makeBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, id: randomBytes(16).toString('hex') }));
  const layers = Array.from({ length: layerCount }, () => makeBlob(layerBytes));
  return { config, layers, manifest: imageManifest(config, layers) };
}

/** Writes `size` random bytes to `path`, hashing them in the same pass; returns the sha256 digest. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hasher = createHash('sha256');
  const file = await open(path, 'w');
  try {
    for (let written = 0; written < size; ) {
      const chunk = randomBytes(Math.min(4 << 20, size - written));
      hasher.update(chunk);
      await file.write(chunk);
      written += chunk.length;
    }
  } finally {
    await file.close();
  }
  return `sha256:${hasher.digest('hex')}`;
}

/** Size of one generated block of a {@link GeneratedBlob}. */
export const BLOCK_BYTES = 4 << 20;

/**
 * A large blob produced by a generator instead of held anywhere: block i is one random block with i written into its
 * first 8 bytes, so it can be produced twice (once to hash, once to send) without storing it.
 */
export class GeneratedBlob {
  private readonly base = randomBytes(BLOCK_BYTES);

  constructor(readonly size: number) {
    if (size % BLOCK_BYTES !== 0) throw new RangeError(`size must be a multiple of ${BLOCK_BYTES}`);
  }

  /** The blocks from byte `start` (block-aligned) up to `end`. */
  async *blocks(start = 0, end = this.size): AsyncGenerator<Buffer> {
    if (start % BLOCK_BYTES !== 0) throw new RangeError('start must be block-aligned');
    for (let offset = start; offset < end; offset += BLOCK_BYTES) {
      const block = Buffer.from(this.base);
      block.writeBigUInt64BE(BigInt(offset / BLOCK_BYTES), 0);
      yield end - offset < BLOCK_BYTES ? block.subarray(0, end - offset) : block;
    }
  }

  /** The blob's sha256 digest (one full pass of the generator). */
  async digest(): Promise<string> {
    const hasher = createHash('sha256');
    for await (const block of this.blocks()) hasher.update(block);
    return `sha256:${hasher.digest('hex')}`;
  }
}
