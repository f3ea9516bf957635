import { errors } from '@beacon/core';

export interface OutlierOptions {
  /** Consecutive failed answers (5xx, resets, timeouts) that eject an instance (default 5). */
  consecutive5xx?: number;
  /** Consecutive connection failures that eject an instance (default 3). */
  consecutiveConnectFailures?: number;
  /** First ejection time; the n-th consecutive ejection lasts n times as long (default 10 s). */
  baseEjectionMs?: number;
  /** Longest ejection (default 5 min). */
  maxEjectionMs?: number;
  /** Never eject more than this share of the pool (default 0.5; one instance may always go when there are two or more). */
  maxEjectedShare?: number;
}

/** The outcome of one request, as outlier detection, breakers and balancers see it. */
export type Outcome = 'success' | 'http-5xx' | 'connect' | 'reset' | 'timeout' | 'cancelled';

/**
 * Per-instance bookkeeping of outlier detection.
 *
 * @example
 * const s = new OutlierState();
 * s.isEjected(clock.now()); // false
 */
export class OutlierState {
  consecutiveFailures = 0;
  consecutiveConnect = 0;
  ejections = 0;
  ejectedUntil = 0;
  lastEjectionEnd = 0;

  /** Whether the instance is out of balancing at `now`. */
  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }
}

/**
 * Passive outlier detection (Envoy's): consecutive 5xx or connection failures eject an instance
 * from balancing for base × n (n = how many times in a row it was ejected), capped, and never
 * more than a configured share of the pool — a sick instance goes, a sick upstream stays.
 *
 * @example
 * const od = new OutlierDetector({ consecutive5xx: 5 });
 * if (od.observe(state, 'http-5xx', now, () => ejectedCount < od.maxEjected(poolSize))) rebuildEligible();
 */
export class OutlierDetector {
  readonly consecutive5xx: number;
  readonly consecutiveConnect: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly maxShare: number;

  constructor(opts: OutlierOptions = {}) {
    this.consecutive5xx = opts.consecutive5xx ?? 5;
    this.consecutiveConnect = opts.consecutiveConnectFailures ?? 3;
    this.baseMs = opts.baseEjectionMs ?? 10_000;
    this.maxMs = Math.max(this.baseMs, opts.maxEjectionMs ?? 300_000);
    this.maxShare = opts.maxEjectedShare ?? 0.5;
    if (!(this.consecutive5xx >= 1) || !(this.consecutiveConnect >= 1)) throw errors.invalid('outlier thresholds must be ≥ 1');
    if (!(this.maxShare >= 0 && this.maxShare <= 1)) throw errors.invalid('maxEjectedShare must be in [0, 1]');
  }

  /**
   * How many of a pool of `n` may be ejected at once.
   *
   * @example
   * new OutlierDetector({ maxEjectedShare: 0.5 }).maxEjected(10); // 5
   */
  maxEjected(n: number): number {
    return Math.max(n >= 2 && this.maxShare > 0 ? 1 : 0, Math.floor(n * this.maxShare));
  }

  /**
   * Records an outcome; returns true when it ejected the instance. `mayEject` is asked only when
   * a threshold is reached (the caller knows the pool).
   *
   * @example
   * const ejected = detector.observe(state, 'connect', clock.now(), () => ejectedNow < detector.maxEjected(pool));
   */
  observe(s: OutlierState, outcome: Outcome, now: number, mayEject: () => boolean): boolean {
    switch (outcome) {
      case 'success':
        s.consecutiveFailures = 0;
        s.consecutiveConnect = 0;
        return false;
      case 'cancelled':
        return false;
      case 'connect':
        s.consecutiveConnect++;
        s.consecutiveFailures++;
        break;
      case 'http-5xx':
      case 'reset':
      case 'timeout':
        s.consecutiveConnect = 0;
        s.consecutiveFailures++;
        break;
    }
    if (s.isEjected(now)) return false;
    if (s.consecutiveConnect < this.consecutiveConnect && s.consecutiveFailures < this.consecutive5xx) return false;
    if (!mayEject()) return false;
    // A long healthy spell since the last ejection starts the multiplier over.
    if (s.lastEjectionEnd > 0 && now - s.lastEjectionEnd > this.maxMs) s.ejections = 0;
    s.ejections++;
    const ms = Math.min(this.maxMs, this.baseMs * s.ejections);
    s.ejectedUntil = now + ms;
    s.lastEjectionEnd = s.ejectedUntil;
    s.consecutiveFailures = 0;
    s.consecutiveConnect = 0;
    return true;
  }
}
