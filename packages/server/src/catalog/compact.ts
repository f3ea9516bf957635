import type { CheckStatus, Conditions, Instance, InstanceRecord } from '@beacon/core';

/**
 * Hands out one shared, frozen copy of values that many instances repeat (a service's tags,
 * ports and metadata, zone and node names, the reason of a registration), so 100,000 instances
 * of a few hundred services do not hold 100,000 copies. V8 shares only strings of up to 10
 * characters that `JSON.parse` meets; everything else was a copy per instance.
 *
 * Bounded: once it holds `max` values it starts over, so values nobody uses any more are let go;
 * instances keep the copies they were given (they are frozen, so sharing is safe).
 */
export class Interner {
  private readonly strings = new Map<string, string>();
  private readonly values = new Map<string, unknown>();

  constructor(private readonly max = 8192) {}

  string(s: string): string {
    const had = this.strings.get(s);
    if (had !== undefined) return had;
    if (this.strings.size >= this.max) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }

  /** A shared frozen copy of a small JSON value (array or flat object), found by its serialization. */
  value<T extends object>(v: T): T {
    const key = JSON.stringify(v);
    const had = this.values.get(key);
    if (had !== undefined) return had as T;
    if (this.values.size >= this.max) this.values.clear();
    this.values.set(key, Object.freeze(v));
    return v;
  }

  get size(): number {
    return this.strings.size + this.values.size;
  }
}

const NO_CHECKS: InstanceRecord['checks'] = Object.freeze([]) as unknown as InstanceRecord['checks'];

export interface Derived {
  status: CheckStatus;
  conditions: Conditions;
  modifyIndex: number;
  createIndex: number;
}

/**
 * The catalog's copy of a stored record, built to be small: with the derived fields in one
 * literal, so they sit inside the object (added to a parsed record they went to a separate
 * property array, ~60 bytes more each), and with repeated values shared through `intern`.
 * `d` is assigned in its own key order: status, conditions, modifyIndex, createIndex.
 *
 * Property order is the record's (as the registry writes it, `ttlMs` after `source`), so answers
 * serialize as before. A record with maintenance or draining set is extended in place instead:
 * those fields come after `change` in whatever order they were added, and such records are few.
 */
export function compactInstance(rec: InstanceRecord, d: Derived, intern: Interner): Instance {
  if (rec.maintenance !== undefined || rec.draining !== undefined) return Object.assign(rec, d);
  const change = rec.change;
  // Reasons of plain (re-)registrations repeat ("registered by api"); check outputs do not.
  if (change.kind === 'registered' || change.kind === 'updated') change.reason = intern.string(change.reason);
  const id = rec.id;
  const service = intern.string(rec.service);
  const address = rec.address;
  const port = rec.port;
  const ports = intern.value(rec.ports);
  const tags = intern.value(rec.tags);
  const meta = intern.value(rec.meta);
  const weight = rec.weight;
  const zone = intern.string(rec.zone);
  const node = intern.string(rec.node);
  const source = rec.source;
  const checks = rec.checks.length === 0 ? NO_CHECKS : rec.checks;
  const registeredAt = rec.registeredAt;
  const { status, conditions, modifyIndex, createIndex } = d;
  return rec.ttlMs === undefined
    ? { id, service, address, port, ports, tags, meta, weight, zone, node, source, checks, registeredAt, change, status, conditions, modifyIndex, createIndex }
    : { id, service, address, port, ports, tags, meta, weight, zone, node, source, ttlMs: rec.ttlMs, checks, registeredAt, change, status, conditions, modifyIndex, createIndex };
}
