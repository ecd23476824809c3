/** How the pull-through cache answers its clients when the upstream could not give it what they asked for. */
import { OciError, errors } from '@lading/oci';
import { UpstreamNotFoundError, UpstreamRateLimitedError, UpstreamUnauthorizedError, UpstreamUnavailableError } from './upstream-errors';

/**
 * The OCI error a client gets for an upstream failure: not found (and refused: registries such as Docker Hub answer
 * 401 for a repository that does not exist) as `notFound`, rate limiting as TOOMANYREQUESTS with Retry-After, and
 * anything else as UNAVAILABLE (503), never a 500. Messages name the namespace, never the upstream's URL or
 * credentials; anything that is no upstream error is returned as it is.
 */
export function ociErrorOfUpstream(err: unknown, namespace: string, notFound: () => OciError): unknown {
  if (err instanceof UpstreamNotFoundError) return notFound();
  if (err instanceof UpstreamUnauthorizedError) {
    const found = notFound();
    return new OciError(found.code, `${found.message} (the upstream of ${namespace} refused access: it may not exist there)`, found.detail);
  }
  if (err instanceof UpstreamRateLimitedError) {
    const seconds = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
    return new OciError('TOOMANYREQUESTS', `the upstream of ${namespace} is rate-limiting the cache; retry later`, null, { headers: { 'Retry-After': String(seconds) } });
  }
  if (err instanceof UpstreamUnavailableError) return errors.unavailable(`the upstream of ${namespace} is unavailable and this content is not cached`);
  return err;
}
