export * from './scopes';
export * from './jwt';
export * from './passwords';
export * from './password-pool';
export * from './route-access';
export * from './secret-cipher';
export * from './subject';
export * from './console-session';
