export * from './signature';
export * from './address-guard';
export * from './webhook-store';
export * from './webhook-secrets';
export * from './subscription-input';
export * from './webhook-admin-router';
export * from './migrations';
