import type { Clock, Timer } from '@beacon/core';
import type { LeaseId } from './types.js';

interface Tracked {
  ttlMs: number;
  expiresAt: number;
}

interface HeapEntry<K> {
  at: number;
  id: K;
}

/** A tracked deadline as reported: its length and what is left of it. */
export interface DeadlineInfo<K> {
  id: K;
  ttlMs: number;
  remainingMs: number;
}

/** Longer delays overflow Node's timer (it would fire at once); we simply wake up and look again. */
const MAX_DELAY_MS = 2 ** 30;

/**
 * When each lease dies (keyed by lease id in the embedded store, by instance id where a cluster
 * server keeps instances' deadlines on a shared etcd lease), in memory only: a renewal is a map update (no I/O, no timer work), so
 * heartbeats stay cheap at any lease count.
 *
 * One clock timer serves every lease. The heap holds one entry per lease with a deadline that
 * may be stale (too early) after renewals; when such an entry comes up, it is pushed back with
 * the lease's current deadline instead of expiring it. A renewal therefore never touches the heap.
 */
export class LeaseDeadlines<K = LeaseId> {
  private readonly leases = new Map<K, Tracked>();
  private readonly heap: HeapEntry<K>[] = [];
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    /** Called with every lease that has reached its deadline, already forgotten here. */
    private readonly onExpire: (ids: K[]) => void,
  ) {}

  get size(): number {
    return this.leases.size;
  }

  /** Starts (or restarts) a lease with a full TTL from now. */
  track(id: K, ttlMs: number): void {
    if (this.stopped) return;
    const expiresAt = this.clock.now() + ttlMs;
    const existing = this.leases.get(id);
    if (existing) {
      existing.ttlMs = ttlMs;
      existing.expiresAt = expiresAt;
      return;
    }
    this.leases.set(id, { ttlMs, expiresAt });
    this.push({ at: expiresAt, id });
    this.schedule();
  }

  /** Renews to a full TTL. Undefined when the lease is unknown or already past its deadline. */
  renew(id: K): DeadlineInfo<K> | undefined {
    const l = this.live(id);
    if (!l) return undefined;
    l.expiresAt = this.clock.now() + l.ttlMs;
    return { id, ttlMs: l.ttlMs, remainingMs: l.ttlMs };
  }

  info(id: K): DeadlineInfo<K> | undefined {
    const l = this.live(id);
    if (!l) return undefined;
    return { id, ttlMs: l.ttlMs, remainingMs: l.expiresAt - this.clock.now() };
  }

  /** True when the lease is known and its deadline has passed but the expiry has not run yet. */
  overdue(id: K): boolean {
    const l = this.leases.get(id);
    return !!l && l.expiresAt <= this.clock.now();
  }

  /** Whether the deadline is tracked (it may be past, its expiry not run yet). */
  has(id: K): boolean {
    return this.leases.has(id);
  }

  forget(id: K): void {
    this.leases.delete(id);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    this.leases.clear();
    this.heap.length = 0;
  }

  /**
   * The lease if it is alive. A lease found past its deadline (its timer is late, as real timers
   * can be) is expired right here, so nobody can renew a lease whose TTL has run out.
   */
  private live(id: K): Tracked | undefined {
    const l = this.leases.get(id);
    if (!l) return undefined;
    if (l.expiresAt > this.clock.now()) return l;
    this.fire();
    return undefined;
  }

  private fire(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const expired: K[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const top = this.pop();
      const l = this.leases.get(top.id);
      if (!l) continue;
      if (l.expiresAt > now) {
        this.push({ at: l.expiresAt, id: top.id });
        continue;
      }
      this.leases.delete(top.id);
      expired.push(top.id);
    }
    this.schedule();
    if (expired.length > 0) this.onExpire(expired);
  }

  private schedule(): void {
    if (this.stopped) return;
    const next = this.heap[0];
    if (!next) {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= next.at) return;
    this.timer?.cancel();
    this.timerAt = next.at;
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, next.at - this.clock.now()));
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.fire();
    }, delay);
  }

  // ---- binary min-heap on `at` ------------------------------------------------------------

  private push(e: HeapEntry<K>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= e.at) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): HeapEntry<K> {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
        if (h[c]!.at >= last.at) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
