import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { CatalogView } from '../catalog/view.js';
import { KEYS } from '../keys.js';
import { Registry } from '../registry/registry.js';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/types.js';
import { SharedLeases, ttlBucket } from './shared-leases.js';

/** Lets store commits and watch deliveries run (they hop through setImmediate). */
async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Steps the manual clock in small increments, letting async work run between them. */
async function advance(clock: ManualClock, ms: number, step = 250): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle();
  }
}

/** A store that counts the calls a heartbeat must not make. */
function counting(inner: Store): Store & { grants: number; keepAlives: number; puts: string[] } {
  const s: Store & { grants: number; keepAlives: number; puts: string[] } = {
    kind: inner.kind,
    grants: 0,
    keepAlives: 0,
    puts: [],
    get: (k) => inner.get(k),
    range: (p) => inner.range(p),
    put: (k, v, o) => (s.puts.push(k), inner.put(k, v, o)),
    delete: (k) => inner.delete(k),
    txn: (r) => inner.txn(r),
    currentRevision: () => inner.currentRevision(),
    grantLease: (ttl) => (s.grants++, inner.grantLease(ttl)),
    keepAlive: (id) => (s.keepAlives++, inner.keepAlive(id)),
    revokeLease: (id) => inner.revokeLease(id),
    leaseInfo: (id) => inner.leaseInfo(id),
    restore: (r) => inner.restore(r),
    watch: (p, o) => inner.watch(p, o),
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
  };
  return s;
}

interface Server {
  node: string;
  catalog: CatalogView;
  leases: SharedLeases;
  registry: Registry;
  close(): Promise<void>;
}

