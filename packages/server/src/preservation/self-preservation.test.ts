import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { openEmbeddedStore, type EmbeddedStore } from '../store/embedded.js';
import type { LeaseId, Store } from '../store/types.js';
import { SelfPreservation, type SelfPreservationOptions } from './self-preservation.js';

let clock: ManualClock;
let raw: EmbeddedStore;
let sp: SelfPreservation;
let store: Store;

async function setup(opts: Partial<SelfPreservationOptions> = {}): Promise<void> {
  sp = new SelfPreservation({ clock, tickMs: 1_000, ...opts });
  store = sp.wrap(raw);
  sp.start();
}

beforeEach(async () => {
  clock = new ManualClock();
  raw = await openEmbeddedStore({ path: ':memory:', clock });
});

afterEach(async () => {
  sp.close();
  await raw.close();
});

const TTL = 10_000;

async function grant(n: number): Promise<LeaseId[]> {
  const ids: LeaseId[] = [];
  for (let i = 0; i < n; i++) ids.push(await store.grantLease(TTL));
  return ids;
}

/** Moves time in one-second steps, the `renewing` leases heartbeating every 3 s as their holders would. */
async function run(ms: number, renewing: LeaseId[]): Promise<void> {
  for (let t = 0; t < ms; t += 1_000) {
    if ((clock.now() / 1_000) % 3 === 0) for (const id of renewing) await store.keepAlive(id);
    clock.advance(1_000);
  }
}

const alive = async (id: LeaseId) => (await raw.leaseInfo(id).catch(() => undefined)) !== undefined;

describe('self-preservation', () => {
  it('stops eviction when most leases lapse at once, and resumes when renewals recover', async () => {
    await setup();
    const ids = await grant(20);
    await run(6_000, ids);
    expect(sp.status().active).toBe(false);

    // The registry hears from only 5 of 20 holders (a partition): before anything expires, it pauses.
    const heard = ids.slice(0, 5);
    await run(9_000, heard);
    expect(sp.status()).toMatchObject({ active: true, leases: 20 });
    await run(30_000, heard);
    for (const id of ids) expect(await alive(id)).toBe(true);
    expect(sp.status().held).toBe(15);
    expect(sp.status().preservedRenewals).toBeGreaterThan(0);

    // The partition heals: everyone renews again, and preservation lets go.
    await run(4_000, ids);
    expect(sp.status()).toMatchObject({ active: false, atRisk: 0, activations: 1 });
  });

  it('lets leases expire as usual when few lapse, and never counts deliberate deregistrations', async () => {
    await setup();
    const ids = await grant(20);
    await run(3_000, ids);
    // 15 of 20 deregister on purpose (scale-down): their leases are revoked, not lapsed.
    for (const id of ids.slice(5)) await store.revokeLease(id);
    // One of the remaining five crashes: 1 of 5 is below the minimum population, so it simply expires.
    const survivors = ids.slice(0, 4);
    await run(20_000, survivors);
    expect(sp.status()).toMatchObject({ active: false, activations: 0, leases: 4 });
    expect(await alive(ids[4]!)).toBe(false);
    for (const id of survivors) expect(await alive(id)).toBe(true);
  });

  it('gives up after maxHoldMs: leases still silent are taken as gone and do not trigger it again', async () => {
    await setup({ maxHoldMs: 30_000 });
    const ids = await grant(20);
    await run(3_000, ids);
    const kept = ids.slice(0, 10);
    await run(12_000, kept);
    expect(sp.status().active).toBe(true);
    await run(30_000, kept);
    expect(sp.status().active).toBe(false);
    await run(30_000, kept);
    expect(sp.status()).toMatchObject({ active: false, activations: 1, leases: 10 });
    for (const id of ids.slice(10)) expect(await alive(id)).toBe(false);
    for (const id of kept) expect(await alive(id)).toBe(true);
  });

  it('does nothing when disabled', async () => {
    await setup({ enabled: false });
    const ids = await grant(20);
    await run(15_000, []);
    expect(sp.status().active).toBe(false);
    for (const id of ids) expect(await alive(id)).toBe(false);
  });
});
