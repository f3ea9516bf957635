import { describe, expect, it } from 'vitest';
import { deriveConditions, type InstanceRecord } from '@beacon/core';
import { compactInstance, Interner } from './compact.js';

const record = (id: string, extra: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id,
  service: 'payments-gateway',
  address: '10.0.0.1',
  port: 8080,
  ports: { http: 8080, metrics: 9090 },
  tags: ['v2', 'http'],
  meta: { version: '2.14.1', team: 'payments' },
  weight: 1,
  zone: 'europe-west1-b',
  node: 'node-a',
  source: 'api',
  ...(extra.ttlMs !== undefined ? { ttlMs: extra.ttlMs } : {}),
  checks: [],
  registeredAt: 1_764_000_000_000,
  change: { kind: 'registered', reason: 'registered by api', at: 1_764_000_000_000 },
  ...(extra.maintenance ? { maintenance: extra.maintenance } : {}),
});

/** A record as the catalog receives it: parsed from the stored JSON, so nothing is shared yet. */
const parsed = (r: InstanceRecord): InstanceRecord => JSON.parse(JSON.stringify(r)) as InstanceRecord;
const derived = (r: InstanceRecord) => ({ status: 'passing' as const, conditions: deriveConditions(r), modifyIndex: 7, createIndex: 5 });

describe('compactInstance', () => {
  it('serializes exactly as the record with its derived fields appended, with and without a lease or maintenance', () => {
    for (const r of [record('a'), record('b', { ttlMs: 30_000 }), record('c', { maintenance: { reason: 'disk swap', since: 1 } })]) {
      const inst = compactInstance(parsed(r), derived(r), new Interner());
      expect(JSON.stringify(inst)).toBe(JSON.stringify({ ...r, ...derived(r) }));
    }
  });

  it('gives instances one shared, frozen copy of what they repeat', () => {
    const intern = new Interner();
    const [a, b] = ['a', 'b'].map((id) => compactInstance(parsed(record(id)), derived(record(id)), intern));
    for (const k of ['tags', 'ports', 'meta', 'service', 'zone'] as const) expect(a![k]).toBe(b![k]);
    expect(a!.change.reason).toBe(b!.change.reason);
    expect(a!.conditions).toBe(b!.conditions);
    expect(Object.isFrozen(a!.tags) && Object.isFrozen(a!.meta) && Object.isFrozen(a!.conditions)).toBe(true);
    expect(a!.address).toBe('10.0.0.1');
    expect(a!.id).not.toBe(b!.id);
  });
});

describe('Interner', () => {
  it('holds at most its maximum of each kind, then starts over', () => {
    const intern = new Interner(2);
    const first = intern.value(['x']);
    intern.value(['y']);
    expect(intern.value(['x'])).toBe(first);
    intern.value(['w']); // a third value: the value pool starts over with it
    intern.string('z');
    expect(intern.size).toBe(2);
    expect(intern.value(['x'])).not.toBe(first);
  });
});
