/**
 * The fault test's HTTP client: every request has a hard deadline (a request that does not finish in time is a
 * hang, which the test counts as a failure), and every answer is classified once: 5xx bodies must be the OCI
 * envelope without a stack trace, 500s are failures, 503 UNAVAILABLE is what a missing dependency looks like.
 */
import { Agent, request } from 'undici';

/** An HTTP exchange; status 0 when there was no answer (a transport error, or a hang past the deadline). */
export interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
  /** Why there was no answer (status 0). */
  error?: string;
  /** No answer within the deadline. */
  hung?: boolean;
}

export type Result = Resp;

/** Options of one request. */
export interface CallOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** The deadline of the whole exchange (headers and body). */
  timeoutMs?: number;
  /** Where the request came from, for failure messages. */
  label?: string;
}

/** Counters of everything the client saw. */
export class HttpStats {
  requests = 0;
  unavailable503 = 0;
  bad503 = 0;
  server500 = 0;
  other5xx = 0;
  lb502 = 0;
  transport = 0;
  hung = 0;
  stackTraces = 0;
  /** Failure messages (500s, hangs, stacks, malformed 503s), capped. */
  problems: string[] = [];
  /** When each 502/504 of the load balancer happened (ms since epoch). */
  lbErrorTimes: number[] = [];

  problem(message: string): void {
    if (this.problems.length < 200) this.problems.push(message);
  }
}

const STACK = /\n\s+at\s+\S.*(\(|:\d+:\d+)|node_modules\/|\.ts:\d+:\d+/;

/** The OCI error code of an error body, if it is the OCI envelope. */
export function errorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown }> };
    const code = parsed?.errors?.[0]?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** The first value of a header. */
export function header(res: Resp, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** An HTTP client bound to one dispatcher and one set of counters. */
export class HttpClient {
  readonly stats = new HttpStats();
  private readonly agent: Agent;

  constructor(
    private readonly defaultTimeoutMs: number,
    connections = 64,
  ) {
    this.agent = new Agent({ connections, keepAliveTimeout: 4_000, headersTimeout: 0, bodyTimeout: 0, connect: { timeout: 5_000 } });
  }

  async call(method: string, url: string, options: CallOptions = {}): Promise<Result> {
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const started = Date.now();
    const signal = AbortSignal.timeout(timeoutMs);
    this.stats.requests++;
    const where = `${options.label ? `${options.label}: ` : ''}${method} ${new URL(url).pathname}`;
    try {
      const res = await request(url, {
        method: method as 'GET',
        headers: options.headers,
        body: options.body,
        dispatcher: this.agent,
        signal,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const out: Resp = { status: res.statusCode, headers: res.headers as Resp['headers'], body, ms: Date.now() - started };
      this.classify(method, where, out);
      return out;
    } catch (err) {
      const ms = Date.now() - started;
      const hung = signal.aborted;
      const e = err as { code?: string; message?: string; cause?: { code?: string } };
      const error = `${e?.code ?? e?.cause?.code ?? 'ERR'} ${String(e?.message ?? err).slice(0, 120)}`;
      if (hung) {
        this.stats.hung++;
        this.stats.problem(`hang: ${where} did not finish within ${timeoutMs} ms`);
      } else {
        // A connection the load balancer closed (after an early error answer, or a gateway that died).
        this.stats.transport++;
      }
      return { status: 0, headers: {}, body: Buffer.alloc(0), error, hung, ms };
    }
  }

  private classify(method: string, where: string, res: Resp): void {
    const text = res.body.toString('utf8');
    if (res.status >= 400 && STACK.test(text)) {
      this.stats.stackTraces++;
      this.stats.problem(`stack trace in a ${res.status} body: ${where}: ${text.slice(0, 200)}`);
    }
    if (res.status === 503) {
      const code = errorCode(res.body);
      if (code === 'UNAVAILABLE' || (method === 'HEAD' && res.body.length === 0)) this.stats.unavailable503++;
      else {
        this.stats.bad503++;
        this.stats.problem(`503 without the OCI UNAVAILABLE envelope: ${where}: ${text.slice(0, 200)}`);
      }
    } else if (res.status === 500) {
      this.stats.server500++;
      this.stats.problem(`500: ${where}: ${text.slice(0, 200)}`);
    } else if (res.status === 502 || res.status === 504) {
      // The load balancer's answer for a request in flight on a gateway that was just killed.
      this.stats.lb502++;
      this.stats.lbErrorTimes.push(Date.now());
    } else if (res.status > 500) {
      this.stats.other5xx++;
      this.stats.problem(`${res.status}: ${where}: ${text.slice(0, 200)}`);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** True when an answer means "try again": no answer, or a 5xx (already counted by the client). */
export function isRetryable(res: Result): boolean {
  return res.status === 0 || res.status >= 500;
}

/** A short description of an answer, for messages. */
export function describe(res: Result): string {
  if (res.status === 0) return res.hung ? `hang (${res.ms} ms)` : `no answer (${res.error})`;
  const code = errorCode(res.body);
  return `${res.status}${code ? ` ${code}` : ''}`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
