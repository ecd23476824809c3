/**
 * An in-memory tracer for this lib's tests: registers a tracer provider and an async-context manager with the
 * OpenTelemetry API (each jest test file has its own globals), and gives back the spans that ended.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** A registered in-memory tracer. */
export interface TestTracing {
  /** Spans that ended so far. */
  spans(): ReadableSpan[];
  /** Unregisters everything. */
  stop(): Promise<void>;
}

/** Registers an in-memory tracer provider for the current test file. */
export function startTestTracing(): TestTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    spans: () => exporter.getFinishedSpans(),
    async stop() {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
