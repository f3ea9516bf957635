import { errors, type Clock } from '@beacon/core';

export interface RetryBudgetOptions {
  /** Retries allowed as a share of requests in the window (default 0.2: at most 20 % extra load). */
  ratio?: number;
  /** Retries always allowed per second, so a quiet service can still retry (default 10). */
  minPerSecond?: number;
  /** Sliding window (default 10 s, in 10 buckets). */
  windowMs?: number;
}

const BUCKETS = 10;

/**
 * A retry budget (Finagle, Linkerd): retries may add at most `ratio` of the traffic, plus a small
 * floor. When an upstream fails outright, each client adds ≤ 20 % load rather than multiplying it
 * by its retry count — an outage cannot become a retry storm.
 *
 * @example
 * const budget = new RetryBudget(clock, { ratio: 0.2, minPerSecond: 10 });
 * budget.recordRequest();
 * if (budget.tryRetry()) { ... retry ... }
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly floor: number;
  private readonly bucketMs: number;
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);
  private lastEpoch = -1;
  private lastIndex = 0;

  constructor(
    private readonly clock: Clock,
    opts: RetryBudgetOptions = {},
  ) {
    this.ratio = opts.ratio ?? 0.2;
    const windowMs = opts.windowMs ?? 10_000;
    const minPerSecond = opts.minPerSecond ?? 10;
    if (!(this.ratio >= 0) || !(minPerSecond >= 0) || !(windowMs > 0)) throw errors.invalid('retry budget needs ratio ≥ 0, minPerSecond ≥ 0, windowMs > 0');
    this.floor = (minPerSecond * windowMs) / 1000;
    this.bucketMs = windowMs / BUCKETS;
  }

  /**
   * Counts one original request (not its retries).
   *
   * @example
   * budget.recordRequest();
   */
  recordRequest(): void {
    this.requests[this.bucket()]! += 1;
  }

  /**
   * Takes one retry from the budget if there is room; false means "do not retry".
   *
   * @example
   * if (budget.tryRetry()) await retry();
   */
  tryRetry(): boolean {
    this.bucket();
    if (this.sum(this.retries) + 1 > this.floor + this.ratio * this.sum(this.requests)) return false;
    this.retries[this.bucket()]! += 1;
    return true;
  }

  /**
   * Requests and retries in the current window, and how many retries it allows.
   *
   * @example
   * budget.stats(); // { requests: 500, retries: 12, allowed: 200 }
   */
  stats(): { requests: number; retries: number; allowed: number } {
    this.bucket();
    const requests = this.sum(this.requests);
    return { requests, retries: this.sum(this.retries), allowed: Math.floor(this.floor + this.ratio * requests) };
  }

  private bucket(): number {
    const epoch = Math.floor(this.clock.now() / this.bucketMs);
    // Same bucket as the last call (the common case under load): nothing to expire.
    if (epoch === this.lastEpoch) return this.lastIndex;
    const i = epoch % BUCKETS;
    // Lazily clear every bucket that has fallen out of the window.
    for (let k = 0; k < BUCKETS; k++) {
      if (this.epochs[k]! !== -1 && epoch - this.epochs[k]! >= BUCKETS) {
        this.epochs[k] = -1;
        this.requests[k] = 0;
        this.retries[k] = 0;
      }
    }
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    this.lastEpoch = epoch;
    this.lastIndex = i;
    return i;
  }

  private sum(a: Float64Array): number {
    let s = 0;
    for (let k = 0; k < BUCKETS; k++) s += a[k]!;
    return s;
  }
}
