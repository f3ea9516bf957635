import type { CancelSignal } from '../util/cancel.js';
import { errors, type ChangeEvent, type Check, type Clock, type Instance } from '@beacon/core';
import { replayHistory, selectHistory, type HistoryEntry } from '../catalog/history.js';
import { Ring } from '../catalog/ring.js';
import { summarize, type CatalogChange, type CatalogReader, type HistoryFilter, type NodeEntry, type ServiceEntry, type ServiceSummary, type WatchChange } from '../catalog/types.js';
import { IndexWaiters } from '../util/index-waiters.js';

/** One instance change as a remote DC's watch stream carries it. */
export type RemoteChange = WatchChange;

interface ServiceState {
  index: number;
  byId: Map<string, Instance>;
  sorted: readonly Instance[] | undefined;
}

const HISTORY = 4096;

/**
 * A remote datacenter's catalog, read-only, built from its push stream: the same
 * {@link CatalogReader} the local catalog is, so HTTP, DNS and the Consul adapter read either
 * without knowing where the data came from. Indexes are the remote DC's own.
 */
export class RemoteCatalog implements CatalogReader {
  private revision = 0;
  private floor = 0;
  private baseIndex = 1;
  private readonly byService = new Map<string, ServiceState>();
  private readonly instances = new Map<string, Instance>();
  private readonly ring = new Ring<HistoryEntry>(HISTORY);
  private readonly listeners = new Set<(c: CatalogChange) => void>();
  private readonly serviceWaiters = new Map<string, IndexWaiters>();
  private readonly indexWaiters: IndexWaiters;
  private staleAt: number | undefined;
  private loaded = false;

  constructor(
    readonly datacenter: string,
    private readonly clock: Clock,
  ) {
    this.indexWaiters = new IndexWaiters(clock);
    // Nothing has arrived yet: as stale as a view can be, from its creation on.
    this.staleAt = clock.now();
  }

  /** True once a full listing (a `reset`) has arrived: before that there is nothing to answer from. */
  get synced(): boolean {
    return this.loaded;
  }

  get index(): number {
    return Math.max(1, this.revision);
  }

  get historyFloor(): number {
    return this.floor;
  }

  get stale(): boolean {
    return this.staleAt !== undefined;
  }

  get staleSince(): number | undefined {
    return this.staleAt;
  }

  /** The stream to the DC broke: reads go on from the last view, marked stale from now. */
  markStale(): void {
    this.staleAt ??= this.clock.now();
  }

  /** A stream is open again and its replay applied. */
  markCurrent(): void {
    if (this.loaded) this.staleAt = undefined;
  }

  // ---- reads ---------------------------------------------------------------------------

