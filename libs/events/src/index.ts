export * from './event-types';
export * from './ids';
export * from './outbox';
export * from './bus';
export * from './outbox-relay';
export * from './kafka-bus';
export * from './open-bus';
