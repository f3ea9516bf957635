/**
 * The Store contract: every backend (embedded SQLite, etcd) runs this very suite.
 *
 * Nothing here may depend on one backend:
 * - time moves only through `advance(ms)` (a manual clock for the embedded store, a real sleep
 *   for etcd), so lease TTLs are >= 2000 ms (etcd's minimum) and the margins tolerate etcd's
 *   one-second lease granularity and its half-second expiry sweep;
 * - revisions are compared relative to `currentRevision()`, never as absolute numbers;
 * - every test writes under its own key prefix, so a shared etcd cluster is fine;
 * - compaction is an optional hook: the compaction test is skipped for a backend without it.
 *
 * Prefixes are plain string prefixes: `/a/b` matches `/a/bc`; callers wanting children pass `/a/b/`.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBeaconError } from '@beacon/core';
import type { Store, WatchBatch } from '../src/store/types.js';

export interface ContractBackend {
  store: Store;
  /** Moves time forward: a manual clock, or a real sleep. Resolves once due expiries have been committed. */
  advance(ms: number): Promise<void>;
  /** Releases everything; must tolerate a store the test has already closed. */
  cleanup(): Promise<void>;
  /** Drops watch history below `revision` (as etcd's compaction). Optional: its test is skipped when absent. */
  compact?(revision: number): Promise<void>;
}

/** How long a test waits for an expected watch batch before failing (never reached when all is well). */
const WATCH_WAIT_MS = 10_000;

