export * from './blob-store';
export * from './filesystem-driver';
