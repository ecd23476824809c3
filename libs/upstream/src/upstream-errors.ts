/**
 * What can go wrong asking an upstream registry, as typed errors that know nothing about how the cache answers its
 * own clients (the pull-through code maps them onto OCI errors).
 */

/** The upstream answered, or could not be asked, in a way the cache cannot use. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    /** The upstream's HTTP status, when it answered. */
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The upstream has no such repository, manifest, tag or blob (404). */
export class UpstreamNotFoundError extends UpstreamError {}

/** The upstream refused the credentials (or the lack of them) for this repository (401 after the token flow, 403). */
export class UpstreamUnauthorizedError extends UpstreamError {}

/** The upstream is rate-limiting (429); `retryAfterMs` is when it said to come back (Retry-After), or a default. */
export class UpstreamRateLimitedError extends UpstreamError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message, 429);
  }
}

/** The upstream cannot be reached, timed out, failed (5xx) or answered something that is not a registry's answer. */
export class UpstreamUnavailableError extends UpstreamError {}
