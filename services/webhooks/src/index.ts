export * from './webhook-settings';
export * from './retry-policy';
export * from './delivery-body';
export * from './delivery-enqueuer';
export * from './delivery-worker';
export * from './webhook-delivery';
export * from './webhooks-service';
