import type { Instance } from '@beacon/core';
import type { CatalogReader, NodeEntry, ServiceEntry, ServiceSummary } from '../catalog/types.js';
import type { DnsCatalog } from './backend.js';

/** The part of an instance DNS answers are built from: all a worker process receives. */
export type SlimInstance = Pick<Instance, 'id' | 'service' | 'address' | 'port' | 'tags' | 'meta' | 'weight' | 'node' | 'status' | 'conditions'>;

export interface SlimService {
  name: string;
  index: number;
  instances: SlimInstance[];
}

/** One catalog change as a worker process applies it. */
export interface ReplicaUpdate {
  index: number;
  services: SlimService[];
  /** True for the first message, and after the catalog relisted: drop what is held. */
  reset: boolean;
}

export function slimService(entry: ServiceEntry): SlimService {
  return {
    name: entry.name,
    index: entry.index,
    instances: entry.instances.map((i) => ({
      id: i.id,
      service: i.service,
      address: i.address,
      port: i.port,
      tags: i.tags,
      meta: i.meta,
      weight: i.weight,
      node: i.node,
      status: i.status,
      conditions: i.conditions,
    })),
  };
}

/** Everything a fresh worker needs. */
export function snapshot(catalog: Pick<CatalogReader, 'index' | 'services' | 'service'>): ReplicaUpdate {
  return { index: catalog.index, services: catalog.services().map((s) => slimService(catalog.service(s.name))), reset: true };
}

/**
 * The catalog as a worker process sees it: services only, following the server's catalog
 * through {@link ReplicaUpdate}s. Node names are not answered from here (node records do not
 * travel); the worker hands those queries to the server.
 */
export class ReplicaCatalog implements DnsCatalog {
  private globalIndex = 1;
  private readonly byName = new Map<string, ServiceEntry>();

  apply(u: ReplicaUpdate): void {
    if (u.reset) this.byName.clear();
    for (const s of u.services) this.byName.set(s.name, { name: s.name, index: s.index, instances: s.instances as unknown as Instance[] });
    this.globalIndex = Math.max(u.reset ? 1 : this.globalIndex, u.index);
  }

  get index(): number {
    return this.globalIndex;
  }

  service(name: string): ServiceEntry {
    return this.byName.get(name) ?? { name, index: this.globalIndex, instances: [] };
  }

  services(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const s of this.byName.values()) {
      if (!s.instances.length) continue;
      out.push({ name: s.name, index: s.index, tags: [], instances: s.instances.length, status: { passing: 0, warning: 0, critical: 0 }, ready: 0 });
    }
    return out;
  }

  node(): NodeEntry | undefined {
    return undefined;
  }
}
