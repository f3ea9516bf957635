import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBeaconError, ManualClock } from '@beacon/core';
import { storeContract, type ContractBackend } from '../../test/store-contract.js';
import { openEmbeddedStore, type EmbeddedStore } from './embedded.js';
import { prefixEnd } from './prefix.js';
import type { WatchBatch } from './types.js';

/** Lets queued writes commit (they flush on the next turn of the event loop). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function backendFor(store: EmbeddedStore, clock: ManualClock, cleanup: () => Promise<void>): ContractBackend {
  return {
    store,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    cleanup,
    async compact(revision) {
      store.compact(revision);
    },
  };
}

storeContract('embedded (memory)', async () => {
  const clock = new ManualClock();
  const store = await openEmbeddedStore({ path: ':memory:', clock });
  return backendFor(store, clock, () => store.close());
});

storeContract('embedded (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-store-'));
  const clock = new ManualClock();
  const store = await openEmbeddedStore({ path: join(dir, 'beacon.db'), clock });
  return backendFor(store, clock, async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isBeaconError(e) ? e.code : String(e)),
  );
}

describe('embedded store', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function tempFile(): string {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-store-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'beacon.db');
  }

  async function open(path: string, clock = new ManualClock(), historySize?: number): Promise<EmbeddedStore> {
    const store = await openEmbeddedStore({ path, clock, ...(historySize ? { historySize } : {}) });
    cleanups.push(() => store.close());
    return store;
  }

  describe('leases', () => {
    it('expires exactly at its TTL after the last keep-alive, not a millisecond before', async () => {
      const clock = new ManualClock();
      const store = await open(':memory:', clock);
      const id = await store.grantLease(5000);
      await store.put('/k', 'v', { lease: id });

      clock.advance(4999);
      expect(await store.get('/k')).toBeDefined();
      expect(await store.leaseInfo(id)).toEqual({ id, ttlMs: 5000, remainingMs: 1 });
      expect(await store.keepAlive(id)).toEqual({ id, ttlMs: 5000, remainingMs: 5000 });

      clock.advance(4999);
      expect(await store.get('/k')).toBeDefined();
      // The expiry commits at the deadline itself: no extra turn of the event loop is needed.
      clock.advance(1);
      expect(await store.get('/k')).toBeUndefined();
      expect(await codeOf(store.keepAlive(id))).toBe('not_found');
      expect(await codeOf(store.leaseInfo(id))).toBe('not_found');
      expect(store.stats().leases).toBe(0);
    });

    it('answers not_found for a lease that never existed, and refuses a bad TTL', async () => {
      const store = await open(':memory:');
      expect(await codeOf(store.keepAlive(12345))).toBe('not_found');
      expect(await codeOf(store.leaseInfo(12345))).toBe('not_found');
      expect(await codeOf(store.revokeLease(12345))).toBe('not_found');
      expect(await codeOf(store.put('/k', 'v', { lease: 12345 }))).toBe('not_found');
      expect(await codeOf(store.grantLease(0))).toBe('invalid_argument');
      expect(await codeOf(store.grantLease(1.5))).toBe('invalid_argument');
    });

    it('expires a lease without keys without moving the revision', async () => {
      const clock = new ManualClock();
      const store = await open(':memory:', clock);
      const id = await store.grantLease(2000);
      const r0 = await store.currentRevision();
      clock.advance(2000);
      await settle();
      expect(await store.currentRevision()).toBe(r0);
      expect(await codeOf(store.leaseInfo(id))).toBe('not_found');
    });

    it('gives every stored lease one full TTL of grace after a restart', async () => {
      const path = tempFile();
      const start = 1_700_000_000_000;
      const first = await openEmbeddedStore({ path, clock: new ManualClock(start) });
      const id = await first.grantLease(3000);
      await first.put('/leased', 'v', { lease: id });
      await first.put('/plain', 'v');
      await first.close();

      // Reopened long after the TTL ran out: nobody could renew while we were down.
      const clock = new ManualClock(start + 1_000_000);
      const store = await open(path, clock);
      expect(await store.get('/leased')).toMatchObject({ lease: id });
      expect(await store.leaseInfo(id)).toEqual({ id, ttlMs: 3000, remainingMs: 3000 });
      clock.advance(2999);
      expect(await store.get('/leased')).toBeDefined();
      clock.advance(1);
      expect(await store.get('/leased')).toBeUndefined();
      expect(await store.get('/plain')).toBeDefined();
    });

    it('renews 100,000 leases in memory and expires them all', async () => {
      const clock = new ManualClock();
      const store = await open(tempFile(), clock);
      const n = 100_000;
      const ids = await Promise.all(Array.from({ length: n }, () => store.grantLease(10_000)));
      expect(new Set(ids).size).toBe(n);
      await store.put('/with-lease', 'v', { lease: ids[n - 1]! });
      const commits = store.stats().commits;

      const t0 = performance.now();
      for (let round = 0; round < 3; round++) {
        for (const id of ids) await store.keepAlive(id);
        clock.advance(6000);
      }
      const perSecond = Math.round((3 * n) / ((performance.now() - t0) / 1000));
      console.info(`embedded store: ${perSecond} keep-alives/s over ${n} leases`);

      // 18 s after the grant with a 10 s TTL: alive only because of the renewals, which wrote nothing.
      expect(store.stats().leases).toBe(n);
      expect(store.stats().commits).toBe(commits);
      expect(await store.get('/with-lease')).toBeDefined();

      clock.advance(4000);
      await settle();
      expect(store.stats().leases).toBe(0);
      expect(await store.get('/with-lease')).toBeUndefined();
      expect(await codeOf(store.keepAlive(ids[0]!))).toBe('not_found');
    });
  });

  describe('durability', () => {
    it('reports the database size: pages in use times the page size, growing with the data', async () => {
      const store = await openEmbeddedStore({ path: tempFile(), clock: new ManualClock() });
      try {
        const before = await store.sizeBytes();
        expect(before % 1024).toBe(0);
        for (let i = 0; i < 16; i++) await store.put(`/big/${i}`, 'x'.repeat(16 * 1024));
        expect(await store.sizeBytes()).toBeGreaterThan(before + 256 * 1024);
      } finally {
        await store.close();
      }
    });

    it('keeps keys, their revisions and the revision counter across a reopen', async () => {
      const path = tempFile();
      const first = await openEmbeddedStore({ path, clock: new ManualClock() });
      await first.put('/a', '1');
      await first.put('/b', '2');
      await first.put('/a', '3');
      await first.delete('/b');
      const before = await first.range('/');
      const rev = await first.currentRevision();
      expect(rev).toBe(4);
      await first.close();

      const store = await open(path);
      // The last change was a delete: the counter is kept, not derived from the keys.
      expect(await store.currentRevision()).toBe(rev);
      expect(await store.range('/')).toEqual(before);
      expect(await store.get('/a')).toEqual({ key: '/a', value: '3', createRevision: 1, modRevision: 3, version: 2, lease: 0 });
      expect(await store.put('/c', '4')).toBe(rev + 1);
    });

    it('fails a watch from before the restart with compacted, and serves one from the next revision', async () => {
      const path = tempFile();
      const first = await openEmbeddedStore({ path, clock: new ManualClock() });
      await first.put('/a', '1');
      const rev = await first.put('/a', '2');
      await first.close();

      const store = await open(path);
      const old = store.watch('/', { fromRevision: rev })[Symbol.asyncIterator]();
      expect(await codeOf(old.next())).toBe('compacted');

      const ac = new AbortController();
      const live = store.watch('/', { fromRevision: rev + 1, signal: ac.signal })[Symbol.asyncIterator]();
      const pending = live.next();
      const next = await store.put('/a', '3');
      expect((await pending).value).toMatchObject({ revision: next });
      ac.abort();
    });

    it('refuses a second store on the same file while the first is open', async () => {
      const path = tempFile();
      await open(path);
      const err = await openEmbeddedStore({ path, clock: new ManualClock() }).then(
        (s) => (void s.close(), undefined),
        (e: unknown) => e,
      );
      expect(isBeaconError(err) && err.code).toBe('unavailable');
    });
  });

  describe('group commit', () => {
    it('commits 1,000 concurrent puts in one transaction with consecutive revisions', async () => {
      const path = tempFile();
      const first = await openEmbeddedStore({ path, clock: new ManualClock() });
      const r0 = await first.currentRevision();
      const commits = first.stats().commits;
      const revs = await Promise.all(Array.from({ length: 1000 }, (_, i) => first.put(`/k/${String(i).padStart(4, '0')}`, `v${i}`)));
      expect(revs).toEqual(Array.from({ length: 1000 }, (_, i) => r0 + 1 + i));
      expect(first.stats().commits).toBe(commits + 1);
      await first.close();

      const store = await open(path);
      const { kvs, revision } = await store.range('/k/');
      expect(revision).toBe(r0 + 1000);
      expect(kvs).toHaveLength(1000);
      expect(kvs[999]).toMatchObject({ key: '/k/0999', value: 'v999', modRevision: r0 + 1000 });
    });

    it('evaluates a compare against the writes queued before it', async () => {
      const store = await open(':memory:');
      const r0 = await store.currentRevision();
      const put = store.put('/k', 'v1');
      const cas = store.txn({
        compare: [{ key: '/k', target: 'modRevision', op: 'equal', value: r0 + 1 }],
        success: [{ type: 'put', key: '/k', value: 'v2' }],
      });
      const [a, b] = await Promise.all([
        store.txn({ compare: [{ key: '/lock', target: 'exists', value: false }], success: [{ type: 'put', key: '/lock', value: 'a' }] }),
        store.txn({ compare: [{ key: '/lock', target: 'exists', value: false }], success: [{ type: 'put', key: '/lock', value: 'b' }] }),
      ]);
      expect(await put).toBe(r0 + 1);
      expect(await cas).toMatchObject({ succeeded: true, revision: r0 + 2 });
      expect([a.succeeded, b.succeeded]).toEqual([true, false]);
      expect(await store.get('/lock')).toMatchObject({ value: 'a' });
    });

    it('lets reads see committed state only, and fails a refused write alone', async () => {
      const store = await open(':memory:');
      const put = store.put('/k', 'v');
      const bad = store.put('/x', 'v', { lease: 999 });
      const other = store.put('/y', 'v');
      expect(await store.get('/k')).toBeUndefined();
      expect(await store.currentRevision()).toBe(0);
      expect(await put).toBe(1);
      expect(await codeOf(bad)).toBe('not_found');
      expect(await other).toBe(2);
      expect(await store.get('/k')).toBeDefined();
      expect(await store.get('/x')).toBeUndefined();
    });

    it('commits writes still queued when the store closes', async () => {
      const path = tempFile();
      const first = await openEmbeddedStore({ path, clock: new ManualClock() });
      const put = first.put('/late', 'v');
      await first.close();
      expect(await put).toBe(1);
      expect(await codeOf(first.put('/after', 'v'))).toBe('unavailable');
      expect(await codeOf(first.get('/late'))).toBe('unavailable');
      const store = await open(path);
      expect(await store.get('/late')).toMatchObject({ value: 'v' });
    });
  });

  describe('watch', () => {
    it('carries prevKv on overwrites, deletes and lease expiries', async () => {
      const clock = new ManualClock();
      const store = await open(':memory:', clock);
      const id = await store.grantLease(2000);
      await store.put('/a', '1', { lease: id });
      await store.put('/a', '2', { lease: id });
      await store.put('/b', 'x');
      await store.delete('/b');
      clock.advance(2000);
      const seen: WatchBatch[] = [];
      for await (const b of store.watch('/', { fromRevision: 1 })) {
        seen.push(b);
        if (seen.length === 5) break;
      }
      expect(seen.map((b) => b.events.map((e) => [e.type, e.kv.key, e.prevKv?.value]))).toEqual([
        [['put', '/a', undefined]],
        [['put', '/a', '1']],
        [['put', '/b', undefined]],
        [['delete', '/b', 'x']],
        [['delete', '/a', '2']],
      ]);
    });

    it('keeps a bounded history: older revisions and watchers that fall behind get compacted', async () => {
      const store = await open(':memory:', new ManualClock(), 10);
      for (let i = 0; i < 20; i++) await store.put(`/k${i}`, 'v');
      expect(await codeOf(store.watch('/', { fromRevision: 5 })[Symbol.asyncIterator]().next())).toBe('compacted');
      const recent = store.watch('/', { fromRevision: 11 })[Symbol.asyncIterator]();
      expect((await recent.next()).value).toMatchObject({ revision: 11 });

      // Having read revision 11, this watcher needs 12 next; 15 more writes push it out of the window.
      for (let i = 0; i < 15; i++) await store.put(`/more${i}`, 'v');
      expect(await codeOf(recent.next())).toBe('compacted');
      expect(store.stats().retainedEvents).toBeLessThanOrEqual(10);
    });

    it('wakes every watcher of a revision, each with its own prefix', async () => {
      const store = await open(':memory:');
      const acs = [new AbortController(), new AbortController(), new AbortController()];
      const its = ['/', '/a/', '/b/'].map((p, i) => store.watch(p, { fromRevision: 1, signal: acs[i]!.signal })[Symbol.asyncIterator]());
      const pending = its.map((it) => it.next());
      const rev = await store.txn({
        compare: [],
        success: [
          { type: 'put', key: '/a/1', value: 'x' },
          { type: 'put', key: '/b/1', value: 'y' },
        ],
      });
      const got = await Promise.all(pending);
      expect(got.map((r) => (r.value as WatchBatch).events.map((e) => e.kv.key))).toEqual([['/a/1', '/b/1'], ['/a/1'], ['/b/1']]);
      for (const r of got) expect((r.value as WatchBatch).revision).toBe(rev.revision);
      for (const ac of acs) ac.abort();
    });

    it('fails a watch on a closed store with unavailable', async () => {
      const store = await openEmbeddedStore({ path: ':memory:', clock: new ManualClock() });
      await store.close();
      expect(await codeOf(store.watch('/', { fromRevision: 1 })[Symbol.asyncIterator]().next())).toBe('unavailable');
    });
  });

  describe('input', () => {
    it('rejects bad keys and malformed transactions with invalid_argument', async () => {
      const store = await open(':memory:');
      expect(await codeOf(store.put('', 'v'))).toBe('invalid_argument');
      expect(await codeOf(store.put('/k', 'bad \ud800 surrogate'))).toBe('invalid_argument');
      expect(await codeOf(store.put('/k'.padEnd(5000, 'x'), 'v'))).toBe('invalid_argument');
      expect(await codeOf(store.put('/k', 'x'.repeat(2_000_000)))).toBe('payload_too_large');
      expect(await codeOf(store.txn({ compare: [], success: [{ type: 'nope' } as never] }))).toBe('invalid_argument');
      expect(await codeOf(store.txn({ compare: [{ key: '/k', target: 'value', op: 'less', value: 'a' } as never], success: [] }))).toBe('invalid_argument');
      expect(await codeOf(store.txn({ compare: [], success: [{ type: 'put', key: '/a/k', value: '' }, { type: 'deletePrefix', prefix: '/a/' }] }))).toBe('invalid_argument');
      expect(await store.currentRevision()).toBe(0);
    });

    it('ranges correctly over keys with characters beyond the BMP', async () => {
      const store = await open(':memory:');
      const keys = ['/u/a', '/u/\u{ffff}', '/u/😀', '/u/\u{10ffff}', '/u/\u{10ffff}\u{10ffff}', '/v'];
      for (const k of keys) await store.put(k, 'v');
      expect((await store.range('/u/')).kvs.map((kv) => kv.key)).toEqual(keys.slice(0, 5));
      expect((await store.range('/u/\u{10ffff}')).kvs).toHaveLength(2);
      expect((await store.range('')).kvs).toHaveLength(6);
    });

    it('computes the end of a prefix range in code point order', () => {
      expect(prefixEnd('/a/')).toBe('/a0');
      expect(prefixEnd('')).toBeUndefined();
      expect(prefixEnd('a\u{10ffff}')).toBe('b');
      expect(prefixEnd('\u{d7ff}')).toBe('\u{e000}');
      expect(prefixEnd('\u{ffff}')).toBe('\u{10000}');
    });
  });
});
