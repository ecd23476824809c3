/**
 * Digesting bytes as they stream in. Two kinds: a resumable one (hash-wasm), whose state is saved with the
 * upload session so that the next chunk can continue on any replica; and a native one (node:crypto, several times
 * faster) for bodies that are a whole blob in one request, where no state needs to survive the request.
 */
import { createHash, Hash } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { markChunksDisposable } from '@lading/storage';
import { createSHA256, createSHA512, IHasher } from 'hash-wasm';
import type { DigestAlgorithm } from '@lading/oci';

/** A running digest computation. */
export interface Digester {
  readonly algorithm: DigestAlgorithm;
  update(chunk: Buffer): void;
  /** The `algorithm:hex` digest of everything seen; ends the computation. */
  digest(): string;
  /** The state to resume from later, or null for a digester that cannot be resumed. */
  save(): Buffer | null;
}

/** Creates a native (non-resumable) digester. */
export function createNativeDigester(algorithm: DigestAlgorithm): Digester {
  const hash: Hash = createHash(algorithm);
  return {
    algorithm,
    update: (chunk) => void hash.update(chunk),
    digest: () => `${algorithm}:${hash.digest('hex')}`,
    save: () => null,
  };
}

/** Creates a resumable digester, continuing from `state` when given (the saved state of an earlier chunk). */
export async function createResumableDigester(algorithm: DigestAlgorithm, state: Buffer | null): Promise<Digester> {
  const hasher: IHasher = algorithm === 'sha512' ? await createSHA512() : await createSHA256();
  hasher.init();
  if (state) hasher.load(new Uint8Array(state));
  return {
    algorithm,
    update: (chunk) => void hasher.update(chunk),
    digest: () => `${algorithm}:${hasher.digest('hex')}`,
    save: () => Buffer.from(hasher.save()),
  };
}

/**
 * Digests for every algorithm at once, resumable: an upload in chunks learns which algorithm the client wants only
 * from the final PUT, so each chunk feeds all of them and saves their states together.
 */
export class MultiDigester {
  private constructor(private readonly digesters: Map<DigestAlgorithm, Digester>) {}

  /** Resumes from a state saved by `save`, or starts afresh when `state` is null. */
  static async resume(algorithms: readonly DigestAlgorithm[], state: Buffer | null): Promise<MultiDigester> {
    const states = new Map<string, Buffer>();
    let offset = 0;
    while (state && offset < state.length) {
      const nameLength = state.readUInt8(offset);
      const name = state.subarray(offset + 1, offset + 1 + nameLength).toString('latin1');
      const length = state.readUInt32BE(offset + 1 + nameLength);
      const start = offset + 5 + nameLength;
      states.set(name, state.subarray(start, start + length));
      offset = start + length;
    }
    const digesters = new Map<DigestAlgorithm, Digester>();
    for (const algorithm of algorithms) digesters.set(algorithm, await createResumableDigester(algorithm, states.get(algorithm) ?? null));
    return new MultiDigester(digesters);
  }

  update(chunk: Buffer): void {
    for (const d of this.digesters.values()) d.update(chunk);
  }

  /** The digest in one algorithm; undefined when that algorithm was not being computed. */
  digest(algorithm: DigestAlgorithm): string | undefined {
    return this.digesters.get(algorithm)?.digest();
  }

  /** Serialises every state: [name length][name][state length (u32)][state] per algorithm. */
  save(): Buffer {
    const parts: Buffer[] = [];
    for (const [name, d] of this.digesters) {
      const state = d.save() as Buffer;
      const head = Buffer.alloc(5 + name.length);
      head.writeUInt8(name.length, 0);
      head.write(name, 1, 'latin1');
      head.writeUInt32BE(state.length, 1 + name.length);
      parts.push(head, state);
    }
    return Buffer.concat(parts);
  }
}

/**
 * A pass-through stream that feeds every chunk to a digester and counts bytes. Piped from an HTTP request body, it
 * passes on pieces nobody else holds, and says so (`markChunksDisposable`): the filesystem driver frees each one's
 * memory once written.
 */
export class DigestingStream extends Transform {
  bytes = 0;
  constructor(private readonly digester: Pick<Digester, 'update'>) {
    super({ highWaterMark: 1024 * 1024 });
    this.once('pipe', (source: Readable) => {
      if (source instanceof IncomingMessage) markChunksDisposable(this);
    });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digester.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
