export * from './test-deps';
export * from './content';
export * from './infra';