describe('shared instance leases (clustered mode)', () => {
  const open: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of open.splice(0).reverse()) await c();
  });

  /** Two servers over one store, as two Beacon servers over one etcd; `live` is the member list. */
  async function rig() {
    const clock = new ManualClock();
    const raw = await openEmbeddedStore({ path: ':memory:', clock });
    const store = counting(raw);
    open.push(() => raw.close());
    const live = new Set(['a', 'b']);
    const server = async (node: string): Promise<Server> => {
      const catalog = new CatalogView({ store, clock });
      await catalog.start();
      const leases = new SharedLeases({ store, clock, catalog, membership: { self: node, leaseId: 0, members: () => [...live].map((n) => ({ node: n })) } });
      const registry = new Registry({ store, catalog, clock, nodeName: node, leases });
      registry.start();
      await leases.start();
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        registry.close();
        await leases.close();
        await catalog.close();
      };
      open.push(close);
      return { node, catalog, leases, registry, close };
    };
    const a = await server('a');
    const b = await server('b');
    return { clock, store, live, a, b };
  }

  const reg = (id: string, ttlMs: number) => ({ id, service: 'web', address: '127.0.0.1', port: 80, ttlMs });

  it('buckets TTLs: 1 s wide to a minute, 10 s to ten minutes, a minute beyond; the lease adds the margin', () => {
    expect(ttlBucket(2500)).toEqual({ bucketSec: 3, leaseTtlMs: 6000 });
    expect(ttlBucket(30_000)).toEqual({ bucketSec: 30, leaseTtlMs: 33_000 });
    expect(ttlBucket(61_000)).toEqual({ bucketSec: 70, leaseTtlMs: 80_000 });
    expect(ttlBucket(601_000)).toEqual({ bucketSec: 660, leaseTtlMs: 720_000 });
  });

  it('puts instances of one TTL bucket on one lease; a heartbeat to the owner is memory only; a silent instance is deleted at its deadline', async () => {
    const { clock, store, a, b } = await rig();
    await a.registry.register(reg('w-1', 10_000));
    await a.registry.register(reg('w-2', 10_000));
    await a.registry.register(reg('w-3', 20_000));
    expect(store.grants).toBe(2); // one lease per bucket, not per instance
    expect(a.catalog.leaseOf('w-1')).toBe(a.catalog.leaseOf('w-2'));
    expect(a.catalog.leaseOf('w-3')).not.toBe(a.catalog.leaseOf('w-1'));
    expect(a.leases.tracked).toBe(3);
    expect(b.leases.tracked).toBe(0);

    const before = { keepAlives: store.keepAlives, puts: store.puts.length };
    for (let k = 0; k < 4; k++) {
      await advance(clock, 4000);
      expect(await a.registry.heartbeat('w-1')).toEqual({ ttlMs: 10_000, remainingMs: 10_000 });
    }
    // 16 s in: w-1 kept alive, w-2 (silent, 10 s) deleted by its owner, w-3 (20 s) still there.
    expect(a.catalog.instance('w-1')).toBeDefined();
    expect(a.catalog.instance('w-2')).toBeUndefined();
    expect(b.catalog.instance('w-2')).toBeUndefined();
    expect(b.catalog.history({ instanceId: 'w-2' }).at(-1)).toMatchObject({ kind: 'deregistered', cause: 'lease_expired' });
    expect(a.catalog.instance('w-3')).toBeDefined();
    // The heartbeats wrote nothing; the only store calls were the leases' own renewals (one per lease a second).
    expect(store.puts.length).toBe(before.puts);
    expect(store.keepAlives - before.keepAlives).toBeLessThanOrEqual(2 * 17);
    await expect(a.registry.heartbeat('w-2')).rejects.toMatchObject({ code: 'not_found' });
    await advance(clock, 5000);
    expect(a.catalog.instance('w-3')).toBeUndefined();
  });

  it('relays heartbeats that reach another server to the owner, several in one write', async () => {
    const { clock, store, a, b } = await rig();
    for (let k = 0; k < 5; k++) await a.registry.register(reg(`r-${k}`, 5000));
    await settle();
    for (let round = 0; round < 4; round++) {
      await advance(clock, 3000);
      const puts = store.puts.length;
      // Five heartbeats in one turn through the non-owner: one relay write carries them all.
      const answers = await Promise.all([0, 1, 2, 3, 4].map((k) => b.registry.heartbeat(`r-${k}`)));
      expect(answers.every((x) => x.ttlMs === 5000)).toBe(true);
      expect(store.puts.slice(puts)).toEqual([KEYS.heartbeatRelay('a', 'b')]);
    }
    // 12 s in, well past the 5 s TTL: all alive, still owned (and timed) by a.
    await settle();
    for (let k = 0; k < 5; k++) expect(b.catalog.instance(`r-${k}`)).toBeDefined();
    expect(a.leases.tracked).toBe(5);
    expect(b.leases.tracked).toBe(0);
  });

  it('when the owner dies: a heartbeat through another server takes the instance over; the rest go within TTL bucket + margin', async () => {
    const { clock, live, a, b } = await rig();
    await a.registry.register(reg('kept', 5000));
    await a.registry.register(reg('orphan', 5000));
    const lease = a.catalog.leaseOf('kept');
    // a dies: it renews nothing and deletes nothing any more; b sees it leave the members.
    await a.close();
    live.delete('a');
    await advance(clock, 1000);
    expect(await b.registry.heartbeat('kept')).toEqual({ ttlMs: 5000, remainingMs: 5000 });
    await settle();
    expect(b.catalog.leaseOf('kept')).not.toBe(lease);
    expect(b.leases.tracked).toBe(1);
    // The orphan lives on a's lease until it lapses: 5 s bucket + 3 s margin from a's last renewal
    // (its grant, at 0 here); the taken-over instance lives by b's lease and heartbeats meanwhile.
    for (let k = 0; k < 3; k++) {
      await advance(clock, 2000);
      await b.registry.heartbeat('kept');
    }
    expect(b.catalog.instance('orphan')).toBeDefined();
    await advance(clock, 1250);
    expect(b.catalog.instance('orphan')).toBeUndefined();
    expect(b.catalog.instance('kept')).toBeDefined();
    // Silent from now on, it goes at b's deadline.
    await advance(clock, 5000);
    expect(b.catalog.instance('kept')).toBeUndefined();
  });

  it('a re-registration through another server keeps the owner and counts as a heartbeat', async () => {
    const { clock, a, b } = await rig();
    await a.registry.register(reg('re', 5000));
    const lease = a.catalog.leaseOf('re');
    await advance(clock, 4000);
    await b.registry.register({ ...reg('re', 5000), tags: ['v2'] });
    expect(b.catalog.leaseOf('re')).toBe(lease);
    await advance(clock, 4000);
    expect(a.catalog.instance('re')?.tags).toEqual(['v2']);
    // Deregistering does not revoke the shared lease: the other instance on it stays.
    await a.registry.register(reg('other', 5000));
    await b.registry.deregister('re');
    await settle();
    expect(a.catalog.instance('other')).toBeDefined();
    expect(a.leases.tracked).toBe(1);
  });
});
