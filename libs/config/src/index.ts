export * from './schema';
export * from './duration';
export * from './load';
export * from './allow-list-entry';
