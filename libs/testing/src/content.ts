/** Builders of test content: blobs, image manifests, indexes, artifacts. */
import { randomBytes } from 'node:crypto';
import { digestOf } from '@lading/oci';

/** A blob with its digest. */
export interface TestBlob {
  data: Buffer;
  digest: string;
  size: number;
}

/** Wraps bytes as a blob (random bytes when given a size). */
export function makeBlob(content: Buffer | string | number, algorithm: 'sha256' | 'sha512' = 'sha256'): TestBlob {
  const data = typeof content === 'number' ? randomBytes(content) : Buffer.from(content);
  return { data, digest: digestOf(data, algorithm), size: data.length };
}

/** A manifest document with its bytes and digest. */
export interface TestManifest {
  doc: Record<string, unknown>;
  body: Buffer;
  digest: string;
  mediaType: string;
}

/** Serialises a manifest document. */
export function makeManifest(doc: Record<string, unknown>, algorithm: 'sha256' | 'sha512' = 'sha256'): TestManifest {
  const body = Buffer.from(JSON.stringify(doc));
  return { doc, body, digest: digestOf(body, algorithm), mediaType: String(doc.mediaType) };
}

/** An OCI image manifest over a config blob and layer blobs. */
export function imageManifest(config: TestBlob, layers: TestBlob[], extra: Record<string, unknown> = {}): TestManifest {
  return makeManifest({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    ...extra,
  });
}

/** An OCI image index over manifests. */
export function imageIndex(children: TestManifest[], extra: Record<string, unknown> = {}): TestManifest {
  return makeManifest({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: children.map((c, i) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.body.length,
      platform: { os: 'linux', architecture: i % 2 === 0 ? 'amd64' : 'arm64' },
    })),
    ...extra,
  });
}

/** A supertest/superagent body parser that collects the raw bytes of any response. */
export function binaryParser(res: unknown, callback: (err: Error | null, body: Buffer) => void): void {
  const stream = res as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('end', () => callback(null, Buffer.concat(chunks)));
  stream.on('error', (err: Error) => callback(err, Buffer.alloc(0)));
}
