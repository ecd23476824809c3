/**
 * Whether a repository exists, for the mirror's "local names first" rule (`withMirrorNamespace`) in a distributed
 * gateway: asked of the manifest service, with a tag list of no tags (`GET /v2/<name>/tags/list?n=0`: 200 when the
 * repository exists, 404 NAME_UNKNOWN when it does not).
 *
 * Why ask instead of reading the database: the distributed gateway holds no database, by design. It is the public
 * door, scaled for connections, and giving every replica a Postgres pool and its credentials for one lookup would
 * spread both to the edge; the manifest service owns repositories and already answers this question. The answer is
 * never stale (a push to a name is seen at once, as in the embedded mode), at the cost of one round trip on a
 * keep-alive pool, and only for GET/HEAD pulls of names outside every proxy namespace.
 */
import type { ServiceClient } from '@lading/http';

/** Builds the existence check over a client of the manifest service; rejects when that service cannot answer. */
export function askRepositoryExists(manifests: ServiceClient): (repository: string) => Promise<boolean> {
  return async (repository) => {
    const answer = await manifests.ask('GET', `/v2/${repository}/tags/list?n=0`);
    if (answer.status === 200) return true;
    if (answer.status === 404) return false;
    throw new Error(`the manifest service answered ${answer.status} to a repository lookup`);
  };
}
