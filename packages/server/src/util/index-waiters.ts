import type { CancelSignal } from './cancel.js';
import type { Clock } from '@beacon/core';

/**
 * Readers parked until an index passes the one they hold (Consul's blocking-query wait): each
 * resolves when `wake(index)` reports a higher index, its timeout ends, its signal aborts, or on
 * `close()`.
 */
export class IndexWaiters {
  private waiters = new Set<{ minIndex: number; resolve: () => void }>();

  constructor(private readonly clock: Clock) {}

  /** Resolves at once when `current` already passes `minIndex`. */
  wait(current: number, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<void> {
    if (current > minIndex || timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        timer.cancel();
        signal?.removeEventListener('abort', finish);
        this.waiters.delete(w);
        resolve();
      };
      const w = { minIndex, resolve: finish };
      this.waiters.add(w);
      const timer = this.clock.setTimeout(finish, timeoutMs);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  /**
   * Releases every reader whose index `index` passes, in one pass: the set is replaced by one of
   * those that stay (readers of one resource mostly hold its latest index, so mostly none), rather
   * than copied and then emptied one deletion at a time.
   */
  wake(index: number): void {
    const all = this.waiters;
    this.waiters = new Set();
    for (const w of all) {
      if (index > w.minIndex) w.resolve();
      else this.waiters.add(w);
    }
  }

  close(): void {
    const all = this.waiters;
    this.waiters = new Set();
    for (const w of all) w.resolve();
  }

  get size(): number {
    return this.waiters.size;
  }
}
