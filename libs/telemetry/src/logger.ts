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

/** How many bytes of log lines wait for a destination that cannot take them (a full disk) before new ones are dropped. */
const LOG_BACKLOG_BYTES = 4 * 1024 * 1024;

/** A log destination on a file descriptor, with what it has had to drop. */
export interface LogDestination extends pino.DestinationStream {
  /** Lines dropped since the destination last failed: it was full (ENOSPC) or gone, and the backlog was too. */
  readonly dropped: number;
}

/**
 * The destination a service logs to: stdout unless told otherwise. A write that fails (stdout redirected to a file on
 * a full disk: ENOSPC) must not end the registry, which pino's own destination does by re-throwing the error. This
 * one keeps up to 4 MB of lines and retries them with the next line; past that it drops lines, and when writing works
 * again it says how many it dropped; lines still waiting when the process exits are given up. A closed pipe (EPIPE)
 * stops logging, as pino does.
 */
export function createLogDestination(fd = 1): LogDestination {
  const stream = pino.destination({ dest: fd, sync: false, maxLength: LOG_BACKLOG_BYTES });
  let dropped = 0;
  let failing = false;
  stream.on('drop', () => {
    dropped++;
  });
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return; // pino's own listener has already turned writes into no-ops
    failing = true;
  });
  // pino flushes what is buffered when the process exits, and sonic-boom's flush retries a failing write forever: a
  // registry told to stop on a full disk would never exit. While writes fail, the lines left are given up instead.
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    if (!failing) flushSync();
  };
  stream.on('write', () => {
    if (!failing) return;
    failing = false;
    if (dropped > 0) {
      const lost = dropped;
      dropped = 0;
      stream.write(`${JSON.stringify({ level: 40, time: Date.now(), msg: `logging: ${lost} lines were dropped while the log destination could not be written` })}\n`);
    }
  });
  return Object.defineProperty(stream, 'dropped', { get: () => dropped }) as unknown as LogDestination;
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
    options.destination ?? createLogDestination(),
  );
}
