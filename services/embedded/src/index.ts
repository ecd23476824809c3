export * from './embedded-registry';
