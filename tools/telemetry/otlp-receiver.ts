/**
 * An OTLP/HTTP receiver for tests: processes under test export to it (`OTEL_EXPORTER_OTLP_ENDPOINT=<url>`, JSON or
 * protobuf), it keeps every span, and a test asks for "the spans of trace T", "the spans of service S", or waits
 * until some span arrives. Metrics and logs posts are counted and acknowledged, not decoded.
 */
import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { decodeTraceRequest } from './otlp-protobuf';
import type { OtlpJsonAnyValue, OtlpJsonKeyValue, OtlpJsonTraceRequest } from './otlp-types';

/** A received span, flattened: its service and scope beside it, attributes as a plain object. */
export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string }>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
}

/** OTLP span kinds, by name. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/** A running receiver. */
export interface OtlpReceiver {
  /** The endpoint to give as OTEL_EXPORTER_OTLP_ENDPOINT (`http://127.0.0.1:<port>`). */
  readonly url: string;
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** The spans of one trace. */
  trace(traceId: string): ReceivedSpan[];
  /** The spans one service (`service.name`) sent, optionally of one trace. */
  byService(service: string, traceId?: string): ReceivedSpan[];
  /** Resolves with the first span matching `predicate`, waiting up to `timeoutMs`; rejects naming what it saw. */
  waitFor(predicate: (span: ReceivedSpan) => boolean, timeoutMs?: number, what?: string): Promise<ReceivedSpan>;
  /** Export requests received, by signal and content type (`traces application/json`: 3). */
  readonly requests: Record<string, number>;
  close(): Promise<void>;
}

/** Normalises an id to lowercase hex (OTLP/JSON uses hex; protobuf's JSON mapping would use base64). */
function hexId(id: string | undefined): string {
  if (!id) return '';
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 32 || id.length === 16)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

function plainValue(value: OtlpJsonAnyValue | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(plainValue);
  if (value.kvlistValue) return plainAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return undefined;
}

function plainAttributes(list: OtlpJsonKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = plainValue(kv.value);
  return out;
}

/** Flattens an export request into spans. */
export function flattenTraceRequest(request: OtlpJsonTraceRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = plainAttributes(rs.resource?.attributes);
    const service = String(resource['service.name'] ?? '');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          service,
          scope: ss.scope?.name ?? '',
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          name: s.name,
          kind: Number(s.kind ?? 0),
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
          attributes: plainAttributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: plainAttributes(e.attributes) })),
          links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId), spanId: hexId(l.spanId) })),
          status: { code: Number(s.status?.code ?? 0), message: s.status?.message || undefined },
        });
      }
    }
  }
  return out;
}

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

/** Starts a receiver on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  const requests: Record<string, number> = {};
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const signal = (req.url ?? '').replace(/^\/v1\//, '').replace(/\?.*$/, '');
      const type = String(req.headers['content-type'] ?? '').split(';')[0];
      requests[`${signal} ${type}`] = (requests[`${signal} ${type}`] ?? 0) + 1;
      try {
        const body = await bodyOf(req);
        if (req.method === 'POST' && signal === 'traces') {
          const request = type === 'application/x-protobuf' ? decodeTraceRequest(body) : (JSON.parse(body.toString('utf8')) as OtlpJsonTraceRequest);
          received.push(...flattenTraceRequest(request));
          for (const wake of [...waiters]) wake();
        }
        // An empty Export*ServiceResponse: `{}` in JSON, zero bytes in protobuf.
        res.writeHead(200, { 'content-type': type === 'application/x-protobuf' ? type : 'application/json' });
        res.end(type === 'application/x-protobuf' ? '' : '{}');
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(String((err as Error).message));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans: () => [...received],
    trace: (traceId) => received.filter((s) => s.traceId === traceId),
    byService: (service, traceId) => received.filter((s) => s.service === service && (traceId === undefined || s.traceId === traceId)),
    waitFor(predicate, timeoutMs = 15_000, what = 'a matching span') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = received.find(predicate);
          if (!found) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          const seen = received.map((s) => `${s.service}: ${s.name}`).slice(-40).join('; ');
          reject(new Error(`no span within ${timeoutMs} ms: ${what}; ${received.length} received (last: ${seen || 'none'})`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        const wake = () => void check();
        if (!check()) waiters.add(wake);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
