import type { Instance } from '@beacon/core';

/** What a balancer sees of an instance: its registry data and this client's measurements. */
export interface Endpoint {
  readonly id: string;
  readonly instance: Instance;
  readonly zone: string;
  /** Registry weight (≥ 0; 0 takes no traffic while others can). */
  readonly weight: number;
  /** Requests this client has in flight to the instance. */
  readonly inflight: number;
  /** Peak-EWMA latency estimate in ms. */
  latencyMs(now: number): number;
  /** Slow-start factor in (0, 1]: below 1 while a newly ready instance warms up. */
  rampFactor(now: number): number;
}

/** Per-pick context. */
export interface PickContext {
  readonly now: number;
  /** Affinity key (consistent hashing). */
  readonly key?: string | undefined;
  /** Every known instance of the service, eligible or not: zone-aware routing judges a zone's health by it. */
  readonly all: readonly Endpoint[];
}

/**
 * A load-balancing strategy: picks one of the eligible endpoints (ready, not ejected, circuit not
 * open). Implementations keep only their own bookkeeping; `eligible` arrays are replaced, never
 * mutated, so a balancer may cache work per array.
 *
 * @example
 * const first: Balancer = { name: 'first', pick: (eligible) => eligible[0] };
 */
export interface Balancer {
  readonly name: string;
  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined;
}

/**
 * Registry weight with the slow-start ramp applied; never negative.
 *
 * @example
 * effectiveWeight(endpoint, clock.now()); // 10 × 0.25 while a weight-10 instance is a quarter into its ramp
 */
export function effectiveWeight(e: Endpoint, now: number): number {
  return Math.max(0, e.weight) * e.rampFactor(now);
}
