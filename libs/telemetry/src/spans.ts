/**
 * Lading's own spans, where no instrumentation makes them (storage calls, the outbox relay, GC reviews, webhook
 * deliveries), and the trace context that crosses the outbox and the bus as a W3C `traceparent` string.
 * Everything here goes through `@opentelemetry/api`: with no SDK started it costs next to nothing and records nothing.
 */
import {
  Attributes,
  Context,
  Link,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  TextMapGetter,
  TextMapSetter,
  context,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator, getRPCMetadata } from '@opentelemetry/core';

/** The instrumentation scope of Lading's own spans. */
export const TRACER_NAME = 'lading';

/** The span attribute that carries the OCI error code of a failed request or call. */
export const OCI_ERROR_CODE_ATTRIBUTE = 'oci.error.code';

/** Where a span hangs: under a context, under a `traceparent` string (parented), or linked to some. */
export interface SpanPlacement {
  kind?: SpanKind;
  /** The parent: a context, or a W3C `traceparent`; default the active context. A malformed traceparent is ignored. */
  parent?: Context | string;
  /** Spans this one is linked to (for example the Kafka message a consumer span handles). */
  links?: Link[];
}

/** The OCI error code of a thrown value, if it is an OciError (recognised by shape: this lib knows no OCI types). */
export function ociErrorCodeOf(err: unknown): string | undefined {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e && typeof e === 'object' && e.name === 'OciError' && typeof e.code === 'string' ? e.code : undefined;
}

/**
 * Runs `fn` inside a new span `name`: the span ends when `fn` settles; a thrown error is recorded as an exception
 * and sets the status to ERROR (and `oci.error.code` for OCI errors), then propagates unchanged.
 */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T> | T, placement: SpanPlacement = {}): Promise<T> {
  const parent = placementContext(placement.parent);
  const span = trace.getTracer(TRACER_NAME).startSpan(name, { kind: placement.kind ?? SpanKind.INTERNAL, attributes, links: placement.links }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    recordFailure(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span failed by `err`: exception event, ERROR status, and `oci.error.code` when it is an OciError. */
export function recordFailure(span: Span, err: unknown): void {
  const code = ociErrorCodeOf(err);
  if (code) span.setAttribute(OCI_ERROR_CODE_ATTRIBUTE, code);
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Notes the OCI error code a request is answered with, on the active span and on the request's HTTP server span
 * (which the http instrumentation keeps in the context), so a failed request's trace says why it failed.
 */
export function recordOciErrorCode(code: string, active: Context = context.active()): void {
  trace.getSpan(active)?.setAttribute(OCI_ERROR_CODE_ATTRIBUTE, code);
  getRPCMetadata(active)?.span?.setAttribute(OCI_ERROR_CODE_ATTRIBUTE, code);
}

const w3c = new W3CTraceContextPropagator();
const recordSetter: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => void (carrier[key] = value) };
const recordGetter: TextMapGetter<Record<string, string>> = { get: (carrier, key) => carrier[key], keys: (carrier) => Object.keys(carrier) };

/**
 * The W3C `traceparent` of the active span (or of `from`), to store with an outbox row; undefined when there is no
 * valid span context (no SDK and no incoming trace).
 */
export function currentTraceparent(from: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(from, carrier, recordSetter);
  return carrier.traceparent;
}

/** A context whose remote parent is the span a `traceparent` names (ROOT_CONTEXT's when malformed or absent). */
export function contextFromTraceparent(traceparent: string | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!traceparent) return base;
  return w3c.extract(base, { traceparent }, recordGetter);
}

/** A span link to the span a `traceparent` names, for a consumer that starts its own trace; undefined when malformed. */
export function linkFromTraceparent(traceparent: string | undefined, attributes?: Attributes): Link | undefined {
  const spanContext = trace.getSpanContext(contextFromTraceparent(traceparent));
  return spanContext && trace.isSpanContextValid(spanContext) ? { context: spanContext, attributes } : undefined;
}

function placementContext(parent: Context | string | undefined): Context {
  // A malformed traceparent leaves the active context as it was.
  if (typeof parent === 'string') return contextFromTraceparent(parent, context.active());
  return parent ?? context.active();
}

/** How one item of a batch is traced: the trace it belongs to and its span's attributes. */
export interface BatchItemTrace {
  /** The item's stored W3C traceparent (an outbox row's); without one the item's span joins the active trace. */
  traceparent?: string;
  attributes?: Attributes;
}

/**
 * Runs one batch operation (`fn`, e.g. publishing many outbox rows in one send) with a span `name` per item, each
 * parented by that item's own traceparent, so every item's trace shows the operation; the spans end together
 * with `fn`, failed together if it fails.
 */
export async function withItemSpans<T>(name: string, items: readonly BatchItemTrace[], fn: () => Promise<T>, kind: SpanKind = SpanKind.PRODUCER): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  const active = context.active();
  const spans = items.map((item) => tracer.startSpan(name, { kind, attributes: item.attributes }, item.traceparent ? contextFromTraceparent(item.traceparent, active) : active));
  try {
    return await fn();
  } catch (err) {
    for (const span of spans) recordFailure(span, err);
    throw err;
  } finally {
    for (const span of spans) span.end();
  }
}
