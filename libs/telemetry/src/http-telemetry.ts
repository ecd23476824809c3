/**
 * The express middleware every service app mounts first: the `registry_http_*` metrics labelled by route template
 * (the route table's names, never raw paths, so label cardinality stays bounded), the route on the request's
 * server span, and the OCI error code of an error response on that span and in `lading_http_errors_total`.
 *
 * It runs on every request of the pull path, so it allocates next to nothing per request: the series of a method
 * and route are resolved once and kept, the close listener is one shared function, and `res.end` is wrapped only
 * when a tracer made a server span whose name needs the route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request } from 'express';
import { context, trace, type Span } from '@opentelemetry/api';
import { getRPCMetadata, type RPCMetadata } from '@opentelemetry/core';
import type { RegistryMetrics } from './registry-metrics';
import { OCI_ERROR_CODE_ATTRIBUTE } from './spans';
import type { HistogramTallySeries, TallySeries } from './tally';

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

/** The series of one method and route, resolved once. */
interface RouteSeries {
  method: string;
  route: string;
  inFlight: TallySeries;
  duration: HistogramTallySeries;
  /** By status code (499: cut off before it finished). */
  answered: Map<number, TallySeries>;
}

/** What the middleware keeps on a response it measures. */
interface Measuring {
  started: number;
  series: RouteSeries;
  /** The request's server span, when a tracer made one. */
  span: Span | undefined;
  /** The OCI error code the response answers with (see `markOciError`). */
  errorCode?: string;
}

/** Marks a response measured (by an outer app's middleware: the embedded mode mounts apps in apps). */
const MEASURING = Symbol('lading.httpTelemetry');

type MeasuredResponse = ServerResponse & { [MEASURING]?: Measuring };

/**
 * Tells the HTTP telemetry which OCI error a response answers with: it is counted in `lading_http_errors_total` and
 * put on the request's server span. The one place that renders error envelopes calls it; on a response no
 * middleware measures it does nothing.
 */
export function markOciError(res: ServerResponse, code: string): void {
  const measuring = (res as MeasuredResponse)[MEASURING];
  if (!measuring) return;
  measuring.errorCode = code;
  if (measuring.span?.isRecording()) measuring.span.setAttribute(OCI_ERROR_CODE_ATTRIBUTE, code);
}

function safeRoute<Req extends IncomingMessage>(routeOf: HttpTelemetryOptions<Req>['routeOf'], req: Req, res: ServerResponse): string {
  try {
    return routeOf(req, res) ?? OTHER_ROUTE;
  } catch {
    return OTHER_ROUTE;
  }
}

/**
 * Wraps `res.end` so that the route is on the server span when the http instrumentation names it (as the response
 * finishes); express sets `rpc.route` to its mount path on the way, so ours is set last, there.
 */
function nameSpanAtEnd(res: ServerResponse, route: string, rpc: RPCMetadata | undefined, span: Span | undefined): void {
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (rpc) rpc.route = route;
    else span?.setAttribute('http.route', route);
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.end;
}

/** Creates the HTTP telemetry middleware. */
export function createHttpTelemetry<Req extends IncomingMessage = Request>(options: HttpTelemetryOptions<Req>): HttpTelemetryHandler<Req> {
  const { metrics } = options;
  const seriesByKey = new Map<string, RouteSeries>();

  function seriesOf(method: string, route: string): RouteSeries {
    const key = `${method} ${route}`;
    let series = seriesByKey.get(key);
    if (!series) {
      series = { method, route, inFlight: metrics.httpInFlight.series({ route }), duration: metrics.httpRequestDuration.series({ method, route }), answered: new Map() };
      seriesByKey.set(key, series);
    }
    return series;
  }

  // A response emits 'close' once, finished or cut off.
  function record(this: ServerResponse): void {
    const measuring = (this as MeasuredResponse)[MEASURING];
    if (!measuring) return;
    const { series } = measuring;
    series.inFlight.add(-1);
    // A response cut off before it finished is counted as 499 (client closed), as nginx does.
    const status = this.writableFinished ? this.statusCode : 499;
    let answered = series.answered.get(status);
    if (!answered) {
      answered = metrics.httpRequests.series({ method: series.method, route: series.route, code: String(status) });
      series.answered.set(status, answered);
    }
    answered.add(1);
    series.duration.record((performance.now() - measuring.started) / 1000);
    if (measuring.errorCode) metrics.httpErrors.add(1, { route: series.route, oci_code: measuring.errorCode });
  }

  return (req, res, next) => {
    const measured = res as MeasuredResponse;
    if (measured[MEASURING]) return next();
    const series = seriesOf(req.method ?? 'GET', safeRoute(options.routeOf, req, res));
    const active = context.active();
    const rpc = getRPCMetadata(active);
    const span = rpc?.span ?? trace.getSpan(active);
    measured[MEASURING] = { started: performance.now(), series, span, errorCode: undefined };
    series.inFlight.add(1);
    if (span) nameSpanAtEnd(res, series.route, rpc, span);
    res.on('close', record);
    next();
  };
}