export function storeContract(name: string, makeBackend: () => Promise<ContractBackend>): void {
  describe(`Store contract: ${name}`, () => {
    const run = randomUUID().slice(0, 8);
    let seq = 0;
    let backend: ContractBackend;
    let store: Store;
    let ns: string;
    const watches: AbortController[] = [];

    beforeEach(async () => {
      backend = await makeBackend();
      store = backend.store;
      ns = `/contract/${run}/${++seq}/`;
    });

    afterEach(async () => {
      for (const w of watches.splice(0)) w.abort();
      await backend.cleanup();
    });

    /** A watch with a pull-one-batch helper that fails instead of hanging. */
    function openWatch(prefix: string, fromRevision: number) {
      const ac = new AbortController();
      watches.push(ac);
      const it = store.watch(prefix, { fromRevision, signal: ac.signal })[Symbol.asyncIterator]();
      return {
        ac,
        it,
        async next(): Promise<WatchBatch> {
          const r = await withTimeout(it.next(), `a watch batch on ${prefix}`);
          if (r.done) throw new Error('the watch ended unexpectedly');
          return r.value;
        },
        async take(n: number): Promise<WatchBatch[]> {
          const out: WatchBatch[] = [];
          while (out.length < n) out.push(await this.next());
          return out;
        },
      };
    }

    describe('size', () => {
      // Only that it answers: etcd's dbSize is the member's allocated file, which moves in steps
      // of its own and after its backend batch commits, not with each write.
      it('reports a size on disk', async () => {
        await store.put(`${ns}k`, 'v');
        expect(await store.sizeBytes()).toBeGreaterThan(0);
      });
    });

    describe('keys', () => {
      it('puts and gets a key with its revisions and version', async () => {
        const before = await store.currentRevision();
        const rev = await store.put(`${ns}k`, 'v1');
        expect(rev).toBe(before + 1);
        const kv = await store.get(`${ns}k`);
        expect(kv).toEqual({ key: `${ns}k`, value: 'v1', createRevision: rev, modRevision: rev, version: 1, lease: 0 });
        expect(await store.get(`${ns}missing`)).toBeUndefined();
      });

      it('bumps the global revision by one per mutation and not for a no-op', async () => {
        const r0 = await store.currentRevision();
        expect(await store.put(`${ns}a`, '1')).toBe(r0 + 1);
        expect(await store.put(`${ns}b`, '1')).toBe(r0 + 2);
        expect(await store.put(`${ns}a`, '2')).toBe(r0 + 3);
        expect(await store.delete(`${ns}a`)).toBe(r0 + 4);
        expect(await store.currentRevision()).toBe(r0 + 4);
        // Deleting an absent key changes nothing, so the revision stays.
        expect(await store.delete(`${ns}a`)).toBe(r0 + 4);
        expect(await store.currentRevision()).toBe(r0 + 4);
      });

      it('keeps createRevision, moves modRevision and counts versions; a re-created key starts over', async () => {
        const r1 = await store.put(`${ns}k`, 'a');
        const r2 = await store.put(`${ns}k`, 'b');
        const r3 = await store.put(`${ns}k`, 'c');
        expect(await store.get(`${ns}k`)).toMatchObject({ value: 'c', createRevision: r1, modRevision: r3, version: 3 });
        expect(r2).toBe(r1 + 1);
        await store.delete(`${ns}k`);
        expect(await store.get(`${ns}k`)).toBeUndefined();
        const r5 = await store.put(`${ns}k`, 'd');
        expect(await store.get(`${ns}k`)).toMatchObject({ value: 'd', createRevision: r5, modRevision: r5, version: 1 });
      });

      it('ranges over a plain string prefix, sorted by key, at the current revision', async () => {
        for (const k of ['a/c', 'a/b/x', 'a/bc', 'a/b', 'b/a']) await store.put(`${ns}${k}`, k);
        const rev = await store.currentRevision();

        const children = await store.range(`${ns}a/b/`);
        expect(children.kvs.map((kv) => kv.key)).toEqual([`${ns}a/b/x`]);
        expect(children.revision).toBe(rev);

        // Without the trailing slash the prefix also matches the sibling `a/bc`.
        const loose = await store.range(`${ns}a/b`);
        expect(loose.kvs.map((kv) => kv.key)).toEqual([`${ns}a/b`, `${ns}a/b/x`, `${ns}a/bc`]);

        const all = await store.range(ns);
        expect(all.kvs.map((kv) => kv.value)).toEqual(['a/b', 'a/b/x', 'a/bc', 'a/c', 'b/a']);
        expect((await store.range(`${ns}zzz/`)).kvs).toEqual([]);
      });

      it('deletes a key: gone from get and range', async () => {
        await store.put(`${ns}x`, '1');
        await store.put(`${ns}y`, '2');
        await store.delete(`${ns}x`);
        expect(await store.get(`${ns}x`)).toBeUndefined();
        expect((await store.range(ns)).kvs.map((kv) => kv.key)).toEqual([`${ns}y`]);
      });
    });

    describe('transactions', () => {
      it('creates only if absent (createRevision == 0 and exists == false)', async () => {
        const key = `${ns}lock`;
        const first = await store.txn({
          compare: [{ key, target: 'createRevision', op: 'equal', value: 0 }],
          success: [{ type: 'put', key, value: 'me' }],
          failure: [{ type: 'get', key }],
        });
        expect(first.succeeded).toBe(true);
        expect(await store.get(key)).toMatchObject({ value: 'me', modRevision: first.revision });

        const second = await store.txn({
          compare: [{ key, target: 'exists', value: false }],
          success: [{ type: 'put', key, value: 'you' }],
          failure: [{ type: 'get', key }],
        });
        expect(second.succeeded).toBe(false);
        expect(second.revision).toBe(first.revision);
        expect(second.results[0]?.kv).toMatchObject({ key, value: 'me' });
        expect(await store.get(key)).toMatchObject({ value: 'me' });

        const exists = await store.txn({ compare: [{ key, target: 'exists', value: true }], success: [{ type: 'get', key }] });
        expect(exists.succeeded).toBe(true);
        expect(exists.results[0]?.kv?.value).toBe('me');
      });

      it('compares and swaps on modRevision', async () => {
        const key = `${ns}cas`;
        const seen = await store.put(key, 'v1');
        await store.put(key, 'v2');
        const stale = await store.txn({
          compare: [{ key, target: 'modRevision', op: 'equal', value: seen }],
          success: [{ type: 'put', key, value: 'lost update' }],
        });
        expect(stale.succeeded).toBe(false);
        expect(stale.results).toEqual([]);
        expect(await store.get(key)).toMatchObject({ value: 'v2' });

        const cur = (await store.get(key))!;
        const ok = await store.txn({
          compare: [{ key, target: 'modRevision', op: 'equal', value: cur.modRevision }],
          success: [{ type: 'put', key, value: 'v3' }],
        });
        expect(ok.succeeded).toBe(true);
        expect(ok.revision).toBe(cur.modRevision + 1);
        // A put's result carries the value it replaced.
        expect(ok.results[0]?.kv).toMatchObject({ key, value: 'v2' });
        expect(await store.get(key)).toMatchObject({ value: 'v3', version: 3 });
      });

      it('compares version, createRevision and modRevision with every operator', async () => {
        const key = `${ns}n`;
        const created = await store.put(key, 'a');
        const mod = await store.put(key, 'b'); // version 2
        const holds = async (c: Parameters<Store['txn']>[0]['compare'][number]) => (await store.txn({ compare: [c], success: [] })).succeeded;
        expect(await holds({ key, target: 'version', op: 'equal', value: 2 })).toBe(true);
        expect(await holds({ key, target: 'version', op: 'notEqual', value: 2 })).toBe(false);
        expect(await holds({ key, target: 'version', op: 'greater', value: 1 })).toBe(true);
        expect(await holds({ key, target: 'version', op: 'less', value: 2 })).toBe(false);
        expect(await holds({ key, target: 'createRevision', op: 'equal', value: created })).toBe(true);
        expect(await holds({ key, target: 'createRevision', op: 'less', value: mod })).toBe(true);
        expect(await holds({ key, target: 'modRevision', op: 'greater', value: created })).toBe(true);
        expect(await holds({ key, target: 'modRevision', op: 'notEqual', value: mod })).toBe(false);
        // An absent key has version 0 and revisions 0.
        expect(await holds({ key: `${ns}absent`, target: 'version', op: 'equal', value: 0 })).toBe(true);
        expect(await holds({ key: `${ns}absent`, target: 'modRevision', op: 'equal', value: 0 })).toBe(true);
      });

      it('compares values; a value compare on an absent key is false', async () => {
        const key = `${ns}val`;
        await store.put(key, 'blue');
        const holds = async (c: Parameters<Store['txn']>[0]['compare'][number]) => (await store.txn({ compare: [c], success: [] })).succeeded;
        expect(await holds({ key, target: 'value', op: 'equal', value: 'blue' })).toBe(true);
        expect(await holds({ key, target: 'value', op: 'equal', value: 'red' })).toBe(false);
        expect(await holds({ key, target: 'value', op: 'notEqual', value: 'red' })).toBe(true);
        expect(await holds({ key: `${ns}absent`, target: 'value', op: 'equal', value: '' })).toBe(false);
        expect(await holds({ key: `${ns}absent`, target: 'value', op: 'notEqual', value: 'x' })).toBe(false);
        expect(await holds({ key: `${ns}absent`, target: 'exists', value: false })).toBe(true);
      });

      it('requires every compare to hold, and runs the failure branch otherwise', async () => {
        await store.put(`${ns}a`, '1');
        await store.put(`${ns}b`, '2');
        const res = await store.txn({
          compare: [
            { key: `${ns}a`, target: 'value', op: 'equal', value: '1' },
            { key: `${ns}b`, target: 'value', op: 'equal', value: 'not 2' },
          ],
          success: [{ type: 'put', key: `${ns}won`, value: 'yes' }],
          failure: [{ type: 'put', key: `${ns}lost`, value: 'yes' }],
        });
        expect(res.succeeded).toBe(false);
        expect(await store.get(`${ns}won`)).toBeUndefined();
        expect(await store.get(`${ns}lost`)).toMatchObject({ value: 'yes', modRevision: res.revision });
      });

      it('does not bump the revision for a failed compare without writes or a read-only txn', async () => {
        await store.put(`${ns}k`, 'v');
        const r0 = await store.currentRevision();
        const failed = await store.txn({ compare: [{ key: `${ns}k`, target: 'value', op: 'equal', value: 'other' }], success: [{ type: 'put', key: `${ns}k`, value: 'x' }] });
        expect(failed.succeeded).toBe(false);
        expect(failed.revision).toBe(r0);
        const read = await store.txn({ compare: [], success: [{ type: 'get', key: `${ns}k` }] });
        expect(read.revision).toBe(r0);
        expect(read.results[0]?.kv?.value).toBe('v');
        expect(await store.currentRevision()).toBe(r0);
      });

      it('applies all ops of a txn atomically at one revision, seen by a watcher as one batch', async () => {
        await store.put(`${ns}old/1`, 'x');
        await store.put(`${ns}old/2`, 'y');
        await store.put(`${ns}c`, 'z');
        const from = (await store.currentRevision()) + 1;
        const w = openWatch(ns, from);
        const res = await store.txn({
          compare: [],
          success: [
            { type: 'put', key: `${ns}a`, value: '1' },
            { type: 'put', key: `${ns}b`, value: '2' },
            { type: 'delete', key: `${ns}c` },
            { type: 'deletePrefix', prefix: `${ns}old/` },
          ],
        });
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBe(from);
        expect(res.results[2]).toMatchObject({ deleted: 1 });
        expect(res.results[3]).toMatchObject({ deleted: 2 });
        expect((await store.get(`${ns}a`))?.modRevision).toBe(from);
        expect((await store.get(`${ns}b`))?.modRevision).toBe(from);
        expect((await store.range(ns)).kvs.map((kv) => kv.key)).toEqual([`${ns}a`, `${ns}b`]);

        const batch = await w.next();
        expect(batch.revision).toBe(from);
        expect(batch.events.map((e) => [e.type, e.kv.key])).toEqual([
          ['put', `${ns}a`],
          ['put', `${ns}b`],
          ['delete', `${ns}c`],
          ['delete', `${ns}old/1`],
          ['delete', `${ns}old/2`],
        ]);
        for (const e of batch.events) expect(e.kv.modRevision).toBe(from);
      });
      it('refuses a branch that writes one key twice, and applies nothing of it', async () => {
        const r0 = await store.currentRevision();
        await expectCode(
          store.txn({
            compare: [],
            success: [
              { type: 'put', key: `${ns}k`, value: '1' },
              { type: 'put', key: `${ns}k`, value: '2' },
            ],
          }),
          'invalid_argument',
        );
        await expectCode(
          store.txn({
            compare: [],
            success: [
              { type: 'put', key: `${ns}k`, value: '1' },
              { type: 'delete', key: `${ns}k` },
            ],
          }),
          'invalid_argument',
        );
        expect(await store.get(`${ns}k`)).toBeUndefined();
        expect(await store.currentRevision()).toBe(r0);
      });
    });

    describe('leases', () => {
      it('grants a lease and attaches keys to it', async () => {
        const id = await store.grantLease(2000);
        expect(id).toBeGreaterThan(0);
        const info = await store.leaseInfo(id);
        expect(info).toMatchObject({ id, ttlMs: 2000 });
        expect(info!.remainingMs).toBeGreaterThan(0);
        expect(info!.remainingMs).toBeLessThanOrEqual(2000);
        await store.put(`${ns}svc`, 'up', { lease: id });
        expect(await store.get(`${ns}svc`)).toMatchObject({ value: 'up', lease: id });
      });

      it('keeps a lease and its keys alive while renewed, and drops them after the TTL', async () => {
        const id = await store.grantLease(2000);
        await store.put(`${ns}svc`, 'up', { lease: id });
        await backend.advance(1000);
        expect(await store.get(`${ns}svc`)).toBeDefined();
        const renewed = await store.keepAlive(id);
        expect(renewed.ttlMs).toBe(2000);
        expect(renewed.remainingMs).toBeGreaterThan(1000);
        // 2.5 s after the grant: past the original TTL, alive thanks to the renewal.
        await backend.advance(1500);
        expect(await store.get(`${ns}svc`)).toBeDefined();
        await store.keepAlive(id);
        await backend.advance(1500);
        expect(await store.get(`${ns}svc`)).toBeDefined();
        // No more renewals: well past the TTL, the lease and its key are gone.
        await backend.advance(3000);
        expect(await store.get(`${ns}svc`)).toBeUndefined();
        await expectCode(store.keepAlive(id), 'not_found');
        await expectCode(store.leaseInfo(id), 'not_found');
      });

      it('deletes every attached key in one revision on expiry, seen by a watcher as deletes', async () => {
        const id = await store.grantLease(2000);
        await store.put(`${ns}one`, '1', { lease: id });
        await store.put(`${ns}two`, '2', { lease: id });
        await store.put(`${ns}stays`, '3');
        const from = (await store.currentRevision()) + 1;
        const w = openWatch(ns, from);
        await backend.advance(4000);
        const batch = await w.next();
        expect(batch.events.map((e) => [e.type, e.kv.key]).sort()).toEqual([
          ['delete', `${ns}one`],
          ['delete', `${ns}two`],
        ]);
        for (const e of batch.events) {
          expect(e.kv.modRevision).toBe(batch.revision);
          if (e.prevKv) expect(e.prevKv.lease).toBe(id);
        }
        expect(await store.get(`${ns}one`)).toBeUndefined();
        expect(await store.get(`${ns}two`)).toBeUndefined();
        expect(await store.get(`${ns}stays`)).toMatchObject({ value: '3' });
        await expectCode(store.keepAlive(id), 'not_found');
      });

      it('revokes a lease: its keys go in one revision and it cannot be renewed', async () => {
        const id = await store.grantLease(60_000);
        await store.put(`${ns}one`, '1', { lease: id });
        await store.put(`${ns}two`, '2', { lease: id });
        const r0 = await store.currentRevision();
        await store.revokeLease(id);
        expect(await store.currentRevision()).toBe(r0 + 1);
        expect((await store.range(ns)).kvs).toEqual([]);
        await expectCode(store.keepAlive(id), 'not_found');
        await expectCode(store.revokeLease(id), 'not_found');
      });

      it('refuses a put on a revoked lease', async () => {
        const id = await store.grantLease(2000);
        await store.revokeLease(id);
        await expectCode(store.put(`${ns}k`, 'v', { lease: id }), 'not_found');
        expect(await store.get(`${ns}k`)).toBeUndefined();
        await expectCode(store.keepAlive(id), 'not_found');
      });

      it('detaches a key from its lease when it is put without one', async () => {
        const id = await store.grantLease(2000);
        await store.put(`${ns}k`, 'v1', { lease: id });
        await store.put(`${ns}k`, 'v2');
        expect(await store.get(`${ns}k`)).toMatchObject({ value: 'v2', lease: 0 });
        await store.revokeLease(id);
        expect(await store.get(`${ns}k`)).toMatchObject({ value: 'v2' });
      });
    });

    describe('restore', () => {
      it('replaces a prefix but what it keeps, in one watch batch; leased keys get a fresh lease of their TTL', async () => {
        const replaced = await store.grantLease(60_000);
        const shared = await store.grantLease(60_000);
        await store.put(`${ns}data/gone`, 'old', { lease: replaced });
        await store.put(`${ns}data/same`, 'old', { lease: shared });
        await store.put(`${ns}data/kept/member`, 'mine', { lease: shared });
        await store.put(`${ns}other`, 'outside');
        const from = (await store.currentRevision()) + 1;
        const w = openWatch(ns, from);
        const rev = await store.restore({
          prefix: `${ns}data/`,
          keep: [`${ns}data/kept/`],
          leases: [{ id: 77, ttlMs: 2000 }],
          kvs: [
            { key: `${ns}data/same`, value: 'restored', lease: 0 },
            { key: `${ns}data/leased`, value: 'up', lease: 77 },
          ],
        });
        expect(rev).toBe(from);
        const batch = await w.next();
        expect(batch.revision).toBe(rev);
        expect(batch.events.map((e) => [e.type, e.kv.key]).sort()).toEqual([
          ['delete', `${ns}data/gone`],
          ['put', `${ns}data/leased`],
          ['put', `${ns}data/same`],
        ]);
        expect((await store.range(ns)).kvs.map((kv) => [kv.key, kv.value])).toEqual([
          [`${ns}data/kept/member`, 'mine'],
          [`${ns}data/leased`, 'up'],
          [`${ns}data/same`, 'restored'],
          [`${ns}other`, 'outside'],
        ]);
        // The lease that held only replaced keys went with them; one still holding a kept key stays.
        await expectCode(store.leaseInfo(replaced), 'not_found');
        expect(await store.leaseInfo(shared)).toMatchObject({ id: shared });
        expect(await store.get(`${ns}data/kept/member`)).toMatchObject({ lease: shared });
        const leased = await store.get(`${ns}data/leased`);
        expect(leased!.lease).toBeGreaterThan(0);
        expect((await store.leaseInfo(leased!.lease))?.ttlMs).toBe(2000);
        // Nobody renews the fresh lease: its key goes at the TTL, as any leased key.
        await backend.advance(4000);
        expect(await store.get(`${ns}data/leased`)).toBeUndefined();
        expect(await store.get(`${ns}data/same`)).toMatchObject({ value: 'restored' });
      });

      it('refuses a restore with a key outside its prefix or a lease it does not define, and changes nothing', async () => {
        await store.put(`${ns}data/a`, '1');
        const r0 = await store.currentRevision();
        const base = { prefix: `${ns}data/`, keep: [`${ns}data/kept/`], leases: [] };
        await expectCode(store.restore({ ...base, kvs: [{ key: `${ns}elsewhere`, value: 'x', lease: 0 }] }), 'invalid_argument');
        await expectCode(store.restore({ ...base, kvs: [{ key: `${ns}data/kept/x`, value: 'x', lease: 0 }] }), 'invalid_argument');
        await expectCode(store.restore({ ...base, kvs: [{ key: `${ns}data/b`, value: 'x', lease: 5 }] }), 'invalid_argument');
        expect(await store.currentRevision()).toBe(r0);
        expect((await store.range(ns)).kvs.map((kv) => [kv.key, kv.value])).toEqual([[`${ns}data/a`, '1']]);
      });
    });

    describe('watch', () => {
      it('replays from a past revision, then continues live', async () => {
        const r1 = await store.put(`${ns}a`, '1');
        const r2 = await store.put(`${ns}a`, '2');
        const r3 = await store.delete(`${ns}a`);
        const w = openWatch(ns, r1);
        const replay = await w.take(3);
        expect(replay.map((b) => b.revision)).toEqual([r1, r2, r3]);
        expect(replay[0]!.events).toMatchObject([{ type: 'put', kv: { key: `${ns}a`, value: '1', version: 1, createRevision: r1, modRevision: r1 } }]);
        expect(replay[1]!.events).toMatchObject([{ type: 'put', kv: { value: '2', version: 2, modRevision: r2 } }]);
        expect(replay[2]!.events).toMatchObject([{ type: 'delete', kv: { key: `${ns}a`, modRevision: r3 } }]);
        if (replay[1]!.events[0]!.prevKv) expect(replay[1]!.events[0]!.prevKv.value).toBe('1');
        if (replay[2]!.events[0]!.prevKv) expect(replay[2]!.events[0]!.prevKv.value).toBe('2');

        const pending = w.next();
        const r4 = await store.put(`${ns}b`, 'live');
        const live = await pending;
        expect(live.revision).toBe(r4);
        expect(live.events).toMatchObject([{ type: 'put', kv: { key: `${ns}b`, value: 'live' } }]);
      });

      it('from currentRevision + 1 delivers only new changes', async () => {
        await store.put(`${ns}before`, 'x');
        const w = openWatch(ns, (await store.currentRevision()) + 1);
        const rev = await store.put(`${ns}after`, 'y');
        const b = await w.next();
        expect(b.revision).toBe(rev);
        expect(b.events.map((e) => e.kv.key)).toEqual([`${ns}after`]);
      });

      it('filters by prefix and skips revisions with nothing under it', async () => {
        const from = (await store.currentRevision()) + 1;
        const w = openWatch(`${ns}a/`, from);
        const ra = await store.put(`${ns}a/1`, 'x');
        await store.put(`${ns}b/1`, 'x');
        await store.put(`${ns}a`, 'not a child');
        await store.put(`${ns}ab/1`, 'sibling');
        const mixed = await store.txn({
          compare: [],
          success: [
            { type: 'put', key: `${ns}b/2`, value: 'x' },
            { type: 'put', key: `${ns}a/2`, value: 'y' },
          ],
        });
        const batches = await w.take(2);
        expect(batches.map((b) => b.revision)).toEqual([ra, mixed.revision]);
        expect(batches[1]!.events.map((e) => e.kv.key)).toEqual([`${ns}a/2`]);
      });

      it('ends cleanly when aborted, both while waiting and before starting', async () => {
        const w = openWatch(ns, (await store.currentRevision()) + 1);
        const pending = w.it.next();
        w.ac.abort();
        expect(await withTimeout(pending, 'the aborted watch to end')).toMatchObject({ done: true });

        const ac = new AbortController();
        ac.abort();
        const seen: WatchBatch[] = [];
        await store.put(`${ns}x`, '1');
        for await (const b of store.watch(ns, { fromRevision: 1, signal: ac.signal })) seen.push(b);
        expect(seen).toEqual([]);
      });

      it('ends cleanly when the store is closed', async () => {
        const w = openWatch(ns, (await store.currentRevision()) + 1);
        const pending = w.it.next();
        await store.close();
        expect(await withTimeout(pending, 'the watch to end on close')).toMatchObject({ done: true });
      });

      it('fails with a distinct `compacted` error from a revision older than retained history', async (ctx) => {
        if (!backend.compact) return ctx.skip();
        const r1 = await store.put(`${ns}k`, '1');
        await store.put(`${ns}k`, '2');
        const r3 = await store.put(`${ns}k`, '3');
        await backend.compact(r3);

        const old = store.watch(ns, { fromRevision: r1 })[Symbol.asyncIterator]();
        const err = await withTimeout(old.next().then(() => undefined, (e: unknown) => e), 'the compacted error');
        expect(isBeaconError(err)).toBe(true);
        expect((err as { code: string }).code).toBe('compacted');

        // From the compaction revision on, watching works.
        const w = openWatch(ns, r3);
        expect((await w.next()).revision).toBe(r3);
      });
    });
  });
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => new Error(`expected a ${code} error, but the call succeeded`),
    (e: unknown) => e,
  );
  expect(isBeaconError(err) ? err.code : err).toBe(code);
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WATCH_WAIT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
