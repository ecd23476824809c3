export * from './test-deps';
export * from './content';
