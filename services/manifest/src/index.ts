export * from './manifest-service';
