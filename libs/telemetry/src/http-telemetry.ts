/**
 * The express middleware every service app mounts first: the `registry_http_*` metrics labelled by route template
 * (the route table's names, never raw paths, so label cardinality stays bounded), the route on the request's
 * server span, and the OCI error code of an error response on that span and in `lading_http_errors_total`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import { context, trace } from '@opentelemetry/api';
import { getRPCMetadata } from '@opentelemetry/core';
import type { RegistryMetrics } from './registry-metrics';
import { OCI_ERROR_CODE_ATTRIBUTE } from './spans';

/** Marks a response already measured by an outer app's middleware. */
const MEASURED = Symbol('lading.httpTelemetry');

/** The route label of requests outside the route table. */
export const OTHER_ROUTE = 'other';

/** What the middleware needs. */
export interface HttpTelemetryOptions<Req extends IncomingMessage = Request> {
  metrics: RegistryMetrics;
  /**
   * The route table name of a request (e.g. from `matchRoute(req.path)?.route.name`); may throw or return undefined.
   * It gets the response too, where a front may leave the route it matched for those after it.
   */
  routeOf: (req: Req, res: ServerResponse) => string | undefined;
}

/**
 * The middleware: express's shape, and it works as well on node's bare request and response (the pull fast path's),
 * given a `routeOf` that reads `req.url` rather than express's `req.path`.
 */
export type HttpTelemetryHandler<Req extends IncomingMessage = Request> = (req: Req, res: ServerResponse, next: () => void) => void;

/** The `errors[0].code` of an OCI error envelope, if `body` is one. */
export function envelopeErrorCode(body: unknown): string | undefined {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8', 0, Math.min(body.length, 4096)) : undefined;
  if (!text || !text.startsWith('{"errors"')) return undefined;
  const m = /^\{"errors":\[\{"code":"([A-Z_]+)"/.exec(text);
  return m?.[1];
}

function safeRoute<Req extends IncomingMessage>(routeOf: HttpTelemetryOptions<Req>['routeOf'], req: Req, res: ServerResponse): string {
  try {
    return routeOf(req, res) ?? OTHER_ROUTE;
  } catch {
    return OTHER_ROUTE;
  }
}

/** Creates the HTTP telemetry middleware. */
export function createHttpTelemetry<Req extends IncomingMessage = Request>(options: HttpTelemetryOptions<Req>): HttpTelemetryHandler<Req> {
  const { metrics } = options;
  return (req, res, next) => {
    // Mounted in every service app and in the gateway, it meets the embedded mode's requests twice: count once.
    const seen = res as ServerResponse & { [MEASURED]?: true };
    if (seen[MEASURED]) return next();
    seen[MEASURED] = true;
    const started = performance.now();
    const route = safeRoute(options.routeOf, req, res);
    const method = req.method ?? 'GET';
    const active = context.active();
    const rpc = getRPCMetadata(active);
    const serverSpan = rpc?.span ?? trace.getSpan(active);
    metrics.httpInFlight.add(1, { route });

    const end = res.end;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      // The http instrumentation names the server span `<method> <rpc.route>` when the response finishes; express
      // sets rpc.route to its mount path on the way, so ours is set last, here.
      if (rpc) rpc.route = route;
      else serverSpan?.setAttribute('http.route', route);
      // The error envelope is rendered once, by res.end(body); reading its code there needs no help from handlers.
      if (res.statusCode >= 400) {
        const code = envelopeErrorCode(args[0]);
        if (code) {
          metrics.httpErrors.add(1, { route, oci_code: code });
          if (serverSpan?.isRecording()) serverSpan.setAttribute(OCI_ERROR_CODE_ATTRIBUTE, code);
        }
      }
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.end;

    // A response emits 'close' once, finished or cut off; one listener is enough.
    res.on('close', () => {
      metrics.httpInFlight.add(-1, { route });
      // A response cut off before it finished is counted as 499 (client closed), as nginx does.
      const code = res.writableFinished ? String(res.statusCode) : '499';
      metrics.httpRequests.add(1, { method, route, code });
      metrics.httpRequestDuration.record((performance.now() - started) / 1000, { method, route });
    });
    next();
  };
}
