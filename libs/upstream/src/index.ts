export * from './upstream-errors';
export * from './upstream-registry';
export * from './proxy-rules';
export * from './upstream-oci-errors';
export * from './fetch-leases';
