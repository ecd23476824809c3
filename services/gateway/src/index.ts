export * from './gateway';
export * from './authorization';
export * from './rate-limiter';
export * from './upstream-proxy';
export * from './mirror-namespace';
export * from './repository-existence';
export * from './console-site';
export * from './session-tokens';
