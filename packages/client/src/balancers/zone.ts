import type { Random } from '@beacon/core';
import type { Balancer, Endpoint, PickContext } from './types.js';

export interface ZoneAwareOptions {
  /** The caller's zone. Empty: no preference. */
  zone: string;
  /**
   * The local zone keeps all traffic while at least this share of its known instances is eligible
   * (default 0.5). Below it, the local share of traffic falls in proportion and the rest spills to
   * other zones; with no eligible local instance everything spills.
   */
  minHealthyShare?: number;
}

/**
 * Zone-aware routing around any inner balancer: prefer instances in the caller's zone while that
 * zone has healthy capacity; spill over to the other zones otherwise.
 *
 * @example
 * const b = new ZoneAware(new LeastRequest(systemRandom), systemRandom, { zone: 'eu-1' });
 */
export class ZoneAware implements Balancer {
  readonly name: string;
  private readonly minShare: number;
  private lastEligible: readonly Endpoint[] | undefined;
  private local: readonly Endpoint[] = [];
  private remote: readonly Endpoint[] = [];
  private lastAll: readonly Endpoint[] | undefined;
  private localKnown = 0;

  constructor(
    private readonly inner: Balancer,
    private readonly random: Random,
    private readonly opts: ZoneAwareOptions,
  ) {
    this.name = `zone-aware(${inner.name})`;
    this.minShare = opts.minHealthyShare ?? 0.5;
    if (!(this.minShare > 0 && this.minShare <= 1)) throw new RangeError('minHealthyShare must be in (0, 1]');
  }

  pick<E extends Endpoint>(eligible: readonly E[], ctx: PickContext): E | undefined {
    const zone = this.opts.zone;
    if (!zone) return this.inner.pick(eligible, ctx);
    if (eligible !== this.lastEligible) {
      this.lastEligible = eligible;
      this.local = eligible.filter((e) => e.zone === zone);
      this.remote = eligible.filter((e) => e.zone !== zone);
    }
    if (ctx.all !== this.lastAll) {
      this.lastAll = ctx.all;
      this.localKnown = ctx.all.reduce((n, e) => n + (e.zone === zone ? 1 : 0), 0);
    }
    const local = this.local as readonly E[];
    const remote = this.remote as readonly E[];
    if (local.length === 0) return this.inner.pick(remote, ctx);
    if (remote.length === 0) return this.inner.pick(local, ctx);
    const share = local.length / Math.max(this.localKnown, local.length);
    if (share >= this.minShare) return this.inner.pick(local, ctx);
    return this.random.next() < share / this.minShare ? this.inner.pick(local, ctx) : this.inner.pick(remote, ctx);
  }
}
