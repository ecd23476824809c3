export * from './manifest-service';
export * from './manifest-pull-through';
export * from './pull-recorder';
export * from './pull-audit';
export * from './manifest-pull-through-wiring';
export * from './repository-admin';
export * from './repository-deletion';
