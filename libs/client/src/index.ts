export * from './challenge';
export * from './registry-client';
