import { randomInt, type Random } from '@beacon/core';
import { effectiveWeight, type Balancer, type Endpoint, type PickContext } from './types.js';

/** Two distinct random candidates; the lower score wins (ties broken by a coin). */
function p2c<E extends Endpoint>(eligible: readonly E[], random: Random, score: (e: E) => number): E | undefined {
  const n = eligible.length;
  if (n <= 1) return eligible[0];
  const i = randomInt(random, n);
  let j = randomInt(random, n - 1);
  if (j >= i) j++;
  const a = eligible[i]!;
  const b = eligible[j]!;
  const sa = score(a);
  const sb = score(b);
  if (sa < sb) return a;
  if (sb < sa) return b;
  return random.next() < 0.5 ? a : b;
}

/**
 * Least request, power of two choices: of two random instances, the one with fewer requests in
 * flight relative to its weight (Envoy's LEAST_REQUEST; picking two avoids the herd that
 * "globally least loaded" causes when many clients see the same numbers).
 *
 * @example
 * const b = new LeastRequest(systemRandom);
 */
export class LeastRequest implements Balancer {
  readonly name = 'least-request';

  constructor(private readonly random: Random) {}

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    return p2c(eligible, this.random, (e) => (e.inflight + 1) / Math.max(effectiveWeight(e, ctx.now), 1e-9));
  }
}

/**
 * Peak-EWMA, power of two choices (Finagle / Linkerd): cost = latency estimate × (in flight + 1)
 * ÷ weight. A slow instance's estimate jumps up at once and decays back, so load moves away from
 * it quickly and returns gradually.
 *
 * @example
 * const b = new PeakEwma(systemRandom);
 */
export class PeakEwma implements Balancer {
  readonly name = 'ewma';

  constructor(private readonly random: Random) {}

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    return p2c(eligible, this.random, (e) => ((e.latencyMs(ctx.now) + 0.01) * (e.inflight + 1)) / Math.max(effectiveWeight(e, ctx.now), 1e-9));
  }
}
