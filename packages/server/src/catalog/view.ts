import type { CancelSignal } from '../util/cancel.js';
import { parseJson } from '../util/json.js';
import {
  aggregateStatus,
  deriveConditions,
  errors,
  isBeaconError,
  LIMITS,
  type ChangeEvent,
  type ChangeNote,
  type Check,
  type Clock,
  type DeregisterCause,
  type Instance,
  type InstanceRecord,
} from '@beacon/core';
import { classifyKey } from '../keys.js';
import type { KeyValue, LeaseId, Store, WatchBatch } from '../store/types.js';
import { KEYS } from '../keys.js';
import { Ring } from './ring.js';
import { compactInstance, Interner } from './compact.js';
import { IndexWaiters } from '../util/index-waiters.js';
import { historyEntryBytes } from './history-bytes.js';
import { replayHistory, selectHistory, type HistoryEntry } from './history.js';
import {
  summarize,
  type CatalogChange,
  type CatalogReader,
  type HistoryFilter,
  type NodeEntry,
  type ServiceEntry,
  type ServiceSummary,
} from './types.js';

/** Written beside a deliberate deletion, in the same transaction, so every reader learns why it went. */
export interface Tombstone {
  id: string;
  service: string;
  cause: DeregisterCause;
  reason: string;
  at: number;
}

export interface NodeRecord {
  name: string;
  address: string;
  meta: Record<string, string>;
}

/** A node-level check as stored (Consul's checks without a ServiceID): it counts against every instance on `node`. */
export interface NodeCheckRecord {
  node: string;
  check: Check;
  change: ChangeNote;
}

/** A node check as readers see it: the record and the store revisions of its creation and last change. */
export interface NodeCheckEntry extends NodeCheckRecord {
  createIndex: number;
  modifyIndex: number;
}

export type { HistoryEntry } from './history.js';

interface ServiceState {
  name: string;
  index: number;
  byId: Map<string, Instance>;
  sorted: readonly Instance[] | undefined;
}

export interface CatalogViewOptions {
  store: Store;
  clock: Clock;
  historySize?: number;
  /** Estimated bytes the history may hold besides its entry count ({@link historyEntryBytes}). Default LIMITS.historyBytes. */
  historyBytes?: number;
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
}

/**
 * The in-memory catalog, built from the store's change feed the way a Kubernetes informer is:
 * list, then watch from the listing's revision; on a compacted watch, list again and say so
 * with a `reset` change. Every read is served from memory.
 */
export class CatalogView implements CatalogReader {
  private revision = 0;
  private floor = 0;
  /** Index of services never seen: stable, so a write elsewhere never moves it. */
  private baseIndex = 1;
  private readonly servicesByName = new Map<string, ServiceState>();
  private readonly instances = new Map<string, Instance>();
  private readonly leases = new Map<string, LeaseId>();
  private readonly checkOwners = new Map<string, string>();
  private readonly tombstones = new Map<string, Tombstone>();
  private readonly nodeRecords = new Map<string, NodeRecord>();
  private readonly nodeCheckRecords = new Map<string, NodeCheckEntry>();
  /** Node name → its node checks by id, for deriving each instance's health. */
  private readonly nodeChecksByNode = new Map<string, Map<string, Check>>();
  /** Shared copies of what instances repeat (tags, ports, metadata, zone and service names). */
  private readonly intern = new Interner();
  private readonly historyRing: Ring<HistoryEntry>;
  private readonly historySize: number;
  private readonly historyMaxBytes: number;
  private historyBytes = 0;
  private readonly listeners = new Set<(c: CatalogChange) => void>();
  /** Blocking reads parked per service: only a change to that service wakes them. */
  private readonly waiters = new Map<string, IndexWaiters>();
  private indexWaiters: { revision: number; resolve: () => void }[] = [];
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** The feed failed and has not been listed again yet. */
  private feedBroken = false;
  /** The feed is up but could not be confirmed current lately (the store says so). */
  private feedBehind = false;
  private staleAt: number | undefined;

