export * from './upstream-errors';
export * from './upstream-registry';
export * from './proxy-rules';
export * from './upstream-oci-errors';
export * from './stored-proxy-rules';
export * from './fetch-leases';
