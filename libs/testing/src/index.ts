export * from './test-deps';
export * from './content';
export * from './write-checks';
export * from './seed-content';
export * from './infra';
export * from './throwaway-database';
export * from './descriptors';
export * from './test-ca';
