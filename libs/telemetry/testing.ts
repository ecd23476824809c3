/** `@lading/telemetry/testing`: an in-memory tracer for tests of code that makes spans. */
export * from './test/test-tracing';
