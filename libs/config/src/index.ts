export * from './schema';
export * from './load';
export * from './allow-list-entry';
