/**
 * The structured logger every service uses: pino JSON, with the active span's `trace_id`/`span_id` on every line
 * written inside a span, and secrets removed from every line (see redaction.ts) before it is written.
 */
import { context, trace } from '@opentelemetry/api';
import pino from 'pino';
import { redactText, redactValue } from './redaction';

/** A structured logger. */
export type Logger = pino.Logger;

/** Options for a service's logger. */
export interface LoggerOptions {
  service: string;
  level: string;
  /** Where lines go; defaults to stdout. Tests pass a sink to read what was logged. */
  destination?: pino.DestinationStream;
}

/** The trace fields of the active span, or nothing outside a (valid) span. */
function traceFields(): Record<string, string> {
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId, trace_flags: `0${spanContext.traceFlags.toString(16)}`.slice(-2) };
}

/** Creates the logger of one service; lines carry trace ids and never secrets. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: `lading-${options.service}` },
      mixin: traceFields,
      formatters: {
        bindings: (bindings) => redactValue(bindings) as Record<string, unknown>,
        log: (object) => redactValue(object) as Record<string, unknown>,
      },
      serializers: {
        err: (err: Error) => redactValue(pino.stdSerializers.err(err)) as Record<string, unknown>,
      },
      hooks: {
        // Messages are text: a URL or header pasted into one is scrubbed like a field.
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = redactText(args[i] as string);
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}
