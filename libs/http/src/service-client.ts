/**
 * A service asking another service a question over HTTP (distributed mode): the manifest service asking a blob
 * replica to make a blob present, the gateway asking the manifest service whether a repository exists. Only the
 * answer's status and headers matter; any body is read and dropped. Replicas are taken in turn, and one that cannot
 * be reached is skipped (the questions are reads, so asking the next replica is safe).
 */
import { Pool } from 'undici';

/** Settings of a client of one service. */
export interface ServiceClientOptions {
  /** The service's name, for errors. */
  service: string;
  /** Base URLs of the service's replicas. */
  urls: string[];
  /** Longest wait for a replica's response headers. */
  headersTimeoutMs: number;
}

/** A replica's answer: its status and headers. */
export interface ServiceAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** Asks a service's replicas; see the top of this file. */
export interface ServiceClient {
  /** Sends a body-less request (`GET` or `HEAD`) to one replica; rejects when no replica can be reached. */
  ask(method: 'GET' | 'HEAD', path: string, headers?: Record<string, string>): Promise<ServiceAnswer>;
  close(): Promise<void>;
}

/** Failures before a replica took the request at all: the next replica is asked. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'ECONNRESET']);

/** Creates a client of a service's replicas (keep-alive pools, one per replica). */
export function createServiceClient(options: ServiceClientOptions): ServiceClient {
  if (options.urls.length === 0) throw new Error(`no URLs configured for the ${options.service} service`);
  const pools = options.urls.map((url) => new Pool(url, { connections: 16, keepAliveTimeout: 30_000, headersTimeout: options.headersTimeoutMs, connectTimeout: 2_000 }));
  let next = 0;
  return {
    async ask(method, path, headers = {}) {
      const start = next++ % pools.length;
      let lastError: unknown;
      for (let attempt = 0; attempt < pools.length; attempt++) {
        try {
          const answer = await pools[(start + attempt) % pools.length].request({ method, path, headers });
          await answer.body.dump();
          return { status: answer.statusCode, headers: answer.headers };
        } catch (err) {
          lastError = err;
          if (!UNREACHABLE.has((err as { code?: string })?.code ?? '')) break;
        }
      }
      throw new Error(`no replica of the ${options.service} service answered`, { cause: lastError });
    },
    async close() {
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}
