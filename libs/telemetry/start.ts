/**
 * `@lading/telemetry/start`: starting the OpenTelemetry SDK, kept apart from the main entry so that code which only
 * logs, records metrics or makes spans (every lib and test) does not load the SDK, its exporters and
 * instrumentations; only a process's first import (`main.ts`) does.
 */
export * from './src/start-telemetry';