  constructor(private readonly opts: CatalogViewOptions) {
    this.historySize = opts.historySize ?? LIMITS.historySize;
    this.historyRing = new Ring(this.historySize);
    this.historyMaxBytes = opts.historyBytes ?? LIMITS.historyBytes;
  }

  /** Lists the store and starts following its feed. Resolves once the first listing is applied. */
  async start(): Promise<void> {
    const from = await this.resync(false);
    this.loop = this.follow(from);
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
    for (const w of this.waiters.values()) w.close();
    this.waiters.clear();
    for (const w of this.indexWaiters) w.resolve();
    this.indexWaiters = [];
  }

  /** True while reads may be behind the store: its feed is broken, or not confirmed current. */
  get stale(): boolean {
    return this.feedBroken || this.feedBehind;
  }

  /** When the view last became stale (clock milliseconds), while it is. */
  get staleSince(): number | undefined {
    return this.staleAt;
  }

  private setFeed(which: 'broken' | 'behind', on: boolean): void {
    switch (which) {
      case 'broken':
        this.feedBroken = on;
        break;
      case 'behind':
        this.feedBehind = on;
        break;
    }
    // Kept from the first moment, not the latest change: how long reads may have been behind.
    if (!this.stale) this.staleAt = undefined;
    else this.staleAt ??= this.opts.clock.now();
  }

  get index(): number {
    return Math.max(1, this.revision);
  }

  get historyFloor(): number {
    return this.floor;
  }

  // ---- reads ---------------------------------------------------------------------------