  services(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const [name, s] of this.byService) if (s.byId.size > 0) out.push(summarize(name, s.index, s.byId.values()));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  service(name: string): ServiceEntry {
    const s = this.byService.get(name);
    if (!s) return { name, index: this.baseIndex, instances: [] };
    s.sorted ??= [...s.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { name, index: s.index, instances: s.sorted };
  }

  instance(id: string): Instance | undefined {
    return this.instances.get(id);
  }

  instanceByCheck(checkId: string): Instance | undefined {
    for (const i of this.instances.values()) if (i.checks.some((c) => c.id === checkId)) return i;
    return undefined;
  }

  nodes(): NodeEntry[] {
    const names = new Set<string>();
    for (const i of this.instances.values()) names.add(i.node);
    return [...names].sort().map((n) => this.node(n)!);
  }

  /** Nodes of a remote DC are known from its instances only (its stream carries no node records). */
  node(name: string): NodeEntry | undefined {
    const services = new Set<string>();
    let address: string | undefined;
    for (const i of this.instances.values()) {
      if (i.node !== name) continue;
      services.add(i.service);
      address ??= i.address;
    }
    return address === undefined ? undefined : { name, address, meta: {}, services: [...services].sort() };
  }

  /** A remote node's own checks are already folded into each instance's status by its DC. */
  nodeChecks(_node: string): Check[] {
    return [];
  }

  nodeCheck(_checkId: string): undefined {
    return undefined;
  }

  history(filter: HistoryFilter = {}): ChangeEvent[] {
    return selectHistory(this.ring, filter, HISTORY).map((h) => h.event);
  }

  replay(since: number, services?: ReadonlySet<string>): HistoryEntry[] {
    return replayHistory(this.ring, since, this.floor, services);
  }

  onChange(listener: (change: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async waitForService(name: string, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<ServiceEntry> {
    let w = this.serviceWaiters.get(name);
    if (!w) this.serviceWaiters.set(name, (w = new IndexWaiters(this.clock)));
    await w.wait(this.service(name).index, minIndex, timeoutMs, signal);
    if (w.size === 0) this.serviceWaiters.delete(name);
    return this.service(name);
  }

  async waitForIndex(revision: number, timeoutMs = 10_000): Promise<void> {
    await this.indexWaiters.wait(this.revision, revision - 1, timeoutMs);
    if (this.revision < revision) throw errors.unavailable(`datacenter ${this.datacenter} did not reach index ${revision} within ${timeoutMs} ms`);
  }

  close(): void {
    for (const w of this.serviceWaiters.values()) w.close();
    this.serviceWaiters.clear();
    this.indexWaiters.close();
  }

  // ---- feed ----------------------------------------------------------------------------

  /** A full listing (the stream's `reset` event): replaces everything held. */
  reset(index: number, instances: readonly Instance[]): void {
    const touched = new Set<string>(this.byService.keys());
    const ids = new Set<string>(this.instances.keys());
    this.instances.clear();
    for (const s of this.byService.values()) {
      s.byId.clear();
      s.sorted = undefined;
    }
    for (const i of instances) {
      this.put(i);
      touched.add(i.service);
      ids.add(i.id);
    }
    this.ring.clear();
    this.revision = index;
    this.floor = index;
    this.baseIndex = Math.max(1, index);
    // A listing after a restart may carry a lower index than before: readers see the DC's own.
    for (const name of touched) this.state(name).index = Math.max(1, index);
    this.loaded = true;
    this.staleAt = undefined;
    this.publish({ index: this.index, services: touched, events: [], instanceIds: ids, reset: true });
  }

  /** One revision's changes (the stream's `change` events up to the one carrying `id:`). */
  apply(index: number, changes: readonly RemoteChange[]): void {
    const services = new Set<string>();
    const ids = new Set<string>();
    const events: ChangeEvent[] = [];
    for (const c of changes) {
      const prev = this.instances.get(c.id);
      if (prev) this.remove(prev);
      if (prev) services.add(prev.service);
      if (c.type === 'upsert' && c.instance) this.put(c.instance);
      services.add(c.service);
      ids.add(c.id);
      events.push(c.event);
      const dropped = this.ring.push(c.instance ? { event: c.event, instance: c.instance } : { event: c.event });
      if (dropped) this.floor = Math.max(this.floor, dropped.event.index);
    }
    this.revision = Math.max(this.revision, index);
    for (const name of services) {
      const st = this.state(name);
      st.index = Math.max(st.index, index);
    }
    this.publish({ index, services, events, instanceIds: ids, reset: false });
  }

  /** The DC's index moved with nothing this view holds changing (its `index` event). */
  advance(index: number): void {
    if (index <= this.revision) return;
    this.revision = index;
    this.indexWaiters.wake(this.revision);
  }

  private state(name: string): ServiceState {
    let s = this.byService.get(name);
    if (!s) this.byService.set(name, (s = { index: this.baseIndex, byId: new Map(), sorted: undefined }));
    return s;
  }

  private put(i: Instance): void {
    this.instances.set(i.id, i);
    const s = this.state(i.service);
    s.byId.set(i.id, i);
    s.sorted = undefined;
  }

  private remove(i: Instance): void {
    this.instances.delete(i.id);
    const s = this.byService.get(i.service);
    if (!s) return;
    s.byId.delete(i.id);
    s.sorted = undefined;
  }

  private publish(change: CatalogChange): void {
    for (const name of change.services) this.serviceWaiters.get(name)?.wake(this.service(name).index);
    this.indexWaiters.wake(this.revision);
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure is its own (each front end logs its errors); the others still run.
      }
    }
  }
}
