/** A small in-memory catalog for DNS tests: implements the part of CatalogReader that DNS reads. */
import * as packet from 'dns-packet';
import { aggregateStatus, deriveConditions, type Check, type CheckStatus, type Instance } from '@beacon/core';
import type { CatalogChange, NodeEntry, ServiceEntry, ServiceSummary } from '../src/catalog/types.js';
import type { DnsCatalog } from '../src/dns/backend.js';

export interface InstanceInit {
  id?: string;
  address: string;
  port?: number;
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  node?: string;
  /** Status of the instance's one readiness check. */
  status?: CheckStatus;
  maintenance?: boolean;
}

export function makeInstance(service: string, init: InstanceInit, index = 1): Instance {
  const id = init.id ?? `${service}-${init.address}-${init.port ?? 80}`;
  const checks: Check[] = [
    {
      id: `${id}:ready`,
      name: 'ready',
      kind: 'ttl',
      role: 'readiness',
      ttlMs: 10_000,
      successesBeforePassing: 1,
      failuresBeforeWarning: 1,
      failuresBeforeCritical: 1,
      status: init.status ?? 'passing',
      output: '',
      since: 0,
    },
  ];
  const rec = {
    id,
    service,
    address: init.address,
    port: init.port ?? 80,
    ports: {},
    tags: init.tags ?? [],
    meta: init.meta ?? {},
    weight: init.weight ?? 1,
    zone: 'z1',
    node: init.node ?? 'node-1',
    source: 'api' as const,
    checks,
    registeredAt: 0,
    change: { kind: 'registered' as const, reason: 'test', at: 0 },
    ...(init.maintenance ? { maintenance: { reason: 'test', since: 0 } } : {}),
  };
  return { ...rec, status: aggregateStatus(rec), conditions: deriveConditions(rec), modifyIndex: index, createIndex: index };
}

export class FakeCatalog implements DnsCatalog {
  index = 1;
  private readonly byName = new Map<string, ServiceEntry>();
  readonly nodeRecords = new Map<string, { address: string; meta: Record<string, string> }>();
  private readonly listeners = new Set<(c: CatalogChange) => void>();

  /** Replaces a service's instances, as one change. */
  set(service: string, instances: InstanceInit[]): void {
    this.index++;
    this.byName.set(service, { name: service, index: this.index, instances: instances.map((i) => makeInstance(service, i, this.index)) });
    const change: CatalogChange = { index: this.index, services: new Set([service]), events: [], instanceIds: new Set(), reset: false };
    for (const l of this.listeners) l(change);
  }

  onChange(listener: (c: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A change somewhere else: moves the global index only. */
  touch(): void {
    this.index++;
  }

  service(name: string): ServiceEntry {
    return this.byName.get(name) ?? { name, index: this.index, instances: [] };
  }

  services(): ServiceSummary[] {
    return [...this.byName.values()]
      .filter((s) => s.instances.length)
      .map((s) => ({
        name: s.name,
        index: s.index,
        tags: [...new Set(s.instances.flatMap((i) => i.tags))],
        instances: s.instances.length,
        status: { passing: 0, warning: 0, critical: 0 },
        ready: s.instances.filter((i) => i.conditions.ready).length,
      }));
  }

  node(name: string): NodeEntry | undefined {
    const rec = this.nodeRecords.get(name);
    const services = new Set<string>();
    let address = rec?.address;
    for (const s of this.byName.values())
      for (const i of s.instances)
        if (i.node === name) {
          services.add(s.name);
          address ??= i.address;
        }
    if (!rec && services.size === 0) return undefined;
    return { name, address: address ?? '', meta: rec?.meta ?? {}, services: [...services] };
  }
}

/** A decoded message, typed for what the tests read (@types/dns-packet leaves out rcode and friends). */
export interface DecodedRecord {
  name: string;
  type: string;
  ttl: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  [k: string]: unknown;
}
export interface DecodedMessage {
  id: number;
  rcode: string;
  flags: number;
  flag_aa: boolean;
  flag_tc: boolean;
  flag_rd: boolean;
  flag_ra: boolean;
  questions: { name: string; type: string; class: string }[];
  answers: DecodedRecord[];
  authorities: DecodedRecord[];
  additionals: DecodedRecord[];
}

export function decode(b: Buffer): DecodedMessage {
  return packet.decode(b) as unknown as DecodedMessage;
}
