import { afterEach, describe, expect, it } from 'vitest';
import { errors, ManualClock } from '@beacon/core';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/types.js';
import { Membership } from './membership.js';
import { rendezvousOwner } from './rendezvous.js';
import { TtlReportRelay } from './ttl-relay.js';

/** Lets store commits and watch deliveries run (they hop through setImmediate). */
async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Steps a manual clock in small increments, letting async work run between them. */
async function advance(clock: ManualClock, ms: number, step = 250): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle();
  }
}

/** A store whose lease renewals can be cut, as for a server that lost its way to etcd. */
function cuttable(inner: Store): Store & { cut: boolean } {
  const down = () => Promise.reject(errors.unavailable('cut off'));
  const s: Store & { cut: boolean } = {
    kind: inner.kind,
    cut: false,
    get: (k) => inner.get(k),
    range: (p) => inner.range(p),
    put: (k, v, o) => (s.cut ? down() : inner.put(k, v, o)),
    delete: (k) => inner.delete(k),
    txn: (r) => inner.txn(r),
    currentRevision: () => inner.currentRevision(),
    grantLease: (ttl) => (s.cut ? down() : inner.grantLease(ttl)),
    keepAlive: (id) => (s.cut ? down() : inner.keepAlive(id)),
    revokeLease: (id) => inner.revokeLease(id),
    leaseInfo: (id) => inner.leaseInfo(id),
    watch: (p, o) => inner.watch(p, o),
    close: () => inner.close(),
  };
  return s;
}

describe('rendezvous hashing', () => {
  const members = ['beacon-1', 'beacon-2', 'beacon-3'];
  const keys = Array.from({ length: 3000 }, (_, i) => `check-${i}`);

  it('gives every key one owner, the same whatever the order of the members, spread evenly', () => {
    const counts = new Map<string, number>();
    for (const k of keys) {
      const o = rendezvousOwner(k, members)!;
      expect(rendezvousOwner(k, [...members].reverse())).toBe(o);
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    for (const m of members) expect(counts.get(m)! / keys.length).toBeGreaterThan(0.25);
    expect(rendezvousOwner('x', [])).toBeUndefined();
  });

  it('moves only the keys of a member that leaves, and only keys to a member that joins', () => {
    const before = new Map(keys.map((k) => [k, rendezvousOwner(k, members)!]));
    for (const k of keys) {
      const after = rendezvousOwner(k, ['beacon-1', 'beacon-3'])!;
      if (before.get(k) !== 'beacon-2') expect(after).toBe(before.get(k));
      const joined = rendezvousOwner(k, [...members, 'beacon-4'])!;
      if (joined !== 'beacon-4') expect(joined).toBe(before.get(k));
    }
  });
});

describe('membership', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup() {
    const clock = new ManualClock();
    const store = await openEmbeddedStore({ path: ':memory:', clock });
    cleanups.push(() => store.close());
    const join = async (node: string, s: Store = store) => {
      const m = new Membership({ store: s, clock, node, version: 'test', ttlMs: 3000 });
      cleanups.push(() => m.close());
      const started = m.start(`http://127.0.0.1/${node}`);
      await settle();
      await started;
      await settle();
      return m;
    };
    return { clock, store, join };
  }

  it('lists the live servers, agrees on one owner per key and names the oldest as leader', async () => {
    const { join } = await setup();
    const a = await join('a');
    const b = await join('b');
    await settle();
    for (const m of [a, b]) {
      expect(m.alive).toBe(true);
      expect(m.members().map((x) => x.node)).toEqual(['a', 'b']);
      expect(m.leader()?.node).toBe('a');
    }
    expect(a.members()[1]).toMatchObject({ node: 'b', httpUrl: 'http://127.0.0.1/b', version: 'test' });
    for (let i = 0; i < 100; i++) expect(Number(a.owns(`k${i}`)) + Number(b.owns(`k${i}`))).toBe(1);
  });

  it('hands everything to the others at once when a server leaves cleanly', async () => {
    const { join } = await setup();
    const a = await join('a');
    const b = await join('b');
    let changes = 0;
    b.onChange(() => changes++);
    await a.close();
    await settle();
    expect(b.members().map((x) => x.node)).toEqual(['b']);
    expect(changes).toBe(1);
    for (let i = 0; i < 50; i++) expect(b.owns(`k${i}`)).toBe(true);
    expect(a.owns('k0')).toBe(false);
  });

  it('drops a server that stops renewing after its TTL; the cut-off server stops claiming work, then rejoins', async () => {
    const { clock, store, join } = await setup();
    const cutStore = cuttable(store);
    const a = await join('a', cutStore);
    const b = await join('b');
    const owned = Array.from({ length: 50 }, (_, i) => `k${i}`).filter((k) => a.owns(k));
    expect(owned.length).toBeGreaterThan(0);

    cutStore.cut = true;
    // Renewals every second keep it alive for less than the TTL...
    await advance(clock, 2000);
    expect(b.members().map((x) => x.node)).toEqual(['a', 'b']);
    // ...and past it the lease is gone: b owns everything, and a claims nothing.
    await advance(clock, 1500);
    expect(b.members().map((x) => x.node)).toEqual(['b']);
    for (const k of owned) expect(b.owns(k)).toBe(true);
    expect(a.alive).toBe(false);
    for (const k of owned) expect(a.owns(k)).toBe(false);

    cutStore.cut = false;
    await advance(clock, 1500);
    expect(a.alive).toBe(true);
    expect(b.members().map((x) => x.node)).toEqual(['a', 'b']);
    for (const k of owned) expect(a.owns(k)).toBe(true);
  });

  it('relays a TTL report taken by a server that does not own the check to its owner', async () => {
    const { clock, store, join } = await setup();
    const a = await join('a');
    const b = await join('b');
    const heard: Record<string, string[]> = { a: [], b: [] };
    const relays = [a, b].map((m) => new TtlReportRelay({ store, clock, membership: m, reported: (id) => heard[m.self]!.push(id) }));
    for (const r of relays) {
      cleanups.push(() => r.close());
      await r.start();
    }
    await relays[1]!.relay('check-1');
    await settle();
    // The reporting server does not hear its own report; the other does.
    expect(heard).toEqual({ a: ['check-1'], b: [] });
    // Relayed reports go with the relaying server's membership.
    expect((await store.get('/beacon/ttl-reports/check-1'))?.lease).toBe(b.leaseId);
  });
});
