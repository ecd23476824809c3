export * from './error-handler';
export * from './request-context';
export * from './body';
export * from './pagination';
export * from './service-app';
export * from './fast-path';
export * from './dispatch-locals';
export * from './storable-input';
