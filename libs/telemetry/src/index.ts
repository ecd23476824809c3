export * from './logger';
export * from './redaction';
export * from './metric-names';
export * from './registry-metrics';
export * from './spans';
export * from './span-names';
export * from './http-telemetry';
export * from './tally';
