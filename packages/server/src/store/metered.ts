import type { Store } from './types.js';

/**
 * The store as the writers see it, timing each write from submission to acknowledgement: with
 * group commit (embedded) or a Raft round (etcd) that is the latency a registration waits for,
 * whichever store is behind it. Reads, leases and watches pass through untouched.
 */
export function meteredStore(inner: Store, observe: (seconds: number) => void): Store {
  const timed = async <T>(write: Promise<T>): Promise<T> => {
    // Measured, not scheduled: the monotonic high-resolution clock (a commit takes well under a millisecond).
    const started = performance.now();
    try {
      return await write;
    } finally {
      observe((performance.now() - started) / 1000);
    }
  };
  return {
    kind: inner.kind,
    get: (key) => inner.get(key),
    range: (prefix) => inner.range(prefix),
    put: (key, value, o) => timed(inner.put(key, value, o)),
    delete: (key) => timed(inner.delete(key)),
    txn: (req) => timed(inner.txn(req)),
    currentRevision: () => inner.currentRevision(),
    grantLease: (ttlMs) => inner.grantLease(ttlMs),
    keepAlive: (id) => inner.keepAlive(id),
    revokeLease: (id) => inner.revokeLease(id),
    leaseInfo: (id) => inner.leaseInfo(id),
    watch: (prefix, o) => inner.watch(prefix, o),
    // A restore replaces the whole key space: one rare, large write that would only blur the commit latency.
    restore: (req) => inner.restore(req),
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
  };
}
