export * from './gateway';
export * from './authorization';
export * from './rate-limiter';
export * from './upstream-proxy';
