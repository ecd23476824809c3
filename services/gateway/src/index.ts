export * from './gateway';
export * from './authorization';
