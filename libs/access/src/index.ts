export * from './scopes';
export * from './jwt';
export * from './passwords';
export * from './route-access';
export * from './subject';
