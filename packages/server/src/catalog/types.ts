import type { CancelSignal } from '../util/cancel.js';
import type { ChangeEvent, ChangeKind, CheckStatus, Instance } from '@beacon/core';
import type { HistoryEntry } from './history.js';

/** One service as the catalog holds it. */
export interface ServiceEntry {
  name: string;
  /**
   * Highest store revision of any change to this service, deletions included. Never 0.
   * A write to service A never moves service B's index.
   */
  index: number;
  /** Instances sorted by id. The array is replaced, never mutated, on change: safe to hold. */
  instances: readonly Instance[];
}

export interface ServiceSummary {
  name: string;
  index: number;
  tags: string[];
  instances: number;
  /** Counts by aggregate status. */
  status: Record<CheckStatus, number>;
  ready: number;
}

export interface NodeEntry {
  name: string;
  /** Address of the node: from a node record when one exists, else its first instance's address. */
  address: string;
  meta: Record<string, string>;
  services: string[];
}

export interface HistoryFilter {
  service?: string;
  instanceId?: string;
  kind?: ChangeKind;
  /** Events with index > since. */
  since?: number;
  limit?: number;
}

/**
 * One instance change as the watch stream carries it (its `change` event): the change, and the
 * instance's state after it (absent once it is gone). A remote DC's view is built from these.
 */
export interface WatchChange {
  index: number;
  type: 'upsert' | 'delete';
  service: string;
  id: string;
  event: ChangeEvent;
  instance?: Instance;
}

/** What the `services()` reads of the local and remote catalogs say of one service's instances. */
export function summarize(name: string, index: number, instances: Iterable<Instance>): ServiceSummary {
  const tags = new Set<string>();
  const status: Record<CheckStatus, number> = { passing: 0, warning: 0, critical: 0 };
  let ready = 0;
  let count = 0;
  for (const i of instances) {
    count++;
    for (const t of i.tags) tags.add(t);
    status[i.status]++;
    if (i.conditions.ready) ready++;
  }
  return { name, index, tags: [...tags].sort(), instances: count, status, ready };
}

/** What one applied store batch changed: listeners get this after the catalog updated. */
export interface CatalogChange {
  index: number;
  services: ReadonlySet<string>;
  events: readonly ChangeEvent[];
  /** Instances upserted (present) or deleted (absent from the catalog now), by id. */
  instanceIds: ReadonlySet<string>;
  /** True when the catalog was rebuilt from a fresh listing (after a compacted watch). */
  reset: boolean;
  /**
   * The instances this change deleted, as they last were (the local catalog sets it, never on a
   * reset): readers that describe what left need not keep a copy of every instance to do so.
   */
  removed?: ReadonlyMap<string, Instance>;
}

/**
 * The read side every front end uses (HTTP, DNS, Consul/Eureka adapters, proxy, UI).
 * Built from the store's watch feed; every read is served from memory.
 */
export interface CatalogReader {
  /** Last store revision applied. Never 0 once started. */
  readonly index: number;
  /** Oldest index still in history: events at or below it may have been dropped. */
  readonly historyFloor: number;
  /** Reads may be behind the store: the feed is broken, or has not been confirmed current lately. */
  readonly stale: boolean;
  /** While stale: when it became so (clock milliseconds). */
  readonly staleSince: number | undefined;
  services(): ServiceSummary[];
  /** The service, or an empty entry with a stable index (the catalog's start) when it has never existed. */
  service(name: string): ServiceEntry;
  instance(id: string): Instance | undefined;
  /** The instance that owns a check id. */
  instanceByCheck(checkId: string): Instance | undefined;
  nodes(): NodeEntry[];
  node(name: string): NodeEntry | undefined;
  history(filter?: HistoryFilter): ChangeEvent[];
  /**
   * Entries after `since` with each instance's state after the change (a stream resuming from
   * Last-Event-ID), or a `compacted` error when history no longer reaches back that far.
   */
  replay(since: number, services?: ReadonlySet<string>): HistoryEntry[];
  /** Subscribes to every applied change. Returns the unsubscribe function. */
  onChange(listener: (change: CatalogChange) => void): () => void;
  /**
   * Resolves once `service(name).index > minIndex`, or after `timeoutMs`, or when `signal` aborts.
   * Only changes to that service wake it.
   */
  waitForService(name: string, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<ServiceEntry>;
  /** Resolves once the catalog has applied `revision` (read-your-writes after a registry write). */
  waitForIndex(revision: number, timeoutMs?: number): Promise<void>;
}