  services(): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const s of this.servicesByName.values()) if (s.byId.size > 0) out.push(summarize(s.name, s.index, s.byId.values()));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  service(name: string): ServiceEntry {
    const s = this.servicesByName.get(name);
    if (!s) return { name, index: this.baseIndex, instances: [] };
    if (!s.sorted) s.sorted = [...s.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { name, index: s.index, instances: s.sorted };
  }

  instance(id: string): Instance | undefined {
    return this.instances.get(id);
  }

  instanceByCheck(checkId: string): Instance | undefined {
    const owner = this.checkOwners.get(checkId);
    return owner === undefined ? undefined : this.instances.get(owner);
  }

  /** The lease an instance holds, 0 when none. */
  leaseOf(id: string): LeaseId {
    return this.leases.get(id) ?? 0;
  }

  tombstone(id: string): Tombstone | undefined {
    return this.tombstones.get(id);
  }

  nodes(): NodeEntry[] {
    const names = new Set<string>(this.nodeRecords.keys());
    for (const i of this.instances.values()) names.add(i.node);
    return [...names].sort().map((n) => this.node(n)!);
  }

  node(name: string): NodeEntry | undefined {
    const rec = this.nodeRecords.get(name);
    const services = new Set<string>();
    let address = rec?.address;
    for (const i of this.instances.values()) {
      if (i.node !== name) continue;
      services.add(i.service);
      address ??= i.address;
    }
    if (!rec && services.size === 0) return undefined;
    return { name, address: address ?? '', meta: rec?.meta ?? {}, services: [...services].sort() };
  }

  /** The node-level checks of a node, by id; they count in the status and conditions of its every instance. */
  nodeChecks(node: string): Check[] {
    const m = this.nodeChecksByNode.get(node);
    return m ? [...m.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : [];
  }

  nodeCheck(checkId: string): NodeCheckEntry | undefined {
    return this.nodeCheckRecords.get(checkId);
  }

  allNodeChecks(): NodeCheckEntry[] {
    return [...this.nodeCheckRecords.values()];
  }

  history(filter: HistoryFilter = {}): ChangeEvent[] {
    return this.historyEntries(filter).map((h) => h.event);
  }

  /** History with the instance state after each change; the newest `limit` entries, oldest first. */
  historyEntries(filter: HistoryFilter = {}): HistoryEntry[] {
    return selectHistory(this.historyRing, filter, this.historySize);
  }

  /** Entries after `since`, or a `compacted` error when history no longer reaches back that far. */
  replay(since: number, services?: ReadonlySet<string>): HistoryEntry[] {
    return replayHistory(this.historyRing, since, this.floor, services);
  }

  onChange(listener: (change: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  waitForService(name: string, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<ServiceEntry> {
    const current = this.service(name);
    if (current.index > minIndex || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(current);
    let w = this.waiters.get(name);
    if (!w) this.waiters.set(name, (w = new IndexWaiters(this.opts.clock)));
    const waiters = w;
    return waiters.wait(current.index, minIndex, timeoutMs, signal).then(() => {
      if (waiters.size === 0 && this.waiters.get(name) === waiters) this.waiters.delete(name);
      return this.service(name);
    });
  }

  waitForIndex(revision: number, timeoutMs = 10_000): Promise<void> {
    if (this.revision >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.indexWaiters = this.indexWaiters.filter((w) => w !== entry);
        reject(errors.unavailable(`catalog did not reach index ${revision} within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = { revision, resolve: () => (timer.cancel(), resolve()) };
      this.indexWaiters.push(entry);
    });
  }

  /** Number of blocking queries parked on services (for metrics). */
  get waiting(): number {
    let n = 0;
    for (const w of this.waiters.values()) n += w.size;
    return n;
  }

  // ---- feed ----------------------------------------------------------------------------

  private async follow(from: number): Promise<void> {
    let next = from;
    while (!this.abort.signal.aborted) {
      try {
        for await (const batch of this.opts.store.watch(KEYS.root, { fromRevision: next, signal: this.abort.signal, onBehind: this.onBehind })) {
          this.setFeed('broken', false);
          this.applyBatch(batch);
          next = batch.revision + 1;
        }
        // A watch ends without an error only when asked to or when the store closes (Store.watch):
        // either way this is teardown, and watching again would only fail on a closed store.
        return;
      } catch (err) {
        // A watch that has ended says nothing more about lag; the feed's state says it all.
        this.setFeed('behind', false);
        if (this.abort.signal.aborted) return;
        if (isBeaconError(err) && err.code === 'compacted') {
          this.opts.logger?.warn({ err, from: next }, 'catalog watch compacted; listing again');
        } else {
          this.setFeed('broken', true);
          this.opts.logger?.error({ err }, 'catalog watch failed; listing again');
          await new Promise<void>((r) => this.opts.clock.setTimeout(r, 500));
          if (this.abort.signal.aborted) return;
        }
        try {
          next = await this.resync(true);
          // A fresh listing: the view is current again, even if no change follows for a while.
          this.setFeed('broken', false);
        } catch (e) {
          this.setFeed('broken', true);
          this.opts.logger?.error({ err: e }, 'catalog relist failed');
        }
      }
    }
  }

  private readonly onBehind = (behind: boolean): void => {
    if (behind === this.feedBehind) return;
    this.setFeed('behind', behind);
    if (behind) this.opts.logger?.warn({ index: this.index }, 'catalog view is stale: its store watch could not be confirmed current');
    else this.opts.logger?.info({ index: this.index }, 'catalog view is current again');
  };

  /** Rebuilds everything from a listing. Returns the revision to watch from. */
  private async resync(reset: boolean): Promise<number> {
    const { kvs, revision } = await this.opts.store.range(KEYS.root);
    const before = new Set(this.instances.keys());
    const touched = new Set<string>();
    for (const s of this.servicesByName.values()) touched.add(s.name);
    this.instances.clear();
    this.leases.clear();
    this.checkOwners.clear();
    this.tombstones.clear();
    this.nodeRecords.clear();
    this.nodeCheckRecords.clear();
    this.nodeChecksByNode.clear();
    for (const s of this.servicesByName.values()) {
      s.byId.clear();
      s.sorted = undefined;
    }
    // Node checks first: every instance's health is derived with its node's checks.
    for (const kv of kvs) if (classifyKey(kv.key).kind === 'node-check') this.applyKv(kv);
    for (const kv of kvs) if (classifyKey(kv.key).kind !== 'node-check') this.applyKv(kv);
    for (const i of this.instances.values()) touched.add(i.service);
    const ids = new Set<string>([...before, ...this.instances.keys()]);
    // History cannot be trusted across a relist: clients resuming below this point get a reset.
    this.historyRing.clear();
    this.historyBytes = 0;
    this.revision = Math.max(this.revision, revision);
    this.floor = this.revision;
    this.baseIndex = Math.max(1, this.revision);
    for (const name of touched) this.bumpService(name, this.revision);
    this.publish({ index: this.index, services: touched, events: [], instanceIds: ids, reset });
    return revision + 1;
  }

  private applyKv(kv: KeyValue): void {
    const { kind, name } = classifyKey(kv.key);
    switch (kind) {
      case 'instance': {
        const inst = this.toInstance(kv);
        if (inst) this.setInstance(inst, kv.lease);
        return;
      }
      case 'tombstone': {
        const t = parseJson<Tombstone>(kv.value);
        if (t) this.tombstones.set(name, t);
        return;
      }
      case 'node': {
        const n = parseJson<NodeRecord>(kv.value);
        if (n) this.nodeRecords.set(name, n);
        return;
      }
      case 'node-check': {
        const r = parseNodeCheck(kv);
        if (r) this.setNodeCheck(name, r);
        return;
      }
      case 'other':
        return;
    }
  }

  private applyBatch(batch: WatchBatch): void {
    const services = new Set<string>();
    const ids = new Set<string>();
    const events: HistoryEntry[] = [];
    let removed: Map<string, Instance> | undefined;
    const now = this.opts.clock.now();
    // Tombstones first: a deliberate deletion writes one in the same revision as the delete.
    // Most batches (a registration, a heartbeat's check update) carry none: no map for them.
    let freshTombstones: Map<string, Tombstone> | undefined;
    for (const ev of batch.events) {
      if (ev.type !== 'put') continue;
      const { kind, name } = classifyKey(ev.kv.key);
      if (kind === 'tombstone') {
        const t = parseJson<Tombstone>(ev.kv.value);
        if (t) (freshTombstones ??= new Map()).set(name, t);
      }
    }
    for (const ev of batch.events) {
      const { kind, name } = classifyKey(ev.kv.key);
      switch (kind) {
        case 'instance': {
          const prev = this.instances.get(name);
          if (ev.type === 'put') {
            const inst = this.toInstance(ev.kv);
            if (!inst) break;
            if (prev && prev.service !== inst.service) {
              this.removeInstance(prev);
              services.add(prev.service);
            }
            this.setInstance(inst, ev.kv.lease);
            this.tombstones.delete(name);
            services.add(inst.service);
            ids.add(name);
            events.push({ event: noteToEvent(inst, batch.revision, now, prev === undefined), instance: inst });
          } else if (prev) {
            this.removeInstance(prev);
            (removed ??= new Map()).set(name, prev);
            services.add(prev.service);
            ids.add(name);
            const t = freshTombstones?.get(name);
            const cause: DeregisterCause = t ? t.cause : prev.ttlMs !== undefined ? 'lease_expired' : 'api';
            const reason = t ? t.reason : cause === 'lease_expired' ? `lease of ${prev.ttlMs} ms expired without a heartbeat` : 'deleted';
            events.push({
              event: { index: batch.revision, at: t?.at ?? now, service: prev.service, instanceId: name, kind: 'deregistered', reason, cause },
            });
            // Logged here, where every deregistration arrives whatever removed it: a lease that
            // expired in the store never passes through the registry.
            this.opts.logger?.info({ service: prev.service, id: name, cause, reason, index: batch.revision }, 'instance deregistered');
          }
          break;
        }
        case 'tombstone':
          if (ev.type === 'put') {
            const t = freshTombstones?.get(name);
            if (t) this.tombstones.set(name, t);
          } else this.tombstones.delete(name);
          break;
        case 'node':
          if (ev.type === 'put') {
            const n = parseJson<NodeRecord>(ev.kv.value);
            if (n) this.nodeRecords.set(name, n);
          } else this.nodeRecords.delete(name);
          for (const i of this.instances.values()) if (i.node === name) services.add(i.service);
          break;
        case 'node-check': {
          const prev = this.nodeCheckRecords.get(name);
          const next = ev.type === 'put' ? parseNodeCheck(ev.kv) : undefined;
          if (prev) this.deleteNodeCheck(name);
          if (next) this.setNodeCheck(name, next);
          const node = next?.node ?? prev?.node;
          if (node === undefined) break;
          const note: ChangeNote = next ? next.change : { kind: 'updated', reason: `node check ${prev!.check.name} (${name}) removed`, at: now, checkId: name };
          for (const inst of this.rederiveNode(node)) {
            services.add(inst.service);
            ids.add(inst.id);
            const e: ChangeEvent = { index: batch.revision, at: note.at, service: inst.service, instanceId: inst.id, kind: note.kind, reason: `node ${node}: ${note.reason}` };
            if (note.checkId !== undefined) e.checkId = note.checkId;
            if (note.from !== undefined) e.from = note.from;
            if (note.to !== undefined) e.to = note.to;
            if (note.output !== undefined) e.output = note.output;
            events.push({ event: e, instance: inst });
          }
          break;
        }
        case 'other':
          break;
      }
    }
    this.revision = batch.revision;
    // Writers first: their answers then go out ahead of the blocking queries this change wakes.
    this.resolveIndexWaiters();
    for (const s of services) this.bumpService(s, batch.revision);
    for (const h of events) this.pushHistory(h);
    this.publish({ index: batch.revision, services, events: events.map((h) => h.event), instanceIds: ids, reset: false, ...(removed ? { removed } : {}) });
  }

  private toInstance(kv: KeyValue): Instance | undefined {
    const rec = parseJson<InstanceRecord>(kv.value);
    if (!rec || typeof rec.service !== 'string' || !Array.isArray(rec.checks)) {
      this.opts.logger?.warn({ key: kv.key }, 'ignoring unreadable instance record');
      return undefined;
    }
    const health = this.withNodeChecks(rec);
    return compactInstance(rec, { status: aggregateStatus(health), conditions: deriveConditions(health), modifyIndex: kv.modRevision, createIndex: kv.createRevision }, this.intern);
  }

  /** What an instance's health is derived from: its own checks and its node's. */
  private withNodeChecks<T extends Pick<InstanceRecord, 'checks' | 'node' | 'maintenance' | 'draining'>>(rec: T): T {
    const nc = this.nodeChecksByNode.get(rec.node);
    return nc?.size ? { ...rec, checks: [...rec.checks, ...nc.values()] } : rec;
  }

  /** A node check changed: every instance on the node gets its status and conditions derived again (new objects, as readers may hold the old). */
  private rederiveNode(node: string): Instance[] {
    const out: Instance[] = [];
    for (const i of [...this.instances.values()]) {
      if (i.node !== node) continue;
      const health = this.withNodeChecks(i);
      const next: Instance = { ...i, status: aggregateStatus(health), conditions: deriveConditions(health) };
      this.setInstance(next, this.leases.get(i.id) ?? 0);
      out.push(next);
    }
    return out;
  }

  private setNodeCheck(id: string, r: NodeCheckEntry): void {
    this.nodeCheckRecords.set(id, r);
    let m = this.nodeChecksByNode.get(r.node);
    if (!m) this.nodeChecksByNode.set(r.node, (m = new Map()));
    m.set(id, r.check);
  }

  private deleteNodeCheck(id: string): void {
    const r = this.nodeCheckRecords.get(id);
    if (!r) return;
    this.nodeCheckRecords.delete(id);
    const m = this.nodeChecksByNode.get(r.node);
    m?.delete(id);
    if (m && m.size === 0) this.nodeChecksByNode.delete(r.node);
  }

  private setInstance(inst: Instance, lease: LeaseId): void {
    const prev = this.instances.get(inst.id);
    if (prev) for (const c of prev.checks) this.checkOwners.delete(c.id);
    this.instances.set(inst.id, inst);
    if (lease) this.leases.set(inst.id, lease);
    else this.leases.delete(inst.id);
    for (const c of inst.checks) this.checkOwners.set(c.id, inst.id);
    let s = this.servicesByName.get(inst.service);
    if (!s) this.servicesByName.set(inst.service, (s = { name: inst.service, index: 0, byId: new Map(), sorted: undefined }));
    s.byId.set(inst.id, inst);
    s.sorted = undefined;
  }

  private removeInstance(inst: Instance): void {
    this.instances.delete(inst.id);
    this.leases.delete(inst.id);
    for (const c of inst.checks) if (this.checkOwners.get(c.id) === inst.id) this.checkOwners.delete(c.id);
    const s = this.servicesByName.get(inst.service);
    if (s) {
      s.byId.delete(inst.id);
      s.sorted = undefined;
    }
  }

  /** Empty services keep their entry so their index stays monotonic for blocking readers. */
  private bumpService(name: string, revision: number): void {
    let s = this.servicesByName.get(name);
    if (!s) this.servicesByName.set(name, (s = { name, index: 0, byId: new Map(), sorted: undefined }));
    s.index = Math.max(s.index, revision);
    this.waiters.get(name)?.wake(s.index);
  }

  private pushHistory(h: HistoryEntry): void {
    this.historyBytes += historyEntryBytes(h);
    const dropped = this.historyRing.push(h);
    if (dropped) this.forgetHistory(dropped);
    // The newest entry always stays, whatever its size: a change is never lost before anyone could see it.
    while (this.historyBytes > this.historyMaxBytes && this.historyRing.length > 1) this.forgetHistory(this.historyRing.shift()!);
  }

  private forgetHistory(dropped: HistoryEntry): void {
    this.historyBytes -= historyEntryBytes(dropped);
    this.floor = Math.max(this.floor, dropped.event.index);
  }

  private resolveIndexWaiters(): void {
    const all = this.indexWaiters;
    if (all.length === 0) return;
    // One pass, compacting in place: called twice per change with every pending writer waiting.
    let kept = 0;
    const due: (() => void)[] = [];
    for (const w of all) {
      if (w.revision <= this.revision) due.push(w.resolve);
      else all[kept++] = w;
    }
    all.length = kept;
    for (const resolve of due) resolve();
  }

  private publish(change: CatalogChange): void {
    this.resolveIndexWaiters();
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.opts.logger?.error({ err }, 'catalog listener failed');
      }
    }
  }
}

function noteToEvent(inst: Instance, index: number, at: number, created: boolean): ChangeEvent {
  const n = inst.change;
  const kind = created && n.kind === 'updated' ? 'registered' : n.kind;
  const e: ChangeEvent = { index, at: n.at ?? at, service: inst.service, instanceId: inst.id, kind, reason: n.reason };
  if (n.checkId !== undefined) e.checkId = n.checkId;
  if (n.from !== undefined) e.from = n.from;
  if (n.to !== undefined) e.to = n.to;
  if (n.output !== undefined) e.output = n.output;
  return e;
}

/** A stored node check, or undefined when the value is not one (the registry reads them with this too). */
export function parseNodeCheckRecord(value: string): NodeCheckRecord | undefined {
  const r = parseJson<NodeCheckRecord>(value);
  return r && typeof r.node === 'string' && typeof r.check?.id === 'string' && r.change ? r : undefined;
}

function parseNodeCheck(kv: KeyValue): NodeCheckEntry | undefined {
  const r = parseNodeCheckRecord(kv.value);
  return r ? { ...r, createIndex: kv.createRevision, modifyIndex: kv.modRevision } : undefined;
}
