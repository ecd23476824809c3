import { ERROR_CODES, OciError, OciErrorCode, errors, toErrorEnvelope } from './errors';

describe('ERROR_CODES', () => {
  it.each<[OciErrorCode, number]>([
    ['BLOB_UNKNOWN', 404],
    ['BLOB_UPLOAD_INVALID', 400],
    ['BLOB_UPLOAD_UNKNOWN', 404],
    ['DIGEST_INVALID', 400],
    ['MANIFEST_BLOB_UNKNOWN', 400],
    ['MANIFEST_INVALID', 400],
    ['MANIFEST_UNKNOWN', 404],
    ['NAME_INVALID', 400],
    ['NAME_UNKNOWN', 404],
    ['SIZE_INVALID', 400],
    ['UNAUTHORIZED', 401],
    ['DENIED', 403],
    ['UNSUPPORTED', 405],
    ['TOOMANYREQUESTS', 429],
    ['PAGINATION_NUMBER_INVALID', 400],
    ['RANGE_INVALID', 416],
    ['NOT_FOUND', 404],
    ['UNAVAILABLE', 503],
    ['UNKNOWN', 500],
  ])('answers %s with HTTP %i', (code, status) => {
    expect(ERROR_CODES[code].status).toBe(status);
    expect(new OciError(code).status).toBe(status);
  });

  it('declares the thirteen codes of the OCI Distribution Spec', () => {
    const specCodes = [
      'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
      'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
    ];
    for (const code of specCodes) expect(Object.keys(ERROR_CODES)).toContain(code);
  });
});

describe('OciError', () => {
  it('uses the default message of its code, and takes an explicit message, detail, status and headers', () => {
    const plain = new OciError('BLOB_UNKNOWN');
    expect(plain.message).toBe('blob unknown to registry');
    expect(plain.detail).toBeUndefined();
    expect(plain.headers).toEqual({});
    expect(plain).toBeInstanceOf(Error);
    const custom = new OciError('SIZE_INVALID', 'too big', { limit: 1 }, { status: 413, headers: { 'Retry-After': '1' } });
    expect([custom.code, custom.message, custom.detail, custom.status, custom.headers]).toEqual(['SIZE_INVALID', 'too big', { limit: 1 }, 413, { 'Retry-After': '1' }]);
  });
});

describe('toErrorEnvelope', () => {
  it('renders the spec envelope with code, message and detail', () => {
    expect(toErrorEnvelope(errors.blobUnknown('sha256:abc'))).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: 'sha256:abc' } }],
    });
  });

  it('renders a missing detail as null', () => {
    expect(toErrorEnvelope(new OciError('UNSUPPORTED')).errors[0]).toEqual({ code: 'UNSUPPORTED', message: 'the operation is unsupported', detail: null });
  });

  it('turns a value that is not an OciError into UNKNOWN without its message, as its TSDoc promises', () => {
    const internal = new Error('connection to postgres://admin:secret@db failed');
    const envelope = toErrorEnvelope(internal as unknown as OciError);
    expect(envelope.errors[0].code).toBe('UNKNOWN');
    expect(JSON.stringify(envelope)).not.toContain('secret');
  });
});

describe('errors shorthands', () => {
  it('builds the 416 with a Range header naming the bytes received so far', () => {
    const err = errors.rangeInvalid('out of order', 1000);
    expect([err.code, err.status, err.headers]).toEqual(['RANGE_INVALID', 416, { Range: '0-999' }]);
    expect(errors.rangeInvalid('empty', 0).headers).toEqual({ Range: '0-0' });
  });

  it('builds a 413 SIZE_INVALID naming the limit', () => {
    const err = errors.tooLarge('manifest', 4096);
    expect([err.code, err.status, err.detail]).toEqual(['SIZE_INVALID', 413, { limit: 4096 }]);
    expect(err.message).toContain('4096');
  });

  it.each<[string, OciError, OciErrorCode, number]>([
    ['uploadUnknown', errors.uploadUnknown('u1'), 'BLOB_UPLOAD_UNKNOWN', 404],
    ['manifestBlobUnknown', errors.manifestBlobUnknown('sha256:x'), 'MANIFEST_BLOB_UNKNOWN', 400],
    ['nameUnknown', errors.nameUnknown('a/b'), 'NAME_UNKNOWN', 404],
    ['paginationInvalid', errors.paginationInvalid({ n: 'x' }), 'PAGINATION_NUMBER_INVALID', 400],
    ['unsupported', errors.unsupported(), 'UNSUPPORTED', 405],
    ['unavailable', errors.unavailable(), 'UNAVAILABLE', 503],
  ])('%s builds %s with status %i', (_name, err, code, status) => {
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
  });
});
