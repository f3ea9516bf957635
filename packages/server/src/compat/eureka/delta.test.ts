import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { openEmbeddedStore } from '../../store/embedded.js';
import { CatalogView } from '../../catalog/view.js';
import { Registry } from '../../registry/registry.js';
import { KEYS } from '../../keys.js';
import { PrefixMirror } from '../mirror.js';
import { DeltaLog } from './delta.js';
import type { EurekaSide } from './model.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function rig(retentionMs: number, maxEntries: number) {
  const clock = new ManualClock();
  const store = await openEmbeddedStore({ path: ':memory:', clock });
  const catalog = new CatalogView({ store, clock });
  await catalog.start();
  const registry = new Registry({ store, catalog, clock, nodeName: 'n1' });
  registry.start();
  const side = new PrefixMirror<EurekaSide>({ store, clock, prefix: KEYS.eurekaInstances, parse: () => undefined });
  await side.start();
  const delta = new DeltaLog({ catalog, side, clock, lastRenewal: () => undefined }, retentionMs, maxEntries);
  delta.start();
  closers.push(async () => {
    delta.close();
    await side.close();
    registry.close();
    await catalog.close();
    await store.close();
  });
  const register = (n: number) => registry.register({ id: `web-${n}`, service: 'web', address: `10.0.0.${n}`, port: 80 });
  return { clock, registry, delta, register };
}

describe('Eureka delta log', () => {
  it('keeps the changes of the retention window, oldest first; a deletion is rendered when it happens', async () => {
    const { clock, registry, delta, register } = await rig(1_000, 100);
    await register(1);
    clock.advance(600);
    await register(2);
    await registry.deregister('web-2');
    // web-2's ADDED entry has nothing left to render it from: only its deletion shows.
    expect(delta.changes().map((d) => [d.instanceId, d.actionType])).toEqual([
      ['web-1', 'ADDED'],
      ['web-2', 'DELETED'],
    ]);
    clock.advance(600); // web-1's entry is now 1,200 ms old; web-2's 600 ms
    expect(delta.changes().map((d) => [d.instanceId, d.actionType])).toEqual([['web-2', 'DELETED']]);
    clock.advance(1_000);
    expect(delta.changes()).toEqual([]);
  });

  it('holds at most maxEntries, dropping the oldest', async () => {
    const { delta, register } = await rig(60_000, 3);
    for (let n = 1; n <= 5; n++) await register(n);
    expect(delta.changes().map((d) => d.instanceId)).toEqual(['web-3', 'web-4', 'web-5']);
  });
});
