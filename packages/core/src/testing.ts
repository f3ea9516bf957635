import type { Instance } from './model.js';

/**
 * A ready, passing instance with every field filled, for tests that need an `Instance` without a
 * server. `extra` overrides any field.
 *
 * @example
 * const i = instanceFixture('a1', { zone: 'eu-1', weight: 3 });
 */
export function instanceFixture(id: string, extra: Partial<Instance> = {}): Instance {
  return {
    id,
    service: 'api',
    address: '10.0.0.1',
    port: 80,
    ports: {},
    tags: [],
    meta: {},
    weight: 1,
    zone: '',
    node: 'n',
    source: 'api',
    checks: [],
    registeredAt: 0,
    change: { kind: 'registered', reason: '', at: 0 },
    status: 'passing',
    conditions: { ready: true, serving: true, terminating: false },
    createIndex: 1,
    modifyIndex: 1,
    ...extra,
  };
}
