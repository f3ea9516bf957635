import type { Clock } from '@beacon/core';

/**
 * Readers parked until an index passes the one they hold (Consul's blocking-query wait): each
 * resolves when `wake(index)` reports a higher index, its timeout ends, its signal aborts, or on
 * `close()`.
 */
export class IndexWaiters {
  private readonly waiters = new Set<{ minIndex: number; resolve: () => void }>();

  constructor(private readonly clock: Clock) {}

  /** Resolves at once when `current` already passes `minIndex`. */
  wait(current: number, minIndex: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
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

  /** Releases every reader whose index `index` passes. */
  wake(index: number): void {
    for (const w of [...this.waiters]) if (index > w.minIndex) w.resolve();
  }

  close(): void {
    for (const w of [...this.waiters]) w.resolve();
  }

  get size(): number {
    return this.waiters.size;
  }
}
