export * from './auth-service';
export * from './principals';
export * from './access-policy';
export * from './signing-keys';
export { createAdminRouter, type AdminApiDeps } from './admin-api';
export { routesOf, type RouterRoute } from './admin-routes';
export { ADMIN_ROUTE_RULES, administers, type AdminRouteRule, type AdminScope } from './admin-authorization';
export { createRepositoryForwardingRouter, type RepositoryForwardingDeps } from './repository-forwarding';
export { createGcForwardingRouter, type GcForwardingDeps } from './gc-forwarding';
