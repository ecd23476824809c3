/**
 * A service asking another service a question over HTTP (distributed mode): the manifest service asking a blob
 * replica to make a blob present, the gateway asking the manifest service whether a repository exists, the auth
 * service asking the manifest service to delete a repository. Questions (`ask`) only need the status and headers;
 * `call` also reads a bounded body. Replicas are taken in turn, and one that cannot be reached is skipped (for a
 * write, only one that provably never received it).
 */
import type { Dispatcher } from 'undici';
import { loadUndici } from '@lading/client';

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

/** A replica's answer with its body (`ServiceClient.call`). */
export interface ServiceReply extends ServiceAnswer {
  body: Buffer;
}

/** Asks a service's replicas; see the top of this file. */
export interface ServiceClient {
  /** Sends a body-less request (`GET` or `HEAD`) to one replica; rejects when no replica can be reached. */
  ask(method: 'GET' | 'HEAD', path: string, headers?: Record<string, string>): Promise<ServiceAnswer>;
  /**
   * Sends a body-less request of any method to one replica and reads the answer's body (at most `maxBytes`, 1 MiB by
   * default). Only a replica that refused the connection is passed over for the next (a reset socket may have
   * delivered the request), so a write is never sent twice.
   */
  call(method: 'GET' | 'DELETE' | 'POST', path: string, headers?: Record<string, string>, maxBytes?: number): Promise<ServiceReply>;
  close(): Promise<void>;
}

/** Failures before a replica took the request at all: the next replica is asked. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'ECONNRESET']);

/** Failures that prove the replica never received the request: only these pass a write over to the next replica. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']);

/** Creates a client of a service's replicas (keep-alive pools, one per replica). */
export function createServiceClient(options: ServiceClientOptions): ServiceClient {
  if (options.urls.length === 0) throw new Error(`no URLs configured for the ${options.service} service`);
  const { Pool } = loadUndici();
  const pools = options.urls.map((url) => new Pool(url, { connections: 16, keepAliveTimeout: 30_000, headersTimeout: options.headersTimeoutMs, connectTimeout: 2_000 }));
  let next = 0;
  /** Sends to the replicas in turn, from the next one, until one takes the request; `read` reads its answer. */
  async function send<T>(method: string, path: string, headers: Record<string, string>, passOver: ReadonlySet<string>, read: (answer: Dispatcher.ResponseData) => Promise<T>): Promise<T> {
    const start = next++ % pools.length;
    let lastError: unknown;
    for (let attempt = 0; attempt < pools.length; attempt++) {
      let answer: Dispatcher.ResponseData;
      try {
        answer = await pools[(start + attempt) % pools.length].request({ method: method as Dispatcher.HttpMethod, path, headers });
      } catch (err) {
        lastError = err;
        if (passOver.has((err as { code?: string })?.code ?? '')) continue;
        break;
      }
      return read(answer);
    }
    throw new Error(`no replica of the ${options.service} service answered`, { cause: lastError });
  }
  return {
    ask(method, path, headers = {}) {
      return send(method, path, headers, UNREACHABLE, async (answer) => {
        await answer.body.dump();
        return { status: answer.statusCode, headers: answer.headers };
      });
    },
    call(method, path, headers = {}, maxBytes = 1 << 20) {
      return send(method, path, headers, NEVER_CONNECTED, async (answer) => {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of answer.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) {
            answer.body.destroy();
            // Not UNREACHABLE: the request was taken, so it is not sent again.
            throw new Error(`the ${options.service} service's answer exceeds ${maxBytes} bytes`);
          }
          chunks.push(chunk);
        }
        return { status: answer.statusCode, headers: answer.headers, body: Buffer.concat(chunks) };
      });
    },
    async close() {
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}
