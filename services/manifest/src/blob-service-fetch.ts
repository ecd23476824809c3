/**
 * The manifest service's `fetchBlob` in the distributed mode: the blobs a fetched manifest references are brought in
 * by the blob service, asked over HTTP with a HEAD of the blob (a HEAD of a miss in a proxied repository fetches the
 * blob whole, then answers). A service never imports another; this way one piece of code (the blob service's
 * pull-through, with its single flight across replicas) fetches every blob, in both modes. The caller the gateway
 * verified is passed on with its proof, so the blob's `blob.uploaded` event names the same actor as the manifest's.
 */
import { randomUUID } from 'node:crypto';
import { subjectOfIdentity } from '@lading/access';
import type { EventContext } from '@lading/events';
import { PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER, REQUEST_ID_HEADER, type ServiceClient, principalProof } from '@lading/http';
import { type Digest, OciError, errors } from '@lading/oci';

/** What the blob fetch over HTTP is built from. */
export interface BlobServiceFetchDeps {
  /** A client of the blob service's replicas (`upstreams.blob`). */
  blobs: ServiceClient;
  /** `upstreams.secret`, to prove the caller passed on; without it the blob service records an anonymous actor. */
  principalSecret?: string;
}

/** Makes a proxied repository hold a blob by asking the blob service for it; throws the OCI error it answered. */
export function createBlobServiceFetch(deps: BlobServiceFetchDeps): (repository: string, digest: Digest, context: EventContext) => Promise<void> {
  return async (repository, digest, context) => {
    const request = context.request;
    const requestId = request?.id ?? randomUUID();
    const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
    if (request?.useragent) headers['user-agent'] = request.useragent;
    if (request?.addr) headers['x-forwarded-for'] = request.addr;
    if (context.traceparent) headers.traceparent = context.traceparent;
    const principal = subjectOfIdentity(context.actor);
    if (principal && deps.principalSecret) {
      headers[PRINCIPAL_HEADER] = principal;
      headers[PRINCIPAL_PROOF_HEADER] = principalProof(deps.principalSecret, requestId, principal);
    }
    let answer;
    try {
      answer = await deps.blobs.ask('HEAD', `/v2/${repository}/blobs/${digest.value}`, headers);
    } catch {
      throw errors.unavailable('the blob service is unavailable');
    }
    if (answer.status === 200) return;
    if (answer.status === 404) throw errors.blobUnknown(digest.value);
    if (answer.status === 429) {
      const retryAfter = answer.headers['retry-after'];
      const headers = typeof retryAfter === 'string' ? { 'Retry-After': retryAfter } : undefined;
      throw new OciError('TOOMANYREQUESTS', 'the upstream is rate-limiting the cache; retry later', null, { headers });
    }
    throw errors.unavailable(`${digest.value} could not be fetched into ${repository}`);
  };
}
