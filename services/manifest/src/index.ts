export * from './manifest-service';
export * from './manifest-pull-through';
