import { errors, type Random } from '@beacon/core';
import type { Balancer } from './types.js';
import { RandomBalancer, RoundRobin, SmoothWeightedRoundRobin } from './simple.js';
import { LeastRequest, PeakEwma } from './p2c.js';
import { RendezvousHash } from './hash.js';
import { ZoneAware, type ZoneAwareOptions } from './zone.js';

export * from './types.js';
export * from './simple.js';
export * from './p2c.js';
export * from './hash.js';
export * from './zone.js';

/** Balancers by name. */
export type BalancerName = 'round-robin' | 'random' | 'weighted-round-robin' | 'least-request' | 'ewma' | 'consistent-hash';
export const BALANCER_NAMES: readonly BalancerName[] = ['round-robin', 'random', 'weighted-round-robin', 'least-request', 'ewma', 'consistent-hash'];

/** A balancer by name, an instance, or a name wrapped in zone-aware routing. */
export type BalancerSpec = BalancerName | Balancer | { zoneAware: BalancerName | Balancer; zone?: string; minHealthyShare?: number };

/**
 * Builds a balancer from its name (each pick strategy gets its own state, so build one per service).
 *
 * @example
 * createBalancer('ewma', { random: systemRandom });
 * createBalancer({ zoneAware: 'least-request' }, { random: systemRandom, zone: 'eu-1' });
 */
export function createBalancer(spec: BalancerSpec, deps: { random: Random; zone?: string }): Balancer {
  if (typeof spec === 'string') {
    switch (spec) {
      case 'round-robin':
        return new RoundRobin(deps.random);
      case 'random':
        return new RandomBalancer(deps.random);
      case 'weighted-round-robin':
        return new SmoothWeightedRoundRobin();
      case 'least-request':
        return new LeastRequest(deps.random);
      case 'ewma':
        return new PeakEwma(deps.random);
      case 'consistent-hash':
        return new RendezvousHash(new RandomBalancer(deps.random));
      default: {
        const never: never = spec;
        throw errors.invalid(`unknown balancer ${JSON.stringify(never)}: use one of ${BALANCER_NAMES.join(', ')}`);
      }
    }
  }
  if ('zoneAware' in spec) {
    const zopts: ZoneAwareOptions = { zone: spec.zone ?? deps.zone ?? '' };
    if (spec.minHealthyShare !== undefined) zopts.minHealthyShare = spec.minHealthyShare;
    return new ZoneAware(createBalancer(spec.zoneAware, deps), deps.random, zopts);
  }
  if (typeof spec.pick !== 'function') throw errors.invalid('a balancer needs a pick(eligible, ctx) method');
  return spec;
}
