/**
 * The OCI error-code registry: every error the registry can answer with is declared here once,
 * with its HTTP status and default message, and one function renders the `{"errors":[...]}` envelope.
 */

/** Every error code the registry can answer with, and its HTTP status and message. */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Codes CNCF Distribution answers with that the OCI list does not name; clients know them.
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  SEARCH_INVALID: { status: 400, message: 'invalid search request' },
  NOT_FOUND: { status: 404, message: 'the requested API endpoint does not exist' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

/** One of the registry's error codes. */
export type OciErrorCode = keyof typeof ERROR_CODES;

/** A typed registry error: thrown by handlers, rendered once into the OCI error envelope. */
export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers the error needs (e.g. `Range` on a 416, `Retry-After` on a 429). */
  readonly headers: Record<string, string>;

  constructor(code: OciErrorCode, message?: string, detail?: unknown, options: { status?: number; headers?: Record<string, string> } = {}) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'OciError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = detail;
    this.headers = options.headers ?? {};
  }
}

/** The body of an error response, as the OCI Distribution Spec defines it. */
export interface ErrorEnvelope {
  errors: Array<{ code: OciErrorCode; message: string; detail?: unknown }>;
}

/** Renders an error as the OCI envelope; anything that is not an OciError becomes UNKNOWN without leaking internals. */
export function toErrorEnvelope(err: OciError): ErrorEnvelope {
  if (!(err instanceof OciError)) return { errors: [{ code: 'UNKNOWN', message: ERROR_CODES.UNKNOWN.message, detail: null }] };
  return { errors: [{ code: err.code, message: err.message, detail: err.detail ?? null }] };
}

/** Shorthand constructors for the errors handlers throw most. */
export const errors = {
  blobUnknown: (digest?: string) => new OciError('BLOB_UNKNOWN', undefined, digest ? { digest } : undefined),
  uploadUnknown: (id?: string) => new OciError('BLOB_UPLOAD_UNKNOWN', undefined, id ? { uuid: id } : undefined),
  uploadInvalid: (message: string, detail?: unknown) => new OciError('BLOB_UPLOAD_INVALID', message, detail),
  digestInvalid: (message: string = ERROR_CODES.DIGEST_INVALID.message, detail?: unknown) => new OciError('DIGEST_INVALID', message, detail),
  manifestInvalid: (message: string, detail?: unknown) => new OciError('MANIFEST_INVALID', message, detail),
  manifestUnknown: (reference?: string) => new OciError('MANIFEST_UNKNOWN', undefined, reference ? { reference } : undefined),
  manifestBlobUnknown: (digest: string) => new OciError('MANIFEST_BLOB_UNKNOWN', undefined, { digest }),
  nameInvalid: (message: string = ERROR_CODES.NAME_INVALID.message, detail?: unknown) => new OciError('NAME_INVALID', message, detail),
  nameUnknown: (name: string) => new OciError('NAME_UNKNOWN', undefined, { name }),
  sizeInvalid: (message: string, detail?: unknown) => new OciError('SIZE_INVALID', message, detail),
  unsupported: (message: string = ERROR_CODES.UNSUPPORTED.message) => new OciError('UNSUPPORTED', message),
  rangeInvalid: (message: string, currentSize: number) =>
    new OciError('RANGE_INVALID', message, undefined, { headers: { Range: `0-${Math.max(currentSize - 1, 0)}` } }),
  tooLarge: (what: string, limit: number) =>
    new OciError('SIZE_INVALID', `${what} exceeds the limit of ${limit} bytes`, { limit }, { status: 413 }),
  paginationInvalid: (detail: unknown) => new OciError('PAGINATION_NUMBER_INVALID', undefined, detail),
  unavailable: (message: string = ERROR_CODES.UNAVAILABLE.message) => new OciError('UNAVAILABLE', message),
};
