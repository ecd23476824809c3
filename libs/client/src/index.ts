export * from './challenge';
export * from './registry-client';
export * from './undici';
