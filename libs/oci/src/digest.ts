/** Digests: parsing and validating `algorithm:encoded` strings for the algorithms the registry can verify. */
import { createHash } from 'node:crypto';
import { OciError } from './errors';

/** The digest algorithms the registry computes and verifies, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;

/** A digest algorithm the registry can compute. */
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** The digest (`algorithm:hex`) of bytes held in memory; streamed bodies are hashed as they arrive instead. */
export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** A parsed, validated digest. */
export interface Digest {
  algorithm: DigestAlgorithm;
  encoded: string;
  /** The canonical `algorithm:encoded` form. */
  value: string;
}

// The OCI image-spec digest grammar.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** True when the algorithm is one the registry can compute. */
export function isDigestAlgorithm(algorithm: string): algorithm is DigestAlgorithm {
  return Object.prototype.hasOwnProperty.call(DIGEST_ALGORITHMS, algorithm);
}

/**
 * Parses a digest; throws DIGEST_INVALID for a malformed one, an unknown algorithm, or an encoding of the wrong
 * length or alphabet (the registry accepts only lowercase hex for sha256 and sha512).
 */
export function parseDigest(input: string): Digest {
  if (typeof input !== 'string' || input.length > 256 || !DIGEST_GRAMMAR.test(input)) {
    throw new OciError('DIGEST_INVALID', 'invalid digest', { digest: String(input).slice(0, 256) });
  }
  const colon = input.indexOf(':');
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (!isDigestAlgorithm(algorithm)) {
    throw new OciError('DIGEST_INVALID', `unsupported digest algorithm ${algorithm}`, { digest: input });
  }
  if (encoded.length !== DIGEST_ALGORITHMS[algorithm] || !/^[a-f0-9]+$/.test(encoded)) {
    throw new OciError('DIGEST_INVALID', `invalid ${algorithm} digest encoding`, { digest: input });
  }
  return { algorithm, encoded, value: input };
}

/** True when a string looks like a digest (contains a colon), as opposed to a tag. */
export function looksLikeDigest(reference: string): boolean {
  return reference.includes(':');
}
