/**
 * The express middleware every service app mounts first: the `registry_http_*` metrics labelled by route template
 * (the route table's names, never raw paths, so label cardinality stays bounded), the route on the request's
 * server span, and the OCI error code of an error response on that span and in `lading_http_errors_total`.
 */
import type { RequestHandler, Request, Response } from 'express';
import { context, trace } from '@opentelemetry/api';
import { getRPCMetadata } from '@opentelemetry/core';
import type { RegistryMetrics } from './registry-metrics';
import { OCI_ERROR_CODE_ATTRIBUTE } from './spans';

/** Marks a response already measured by an outer app's middleware. */
const MEASURED = Symbol('lading.httpTelemetry');

/** The route label of requests outside the route table. */
export const OTHER_ROUTE = 'other';

/** What the middleware needs. */
export interface HttpTelemetryOptions {
  metrics: RegistryMetrics;
  /** The route table name of a request (e.g. from `matchRoute(req.path)?.route.name`); may throw or return undefined. */
  routeOf: (req: Request) => string | undefined;
}

/** The `errors[0].code` of an OCI error envelope, if `body` is one. */
export function envelopeErrorCode(body: unknown): string | undefined {
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8', 0, Math.min(body.length, 4096)) : undefined;
  if (!text || !text.startsWith('{"errors"')) return undefined;
  const m = /^\{"errors":\[\{"code":"([A-Z_]+)"/.exec(text);
  return m?.[1];
}

function safeRoute(routeOf: (req: Request) => string | undefined, req: Request): string {
  try {
    return routeOf(req) ?? OTHER_ROUTE;
  } catch {
    return OTHER_ROUTE;
  }
}

/** Creates the HTTP telemetry middleware. */
export function createHttpTelemetry(options: HttpTelemetryOptions): RequestHandler {
  const { metrics } = options;
  return (req: Request, res: Response, next) => {
    // Mounted in every service app and in the gateway, it meets the embedded mode's requests twice: count once.
    const seen = res as Response & { [MEASURED]?: true };
    if (seen[MEASURED]) return next();
    seen[MEASURED] = true;
    const started = performance.now();
    const route = safeRoute(options.routeOf, req);
    const method = req.method;
    const active = context.active();
    const rpc = getRPCMetadata(active);
    const serverSpan = rpc?.span ?? trace.getSpan(active);
    metrics.httpInFlight.add(1, { route });

    const end = res.end;
    res.end = function (this: Response, ...args: unknown[]) {
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
      return (end as (...a: unknown[]) => Response).apply(this, args);
    } as typeof res.end;

    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      metrics.httpInFlight.add(-1, { route });
      // A response cut off before it finished is counted as 499 (client closed), as nginx does.
      const code = res.writableFinished ? String(res.statusCode) : '499';
      metrics.httpRequests.add(1, { method, route, code });
      metrics.httpRequestDuration.record((performance.now() - started) / 1000, { method, route });
    };
    res.once('finish', record);
    res.once('close', record);
    next();
  };
}
