/** `@lading/telemetry/testing`: an in-memory tracer and scrapeable metrics for tests of code that makes spans or metrics. */
export * from './test/test-tracing';
export * from './test/test-metrics';
