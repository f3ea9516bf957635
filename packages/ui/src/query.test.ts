import { describe, expect, it } from 'vitest';
import type { Instance } from '@beacon/core';
import { matchesQuery, parseQuery, sortServices } from './query.js';
import { summarize } from './summary.js';

const inst = (service: string, over: Partial<Instance>): Instance =>
  ({
    id: `${service}-${over.port ?? 1}`,
    service,
    address: '10.0.0.1',
    port: 1,
    ports: {},
    tags: [],
    meta: {},
    weight: 1,
    zone: 'a',
    node: 'n',
    source: 'api',
    status: 'passing',
    conditions: { ready: true, serving: true, terminating: false },
    checks: [],
    registeredAt: 0,
    createIndex: 1,
    modifyIndex: 1,
    change: { kind: 'registered', reason: 'r', at: 0 },
    ...over,
  }) as Instance;

const payments = summarize('payments', [inst('payments', { tags: ['v2'], meta: { version: '1.2' } }), inst('payments', { port: 2, status: 'critical', zone: 'b', conditions: { ready: false, serving: false, terminating: false } })]);
const orders = summarize('orders', [inst('orders', { tags: ['v1'] })]);

describe('the Services query', () => {
  it('ANDs every term of the example', () => {
    const q = parseQuery('name~^pay tag:v2 status:critical zone:b meta.version=1.2');
    expect(q.errors).toEqual([]);
    expect(matchesQuery(q, payments)).toBe(true);
    expect(matchesQuery(q, orders)).toBe(false);
    expect(matchesQuery(parseQuery('status:critical'), orders)).toBe(false);
    expect(matchesQuery(parseQuery('meta.version=1.3'), payments)).toBe(false);
    expect(matchesQuery(parseQuery('ord'), orders)).toBe(true);
  });

  it('reports terms it cannot read and keeps the others', () => {
    const q = parseQuery('name~( status:sick tag:v1');
    expect(q.errors).toEqual(['name~( is not a regular expression', 'status:sick is not one of passing, warning, critical']);
    expect(matchesQuery(q, orders)).toBe(true);
  });

  it('sorts a name-ordered list by counts, ties staying in name order', () => {
    expect(payments).toMatchObject({ total: 2, ready: 1, counts: { passing: 1, warning: 0, critical: 1 }, tags: ['v2'] });
    const inventory = summarize('inventory', [inst('inventory', {})]);
    const byName = [inventory, orders, payments];
    expect(sortServices(byName, 'critical', true).map((s) => s.name)).toEqual(['payments', 'inventory', 'orders']);
    expect(sortServices(byName, 'ready', false).map((s) => s.name)).toEqual(['inventory', 'orders', 'payments']);
    expect(sortServices(byName, 'name', true).map((s) => s.name)).toEqual(['payments', 'orders', 'inventory']);
    expect(sortServices(byName, 'name', false)).toBe(byName);
  });
});
