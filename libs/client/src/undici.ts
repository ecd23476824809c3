/**
 * undici, required on first use rather than when a module that uses it is loaded: the embedded registry loads the
 * pull-through client and this client at start, but makes an HTTP client only once an upstream is configured, and
 * undici costs an idle process ~4 MB of V8 heap and ~7 MB resident (docs/benchmarks.md, memory of the embedded
 * process). `require` rather than `import()`, so that OpenTelemetry's undici instrumentation, which hooks `require`,
 * still patches it as it loads. Import undici's types with `import type`.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const loadUndici = (): typeof import('undici') => require('undici') as typeof import('undici');
