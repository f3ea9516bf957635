import { randomInt, type Random } from '@beacon/core';
import { effectiveWeight, type Balancer, type Endpoint, type PickContext } from './types.js';

/**
 * Round robin. Registry weights are ignored (use {@link SmoothWeightedRoundRobin} for them); an
 * instance in slow start is skipped with probability 1 − ramp, so its share still ramps up.
 *
 * @example
 * const b = new RoundRobin(seededRandom(1));
 */
export class RoundRobin implements Balancer {
  readonly name = 'round-robin';
  private next: number;

  constructor(private readonly random: Random) {
    this.next = randomInt(random, 1 << 30);
  }

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    const n = eligible.length;
    if (n === 0) return undefined;
    let chosen = eligible[this.next++ % n]!;
    for (let k = 1; k < n; k++) {
      const f = chosen.rampFactor(ctx.now);
      if (f >= 1 || this.random.next() < f) break;
      chosen = eligible[this.next++ % n]!;
    }
    if (this.next > 1 << 30) this.next = 0;
    return chosen;
  }
}

/**
 * Random choice, proportional to weight × slow-start ramp.
 *
 * @example
 * const b = new RandomBalancer(systemRandom);
 */
export class RandomBalancer implements Balancer {
  readonly name = 'random';

  constructor(private readonly random: Random) {}

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    const n = eligible.length;
    if (n <= 1) return eligible[0];
    let total = 0;
    for (const e of eligible) total += effectiveWeight(e, ctx.now);
    if (total <= 0) return eligible[randomInt(this.random, n)];
    let r = this.random.next() * total;
    for (const e of eligible) {
      r -= effectiveWeight(e, ctx.now);
      if (r < 0) return e;
    }
    return eligible[n - 1];
  }
}

/**
 * nginx's smooth weighted round robin: over any window each instance gets its weight's share,
 * spread evenly (weights 5,1,1 give a a b a c a a, not a a a a a b c). Slow start lowers an
 * instance's weight while it warms up.
 *
 * @example
 * const b = new SmoothWeightedRoundRobin();
 */
export class SmoothWeightedRoundRobin implements Balancer {
  readonly name = 'weighted-round-robin';
  private readonly current = new WeakMap<Endpoint, number>();
  private rr = 0;

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    const n = eligible.length;
    if (n <= 1) return eligible[0];
    let total = 0;
    let best: E | undefined;
    let bestCw = -Infinity;
    for (const e of eligible) {
      const w = effectiveWeight(e, ctx.now);
      const cw = (this.current.get(e) ?? 0) + w;
      this.current.set(e, cw);
      total += w;
      if (cw > bestCw) {
        bestCw = cw;
        best = e;
      }
    }
    if (total <= 0) return eligible[this.rr++ % n];
    this.current.set(best!, bestCw - total);
    return best;
  }
}
