/**
 * A token bucket: `burst` tokens, refilled at `rate` per second. Time comes from the caller
 * (the injected clock), so a test drives it with a manual clock.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes one token: 0 when taken, else the milliseconds until one is there (nothing is taken). */
  take(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  /** Whether the bucket has refilled completely, so forgetting it changes nothing. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    if (now > this.at) this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }
}

/** Buckets by client key; full buckets are forgotten so a scan over many addresses cannot grow the map without bound. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweepAt: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly sweepSize = 10_000,
  ) {
    this.sweepAt = sweepSize;
  }

  /** 0 when the key may go ahead, else the milliseconds until it may. A rate of 0 means no limit. */
  take(key: string, now: number): number {
    if (this.rate <= 0) return 0;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
      this.buckets.set(key, (b = new TokenBucket(this.rate, this.burst, now)));
    }
    return b.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (b.full(now)) this.buckets.delete(k);
    // Sweeping again only once the map doubled keeps the cost per new key constant.
    this.sweepAt = Math.max(this.sweepSize, this.buckets.size * 2);
  }
}
