import type { IBackoff, IBackoffFactory } from 'cockatiel';
import { errors, type Random } from '@beacon/core';

export interface FullJitterOptions {
  /** Cap of the first delay (default 25 ms). */
  baseMs?: number;
  /** Largest cap (default 1 s). */
  maxMs?: number;
  random: Random;
}

class FullJitter implements IBackoff<unknown> {
  readonly duration: number;
  constructor(
    private readonly opts: Required<FullJitterOptions>,
    private readonly n: number,
  ) {
    const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(n, 30));
    this.duration = opts.random.next() * cap;
  }
  next(): IBackoff<unknown> {
    return new FullJitter(this.opts, this.n + 1);
  }
}

/**
 * Exponential backoff with full jitter (AWS architecture blog): the n-th delay is uniform in
 * [0, min(max, base·2ⁿ)]. Spreads retries of many clients best of the usual schemes. A cockatiel
 * `IBackoffFactory`, so it also plugs into cockatiel's own `retry()`.
 *
 * @example
 * const b = fullJitter({ baseMs: 25, maxMs: 1000, random: systemRandom });
 * const first = b.next(undefined); first.duration; // in [0, 25)
 */
export function fullJitter(opts: FullJitterOptions): IBackoffFactory<unknown> {
  const o = { baseMs: opts.baseMs ?? 25, maxMs: opts.maxMs ?? 1_000, random: opts.random };
  if (!(o.baseMs >= 0) || !(o.maxMs >= o.baseMs)) throw errors.invalid('backoff needs 0 ≤ baseMs ≤ maxMs');
  return { next: () => new FullJitter(o, 0) };
}
