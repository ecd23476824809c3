export * from './test-deps';
export * from './content';
export * from './infra';
export * from './throwaway-database';
export * from './descriptors';
