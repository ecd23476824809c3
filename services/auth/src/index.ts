export * from './auth-service';
export * from './principals';
export * from './access-policy';
export * from './signing-keys';
export { createAdminRouter, type AdminApiDeps } from './admin-api';
