import { OciError } from './errors';
import { DIGEST_ALGORITHMS, isDigestAlgorithm, looksLikeDigest, parseDigest } from './digest';

const HEX64 = 'a'.repeat(40) + '0123456789abcdef0123456789'.slice(0, 24);
const HEX128 = HEX64 + HEX64;

function digestError(input: string): OciError {
  try {
    parseDigest(input);
  } catch (err) {
    return err as OciError;
  }
  throw new Error(`parseDigest accepted ${JSON.stringify(input)}`);
}

describe('parseDigest', () => {
  it('accepts a sha256 digest and splits it into algorithm and encoding', () => {
    expect(HEX64).toHaveLength(64);
    expect(parseDigest(`sha256:${HEX64}`)).toEqual({ algorithm: 'sha256', encoded: HEX64, value: `sha256:${HEX64}` });
  });

  it('accepts a sha512 digest with a 128-character encoding', () => {
    expect(parseDigest(`sha512:${HEX128}`)).toEqual({ algorithm: 'sha512', encoded: HEX128, value: `sha512:${HEX128}` });
  });

  it.each([
    ['uppercase hex', `sha256:${HEX64.toUpperCase()}`],
    ['a sha256 encoding one character short', `sha256:${HEX64.slice(1)}`],
    ['a sha256 encoding one character long', `sha256:${HEX64}0`],
    ['a sha512 algorithm with a sha256-length encoding', `sha512:${HEX64}`],
    ['a sha256 algorithm with a sha512-length encoding', `sha256:${HEX128}`],
    ['an unknown algorithm with a valid-looking encoding', `md5:${HEX64.slice(0, 32)}`],
    ['an unknown algorithm that matches the grammar', `sha256+b64u:${HEX64}`],
    ['no colon', `sha256${HEX64}`],
    ['the empty string', ''],
    ['an empty algorithm', `:${HEX64}`],
    ['an empty encoding', 'sha256:'],
    ['an uppercase algorithm', `SHA256:${HEX64}`],
    ['a non-hex character in the encoding', `sha256:${HEX64.slice(1)}g`],
    ['a separator at the start of the algorithm', `+sha256:${HEX64}`],
    ['two colons', `sha256:${HEX64}:x`],
    ['a slash in the encoding', `sha256:${HEX64.slice(1)}/`],
    ['surrounding whitespace', ` sha256:${HEX64}`],
    ['more than 256 characters', `sha256:${'a'.repeat(300)}`],
  ])('refuses %s with DIGEST_INVALID', (_what, input) => {
    const err = digestError(input);
    expect(err).toBeInstanceOf(OciError);
    expect(err.code).toBe('DIGEST_INVALID');
    expect(err.status).toBe(400);
  });

  it('refuses a non-string input with DIGEST_INVALID', () => {
    expect(digestError(42 as unknown as string).code).toBe('DIGEST_INVALID');
  });
});

describe('digest helpers', () => {
  it('knows the hex length of each supported algorithm', () => {
    expect(DIGEST_ALGORITHMS).toEqual({ sha256: 64, sha512: 128 });
  });

  it('recognises only sha256 and sha512 as algorithms, not inherited object keys', () => {
    expect(isDigestAlgorithm('sha256')).toBe(true);
    expect(isDigestAlgorithm('sha512')).toBe(true);
    expect(isDigestAlgorithm('sha384')).toBe(false);
    expect(isDigestAlgorithm('toString')).toBe(false);
  });

  it('tells a digest reference from a tag by its colon', () => {
    expect(looksLikeDigest(`sha256:${HEX64}`)).toBe(true);
    expect(looksLikeDigest('v1.0')).toBe(false);
  });
});
