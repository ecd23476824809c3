export * from './database';
export * from './pglite-adapter';
export * from './migrate';
export * from './repositories';
export * from './blobs';
export * from './manifests';
export * from './uploads';
export * from './gc-queue';
