export * from './errors';
export * from './digest';
export * from './reference';
export * from './media-types';
export * from './manifest-validator';
export * from './routes';
export * from './text';
export * from './unavailable';
