export * from './http.js';
export * from './sse.js';
export * from './time.js';
export * from './filter.js';
export * from './view.js';
export * from './discovery.js';
export * from './registration.js';
export * from './balancers/index.js';
export * from './endpoint.js';
export * from './resilience/backoff.js';
export * from './resilience/budget.js';
export * from './resilience/retry.js';
export * from './resilience/timeout.js';
export * from './resilience/breaker.js';
export * from './resilience/outlier.js';
export * from './resilience/classify.js';
export * from './resilience/deadline.js';
export * from './upstream.js';
export * from './dispatcher.js';
export * from './fetch.js';
export * from './client.js';

// What a consumer needs from @beacon/core, so it does not have to depend on it: the errors the
// SDK throws, the types of its answers, and the clock and randomness it can be given. The gRPC
// resolver lives in '@beacon/client/grpc' so that these types never require @grpc/grpc-js.
export { BeaconError, ERROR_CATALOG, isBeaconError, isErrorCode, type ErrorBody, type ErrorCode } from '@beacon/core';
export { ManualClock, seededRandom, systemClock, systemRandom, type Clock, type Random, type Timer } from '@beacon/core';
export type { Check, CheckStatus, Conditions, Instance } from '@beacon/core';
