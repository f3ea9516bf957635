import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, seededRandom, type CheckStatus } from '@beacon/core';
import { openEmbeddedStore } from '../store/embedded.js';
import type { Store } from '../store/types.js';
import { KvStore } from './kv.js';
import { Sessions, type SessionHealth } from './sessions.js';
import { runKvTxn } from './txn.js';

let clock: ManualClock;
let store: Store;
let kv: KvStore;
let sessions: Sessions;
const checks = new Map<string, CheckStatus>();
const listeners = new Set<() => void>();

const health: SessionHealth = {
  nodeExists: (n) => n === 'n1',
  checkStatus: (_node, id) => (id === 'serfHealth' ? 'passing' : checks.get(id)),
  subscribe(l) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

/** Lets the store's group commit, the feed and follow-up writes run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

beforeEach(async () => {
  clock = new ManualClock();
  store = await openEmbeddedStore({ path: ':memory:', clock });
  kv = new KvStore({ store, clock });
  await kv.start();
  sessions = new Sessions({ store, clock, random: seededRandom(7), kv, health, defaultNode: 'n1' });
  await sessions.start();
  checks.clear();
});

afterEach(async () => {
  await sessions.close();
  await kv.close();
  await store.close();
});

const text = (s: string) => Buffer.from(s);
const value = (key: string) => {
  const p = kv.get(key);
  return p?.value == null ? p?.value : Buffer.from(p.value, 'base64').toString();
};

describe('KvStore', () => {
  it('puts, reads, lists with a separator, and honours check-and-set', async () => {
    expect(await kv.put('app/a', text('1'))).toBe(true);
    expect(await kv.put('app/b/c', text('2'), { flags: 42 })).toBe(true);
    expect(await kv.put('app/b/d', text('3'))).toBe(true);
    expect(value('app/a')).toBe('1');
    expect(kv.get('app/b/c')?.flags).toBe(42);
    expect(kv.list('app/').map((p) => p.key)).toEqual(['app/a', 'app/b/c', 'app/b/d']);
    expect(kv.keys('app/', '/')).toEqual(['app/a', 'app/b/']);

    const idx = kv.get('app/a')!.modifyIndex;
    expect(await kv.put('app/a', text('x'), { cas: idx + 100 })).toBe(false);
    expect(await kv.put('app/a', text('y'), { cas: 0 })).toBe(false);
    expect(await kv.put('app/a', text('z'), { cas: idx })).toBe(true);
    expect(value('app/a')).toBe('z');
    expect(kv.get('app/a')!.createIndex).toBe(kv.get('app/a')!.createIndex);
    expect(kv.get('app/a')!.modifyIndex).toBeGreaterThan(idx);
    expect(await kv.put('new', text('n'), { cas: 0 })).toBe(true);
  });

  it('keeps prefix indexes monotonic across deletions and answers missing keys with the table index', async () => {
    await kv.put('p/a', text('1'));
    await kv.put('p/b', text('2'));
    const before = kv.prefixIndex('p/');
    await kv.delete('p/b');
    expect(kv.prefixIndex('p/')).toBeGreaterThan(before);
    expect(kv.index('missing')).toBe(kv.tableIndex);
    expect(await kv.delete('p/a', { cas: 999 })).toBe(false);
    expect(await kv.delete('p/', { recurse: true })).toBe(true);
    expect(kv.list('p/')).toEqual([]);
  });

  it('wakes a blocked reader only for its own key', async () => {
    await kv.put('w/a', text('1'));
    const idx = kv.index('w/a');
    let woke = false;
    const parked = kv.wait('w/a', false, idx, 60_000).then(() => (woke = true));
    await kv.put('w/b', text('other'));
    await settle();
    expect(woke).toBe(false);
    await kv.put('w/a', text('2'));
    await parked;
    expect(woke).toBe(true);
  });
});

describe('sessions and locks', () => {
  it('acquires, refuses a second holder, releases, and applies the lock delay after destroy', async () => {
    const s1 = await sessions.create({ name: 'one', lockDelayMs: 5_000 });
    const s2 = await sessions.create({ name: 'two' });
    expect(await kv.put('lock', text('me'), { acquire: s1.id })).toBe(true);
    expect(kv.get('lock')).toMatchObject({ session: s1.id, lockIndex: 1 });
    expect(await kv.put('lock', text('you'), { acquire: s2.id })).toBe(false);
    expect(await kv.put('lock', text('me again'), { acquire: s1.id })).toBe(true);
    expect(kv.get('lock')!.lockIndex).toBe(1);
    expect(await kv.put('lock', text('x'), { release: s2.id })).toBe(false);

    await sessions.destroy(s1.id);
    expect(kv.get('lock')?.session).toBeUndefined();
    expect(value('lock')).toBe('me again');
    expect(await kv.put('lock', text('you'), { acquire: s2.id })).toBe(false);
    clock.advance(5_001);
    expect(await kv.put('lock', text('you'), { acquire: s2.id })).toBe(true);
    expect(kv.get('lock')!.lockIndex).toBe(2);
    await expect(kv.put('lock', text('?'), { acquire: '00000000-0000-4000-8000-000000000000' })).rejects.toThrow(/invalid session/);
  });

  it('keeps a lock of a holder cut off from the server until twice the TTL after its last renewal, then holds it back for LockDelay', async () => {
    const ttl = 10_000;
    const holder = await sessions.create({ name: 'leader', ttlMs: ttl, lockDelayMs: 15_000 });
    const rival = await sessions.create({ name: 'replica' });
    expect(await kv.put('service/pg/leader', text('node-a'), { acquire: holder.id })).toBe(true);
    // Renewals keep it alive well past 2 × TTL from its creation.
    for (let i = 0; i < 4; i++) {
      clock.advance(ttl - 1);
      expect(await sessions.renew(holder.id)).toMatchObject({ id: holder.id, ttlMs: ttl });
    }
    // t0: the holder's last renewal; it is partitioned away from here on.
    clock.advance(2 * ttl - 1);
    await settle();
    expect(sessions.get(holder.id)).toBeDefined();
    expect(kv.get('service/pg/leader')?.session).toBe(holder.id);
    expect(await kv.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(false);

    clock.advance(1); // t0 + 2 × TTL: the session ends and its lock is released (value kept).
    await settle();
    expect(sessions.get(holder.id)).toBeUndefined();
    expect(kv.get('service/pg/leader')?.session).toBeUndefined();
    expect(value('service/pg/leader')).toBe('node-a');
    expect(await sessions.renew(holder.id)).toBeUndefined();

    // LockDelay counts from the invalidation: no one takes the lock before it has passed.
    clock.advance(15_000 - 1);
    expect(await kv.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(false);
    clock.advance(1);
    expect(await kv.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(true);
  });

  it('holds the lock delay on every server: another server that never saw the lock still refuses to hand it out', async () => {
    // A second server: its own mirror and memory over the same store.
    const other = new KvStore({ store, clock });
    await other.start();
    try {
      const holder = await sessions.create({ ttlMs: 10_000, lockDelayMs: 15_000 });
      const rival = await sessions.create({ name: 'replica' });
      expect(await kv.put('service/pg/leader', text('node-a'), { acquire: holder.id })).toBe(true);
      clock.advance(20_000);
      await settle();
      expect(kv.get('service/pg/leader')?.session).toBeUndefined();
      expect(await other.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(false);
      expect((await runKvTxn(other, [{ verb: 'lock', key: 'service/pg/leader', session: rival.id }])).ok).toBe(false);
      // Plain writes meanwhile do not lift it.
      expect(await other.put('service/pg/leader', text('config'))).toBe(true);
      clock.advance(14_999);
      expect(await other.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(false);
      clock.advance(1);
      expect(await other.put('service/pg/leader', text('node-b'), { acquire: rival.id })).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('deletes the keys of an expired TTL session with behavior delete, at twice the TTL', async () => {
    const s = await sessions.create({ ttlMs: 10_000, behavior: 'delete', lockDelayMs: 0 });
    expect(await kv.put('eph', text('1'), { acquire: s.id })).toBe(true);
    clock.advance(19_999);
    await settle();
    expect(value('eph')).toBe('1');
    clock.advance(1);
    await settle();
    expect(sessions.get(s.id)).toBeUndefined();
    expect(kv.get('eph')).toBeUndefined();
  });

  it('refuses sessions on critical checks and ends them when a check turns critical', async () => {
    checks.set('svc-check', 'critical');
    await expect(sessions.create({ serviceChecks: ['svc-check'] })).rejects.toThrow(/critical/);
    await expect(sessions.create({ serviceChecks: ['nope'] })).rejects.toThrow(/Missing check/);
    await expect(sessions.create({ node: 'n2' })).rejects.toThrow(/Missing node/);
    checks.set('svc-check', 'passing');
    const s = await sessions.create({ serviceChecks: ['svc-check'] });
    await kv.put('held', text('v'), { acquire: s.id });
    checks.set('svc-check', 'critical');
    for (const l of listeners) l();
    await settle();
    expect(sessions.get(s.id)).toBeUndefined();
    expect(kv.get('held')?.session).toBeUndefined();
  });
});

describe('txn', () => {
  it('applies all operations or none, in order', async () => {
    await kv.put('t/a', text('1'));
    const a = kv.get('t/a')!;
    const ok = await runKvTxn(kv, [
      { verb: 'cas', key: 't/a', value: text('2'), index: a.modifyIndex },
      { verb: 'set', key: 't/b', value: text('3') },
      { verb: 'get', key: 't/a' },
      { verb: 'get-tree', key: 't/' },
    ]);
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    expect(ok.results.map((r) => [r.key, r.value && Buffer.from(r.value, 'base64').toString()])).toEqual([
      ['t/a', null],
      ['t/b', null],
      ['t/a', '2'],
      ['t/a', '2'],
      ['t/b', '3'],
    ]);
    expect(value('t/b')).toBe('3');

    const failed = await runKvTxn(kv, [
      { verb: 'set', key: 't/c', value: text('never') },
      { verb: 'check-index', key: 't/a', index: 1 },
      { verb: 'check-not-exists', key: 't/b' },
    ]);
    expect(failed).toEqual({ ok: false, errors: [expect.objectContaining({ opIndex: 1 }), expect.objectContaining({ opIndex: 2 })] });
    expect(kv.get('t/c')).toBeUndefined();

    const del = await runKvTxn(kv, [{ verb: 'delete-tree', key: 't/' }]);
    expect(del.ok).toBe(true);
    expect(kv.list('t/')).toEqual([]);
  });

  it('refuses a negative or fractional Index before reading anything, so no verb treats it as unconditional', async () => {
    await kv.put('t/a', text('1'));
    for (const verb of ['cas', 'delete-cas', 'check-index'] as const) {
      for (const index of [-1, -1000, 0.5]) {
        await expect(runKvTxn(kv, [{ verb, key: 't/a', value: text('lost'), index }])).rejects.toThrow(/Index must be an unsigned integer/);
      }
    }
    expect(value('t/a')).toBe('1');
  });
});

describe('KV byte quota', () => {
  it('counts what is already stored when a KV store starts, and follows puts, overwrites and deletes', async () => {
    await kv.put('a/1', Buffer.from('12345'));
    await kv.put('a/2', Buffer.from('1234567890'));
    const again = new KvStore({ store, clock, maxBytes: 40 });
    await again.start();
    try {
      expect(again.bytes).toBe(3 + 5 + 3 + 10);
      expect(() => again.assertRoom(20)).toThrow(/KV store is full: 21 of 40 bytes used, this write adds 20/);
      await again.put('a/2', Buffer.from('1'));
      await again.delete('a/1');
      expect(again.bytes).toBe(3 + 1);
      await expect(again.put('b', Buffer.alloc(36))).rejects.toMatchObject({ code: 'payload_too_large' });
      expect(again.get('b')).toBeUndefined();
      await again.put('b', Buffer.alloc(35));
      expect(again.bytes).toBe(40);
    } finally {
      await again.close();
    }
  });
});
