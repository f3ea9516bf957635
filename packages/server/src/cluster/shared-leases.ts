import { errors, isBeaconError, type Clock, type Instance, type Timer } from '@beacon/core';
import type { CatalogChange } from '../catalog/types.js';
import { KEYS } from '../keys.js';
import type { AcquiredLease, CurrentLease, HeartbeatResult, InstanceLeases } from '../registry/leases.js';
import { LeaseDeadlines } from '../store/lease-deadlines.js';
import type { KeyValue, LeaseId, Store, WatchBatch } from '../store/types.js';
import { followPrefix } from './follow.js';

/** The catalog as this module reads it. */
export interface LeaseCatalog {
  instance(id: string): Instance | undefined;
  leaseOf(id: string): LeaseId;
  services(): { name: string }[];
  service(name: string): { instances: readonly Instance[] };
  onChange(listener: (change: CatalogChange) => void): () => void;
}

/** The membership as this module reads it. */
export interface LeaseMembership {
  readonly self: string;
  /** This server's membership lease: relayed heartbeats go with it. */
  readonly leaseId: LeaseId;
  members(): { node: string }[];
}

export interface SharedLeasesOptions {
  store: Store;
  clock: Clock;
  catalog: LeaseCatalog;
  membership: LeaseMembership;
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void } | undefined;
  /** How often this server renews its shared leases. Default 1000 ms. */
  renewEveryMs?: number;
}

/** etcd lease TTL above the bucket: time for renewals (every second) to fail before the lease does. */
const MARGIN_S = 3;
/** Relayed heartbeats per write; 128 ids of at most 128 characters stay far below etcd's 1.5 MiB. */
const RELAY_BATCH = 2000;
/** Expiries (a read and a compare-and-delete each) in flight at once. */
const EXPIRY_CONCURRENCY = 16;
const CAS_ATTEMPTS = 8;

/**
 * The TTL bucket of an instance TTL: instances of one server whose TTLs fall in one bucket share
 * one etcd lease. Buckets are 1 s wide up to 60 s, 10 s up to 10 min and 1 min beyond (a server
 * holds a few dozen leases at most, whatever TTLs clients pick). The etcd lease lives `bucket +
 * margin`: the longest an instance can outlive a server that died holding it.
 */
export function ttlBucket(ttlMs: number): { bucketSec: number; leaseTtlMs: number } {
  const s = Math.max(1, Math.ceil(ttlMs / 1000));
  const width = s <= 60 ? 1 : s <= 600 ? 10 : 60;
  const bucketSec = Math.ceil(s / width) * width;
  return { bucketSec, leaseTtlMs: (bucketSec + Math.max(MARGIN_S, width)) * 1000 };
}

interface OwnLease {
  id: LeaseId;
  bucketSec: number;
  leaseTtlMs: number;
  /** When the request of the last renewal etcd confirmed was sent: the lease runs from no earlier. */
  confirmedAt: number;
}

interface Outbox {
  ids: Set<string>;
  waiters: Array<{ resolve(): void; reject(err: unknown): void }>;
  flushing: boolean;
}

/**
 * Instance leases in clustered mode, shared by TTL bucket (docs/clustering.md, "Leases").
 *
 * The server that takes a registration owns the instance: it writes the record on its own etcd
 * lease for the TTL's bucket (granted once, then renewed every second, never per instance) and
 * keeps the instance's deadline in memory. A heartbeat that reaches the owner touches only that
 * memory; one that reaches another server is relayed to the owner — heartbeats arriving while a
 * relay write is in flight go together in the next one, a single put for the lot. When the
 * deadline passes the owner deletes the record (compare-and-delete, so a record another server
 * took over meanwhile stays). If the owner dies, its leases lapse in etcd and the instances on
 * them go within their TTL bucket plus the margin — unless a heartbeat reaches another server
 * first: that server takes the instance over onto its own lease (one write), as it does for an
 * instance on a lease no live server owns (an older per-instance lease, a restored snapshot).
 */
export class SharedLeases implements InstanceLeases {
  /** This server's leases by bucket (a grant in progress is shared by every registration that needs it). */
  private readonly buckets = new Map<number, Promise<OwnLease>>();
  private readonly own = new Map<LeaseId, OwnLease>();
  /** Every shared lease in the cluster and the server that owns it. */
  private readonly owners = new Map<LeaseId, string>();
  private readonly deadlines: LeaseDeadlines<string>;
  /** Past their deadline, being deleted: a heartbeat now is too late. */
  private readonly expiring = new Set<string>();
  private readonly expiryQueue: string[] = [];
  private expiriesRunning = 0;
  private readonly adopting = new Map<string, Promise<void>>();
  private readonly outboxes = new Map<string, Outbox>();
  private readonly abort = new AbortController();
  private following: Promise<void>[] = [];
  private unsubscribe: (() => void) | undefined;
  private timer: Timer | undefined;
  private closed = false;

  constructor(private readonly opts: SharedLeasesOptions) {
    this.deadlines = new LeaseDeadlines<string>(opts.clock, (ids) => this.expired(ids));
  }

  async start(): Promise<void> {
    const follow = { clock: this.opts.clock, signal: this.abort.signal, logger: this.opts.logger };
    const leases = followPrefix(this.opts.store, KEYS.sharedLeases, { reset: (kvs) => this.resetOwners(kvs), batch: (b) => this.applyOwners(b) }, follow);
    // Relays sent before a relisting are not replayed: an instance that lost one lives on until its
    // next heartbeat (clients send several per TTL), and a relisting only follows a broken feed.
    const relayed = followPrefix(this.opts.store, KEYS.heartbeatsFor(this.opts.membership.self), { reset: () => undefined, batch: (b) => this.applyRelayed(b) }, follow);
    this.following = [leases.done, relayed.done];
    this.unsubscribe = this.opts.catalog.onChange((c) => this.reconcile(c));
    await Promise.all([leases.ready, relayed.ready]);
    this.scheduleRenewal();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.unsubscribe?.();
    this.deadlines.stop();
    this.abort.abort();
    await Promise.all(this.following);
    // The leases are not revoked: that would delete every instance on them. They lapse within their
    // TTL, and meanwhile a heartbeat through another server takes each live instance over.
  }

  /** Instances whose deadline this server keeps (metrics, tests). */
  get tracked(): number {
    return this.deadlines.size;
  }

  // ---- InstanceLeases ---------------------------------------------------------------------

  async acquire(id: string, ttlMs: number, current: CurrentLease | undefined): Promise<AcquiredLease> {
    if (current?.lease && current.ttlMs === ttlMs && this.own.has(current.lease)) {
      this.renewOwn(id, ttlMs);
      return { id: current.lease, fresh: false };
    }
    if (current?.lease && current.ttlMs === ttlMs) {
      // Another live server owns it: the registration is a heartbeat there, and the record stays on its lease.
      const owner = await this.ownerOf(current.lease);
      if (owner !== undefined && this.isOtherLiveServer(owner)) {
        await this.relay(owner, id);
        return { id: current.lease, fresh: false };
      }
    }
    return { id: (await this.ownLease(ttlMs)).id, fresh: false };
  }

  async abandon(): Promise<void> {
    // Shared leases outlive any one registration: nothing to give back.
  }

  written(id: string, lease: LeaseId, ttlMs: number): void {
    if (this.own.has(lease)) this.deadlines.track(id, ttlMs);
  }

  async released(id: string): Promise<void> {
    // Never revoked: other instances live on it. The record is gone or moved; so is its deadline.
    this.deadlines.forget(id);
  }

  async heartbeat(id: string, lease: LeaseId, ttlMs: number): Promise<HeartbeatResult> {
    const mine = this.own.get(lease);
    if (mine) {
      if (this.expiring.has(id)) throw errors.notFound(`instance ${id}'s lease has expired; register it again`);
      // Cut off from etcd for longer than the margin, this server's lease may be gone: say so, and the
      // client tries another server, which takes the instance over if this one has lost it.
      if (this.opts.clock.now() - mine.confirmedAt >= mine.leaseTtlMs - mine.bucketSec * 1000) {
        throw errors.unavailable(`this server could not renew its etcd lease for instance ${id} lately; try another server`);
      }
      const left = this.renewOwn(id, ttlMs);
      if (!left) throw errors.notFound(`instance ${id}'s lease has expired; register it again`);
      return left;
    }
    const owner = await this.ownerOf(lease);
    if (owner !== undefined && this.isOtherLiveServer(owner)) await this.relay(owner, id);
    else await this.adopt(id, lease, ttlMs);
    return { ttlMs, remainingMs: ttlMs };
  }

  async remaining(id: string, lease: LeaseId, ttlMs: number): Promise<HeartbeatResult | undefined> {
    if (this.own.has(lease)) {
      const d = this.deadlines.info(id);
      return d && { ttlMs: d.ttlMs, remainingMs: Math.max(0, d.remainingMs) };
    }
    // Another server keeps the deadline: what etcd knows is the shared lease, an upper bound.
    try {
      const info = await this.opts.store.leaseInfo(lease);
      return info && { ttlMs, remainingMs: Math.max(0, Math.min(ttlMs, info.remainingMs)) };
    } catch (err) {
      if (isBeaconError(err) && err.code === 'not_found') return undefined;
      throw err;
    }
  }

  // ---- own leases ---------------------------------------------------------------------------

  /** Restarts an owned instance's clock; undefined when its deadline has passed. */
  private renewOwn(id: string, ttlMs: number): HeartbeatResult | undefined {
    if (!this.deadlines.has(id)) {
      this.deadlines.track(id, ttlMs);
      return { ttlMs, remainingMs: ttlMs };
    }
    const d = this.deadlines.renew(id);
    return d && { ttlMs: d.ttlMs, remainingMs: d.remainingMs };
  }

  private async ownLease(ttlMs: number): Promise<OwnLease> {
    const { bucketSec, leaseTtlMs } = ttlBucket(ttlMs);
    const existing = this.buckets.get(bucketSec);
    if (existing) return existing;
    const granting = (async () => {
      const sentAt = this.opts.clock.now();
      const id = await this.opts.store.grantLease(leaseTtlMs);
      await this.opts.store.put(KEYS.sharedLease(id), JSON.stringify({ node: this.opts.membership.self, ttlMs: leaseTtlMs }), { lease: id });
      const lease: OwnLease = { id, bucketSec, leaseTtlMs, confirmedAt: sentAt };
      this.own.set(id, lease);
      this.owners.set(id, this.opts.membership.self);
      return lease;
    })();
    this.buckets.set(bucketSec, granting);
    granting.catch(() => {
      if (this.buckets.get(bucketSec) === granting) this.buckets.delete(bucketSec);
    });
    return granting;
  }

  private scheduleRenewal(): void {
    if (this.closed) return;
    this.timer = this.opts.clock.setTimeout(() => {
      void this.renewAll().finally(() => this.scheduleRenewal());
    }, this.opts.renewEveryMs ?? 1000);
  }

  private async renewAll(): Promise<void> {
    await Promise.all(
      [...this.own.values()].map(async (lease) => {
        const sentAt = this.opts.clock.now();
        try {
          await this.opts.store.keepAlive(lease.id);
          lease.confirmedAt = sentAt;
        } catch (err) {
          if (this.closed) return;
          if (isBeaconError(err) && err.code === 'not_found') {
            // Lapsed (this server was cut off from etcd): its instances went with it. New
            // registrations get a fresh lease; the catalog's deletes clear the deadlines.
            this.opts.logger?.warn({ lease: lease.id, bucketSec: lease.bucketSec }, 'shared instance lease expired in etcd; its instances are gone');
            this.own.delete(lease.id);
            if (this.buckets.has(lease.bucketSec)) void this.buckets.get(lease.bucketSec)!.then((l) => l.id === lease.id && this.buckets.delete(lease.bucketSec), () => undefined);
          } else {
            this.opts.logger?.warn({ err, lease: lease.id }, 'could not renew a shared instance lease');
          }
        }
      }),
    );
  }

  // ---- ownership of leases ------------------------------------------------------------------

  private async ownerOf(lease: LeaseId): Promise<string | undefined> {
    const known = this.owners.get(lease);
    if (known !== undefined) return known;
    // Granted a moment ago and not yet seen on this server's feed: etcd has it.
    const kv = await this.opts.store.get(KEYS.sharedLease(lease));
    return kv ? parseOwner(kv) : undefined;
  }

  private isOtherLiveServer(node: string): boolean {
    return node !== this.opts.membership.self && this.opts.membership.members().some((m) => m.node === node);
  }

  private resetOwners(kvs: KeyValue[]): void {
    this.owners.clear();
    for (const kv of kvs) this.noteOwner(kv);
    for (const id of this.own.keys()) this.owners.set(id, this.opts.membership.self);
  }

  private applyOwners(batch: WatchBatch): void {
    for (const ev of batch.events) {
      if (ev.type === 'put') this.noteOwner(ev.kv);
      else this.owners.delete(Number(ev.kv.key.slice(KEYS.sharedLeases.length)));
    }
  }

  private noteOwner(kv: KeyValue): void {
    const node = parseOwner(kv);
    if (node !== undefined) this.owners.set(Number(kv.key.slice(KEYS.sharedLeases.length)), node);
  }

  // ---- relayed heartbeats -------------------------------------------------------------------

  /** Tells `owner` that instance `id` sent a heartbeat here; resolves once the relay is in etcd. */
  private relay(owner: string, id: string): Promise<void> {
    const box = this.outboxes.get(owner) ?? { ids: new Set<string>(), waiters: [], flushing: false };
    this.outboxes.set(owner, box);
    box.ids.add(id);
    const sent = new Promise<void>((resolve, reject) => box.waiters.push({ resolve, reject }));
    if (!box.flushing) {
      box.flushing = true;
      // After this turn's I/O: every heartbeat that arrived in it goes in the first write.
      setImmediate(() => void this.flush(owner, box));
    }
    return sent;
  }

  /** Group commit: one put carries every heartbeat that arrived while the previous one was in flight. */
  private async flush(owner: string, box: Outbox): Promise<void> {
    try {
      while (box.ids.size > 0) {
        const ids = [...box.ids].slice(0, RELAY_BATCH);
        for (const id of ids) box.ids.delete(id);
        // Waiters whose ids all fit in this write: everyone so far, unless the batch was cut.
        const waiters = box.ids.size === 0 ? box.waiters.splice(0) : [];
        try {
          await this.putRelay(owner, ids);
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
          for (const w of box.waiters.splice(0)) w.reject(err);
          box.ids.clear();
        }
      }
    } finally {
      box.flushing = false;
    }
  }

  private async putRelay(owner: string, ids: string[]): Promise<void> {
    const key = KEYS.heartbeatRelay(owner, this.opts.membership.self);
    const value = JSON.stringify(ids);
    const lease = this.opts.membership.leaseId;
    try {
      await this.opts.store.put(key, value, lease ? { lease } : undefined);
    } catch (err) {
      // The membership lease lapsed a moment ago (it is being renewed): the heartbeats still count.
      if (!lease || !isBeaconError(err) || err.code !== 'not_found') throw err;
      await this.opts.store.put(key, value);
    }
  }

  private applyRelayed(batch: WatchBatch): void {
    for (const ev of batch.events) {
      if (ev.type !== 'put') continue;
      let ids: unknown;
      try {
        ids = JSON.parse(ev.kv.value);
      } catch {
        continue;
      }
      if (!Array.isArray(ids)) continue;
      for (const id of ids) if (typeof id === 'string') this.relayedHeartbeat(id);
    }
  }

  private relayedHeartbeat(id: string): void {
    if (this.expiring.has(id)) return;
    const inst = this.opts.catalog.instance(id);
    if (!inst || inst.ttlMs === undefined) return;
    const lease = this.opts.catalog.leaseOf(id);
    if (this.own.has(lease)) {
      this.renewOwn(id, inst.ttlMs);
      return;
    }
    // Sent to this node's name for a lease it does not hold: an earlier run of this server.
    if (this.owners.get(lease) === this.opts.membership.self) {
      this.adopt(id, lease, inst.ttlMs).catch((err: unknown) => this.backgroundError(err, id, 'taking over an instance'));
    }
  }

  // ---- take-over and expiry -----------------------------------------------------------------

  /** Moves instance `id` from `lease` (no live server's) onto this server's lease, and starts its clock. */
  private adopt(id: string, lease: LeaseId, ttlMs: number): Promise<void> {
    const running = this.adopting.get(id);
    if (running) return running;
    const p = this.moveOnto(id, lease, ttlMs).finally(() => this.adopting.delete(id));
    this.adopting.set(id, p);
    return p;
  }

  private async moveOnto(id: string, from: LeaseId, ttlMs: number): Promise<void> {
    const key = KEYS.instance(id);
    const sideKey = KEYS.eurekaInstance(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const [kv, side] = await Promise.all([this.opts.store.get(key), this.opts.store.get(sideKey)]);
      if (!kv) throw errors.notFound(`instance ${id} is not registered; register it again`);
      // Someone moved it meanwhile (another server took it over, or it re-registered): it has an owner.
      if (kv.lease !== from) return;
      const mine = await this.ownLease(ttlMs);
      // Eureka's fields for the instance live by the instance's lease: they move with it.
      const res = await this.opts.store.txn({
        compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }, side ? { key: sideKey, target: 'modRevision', op: 'equal', value: side.modRevision } : { key: sideKey, target: 'exists', value: false }],
        success: [{ type: 'put', key, value: kv.value, lease: mine.id }, ...(side ? [{ type: 'put' as const, key: sideKey, value: side.value, lease: mine.id }] : [])],
      });
      if (res.succeeded) {
        this.deadlines.track(id, ttlMs);
        return;
      }
    }
    throw errors.conflict(`instance ${id} is being changed concurrently; try again`);
  }

  private expired(ids: string[]): void {
    for (const id of ids) {
      this.expiring.add(id);
      this.expiryQueue.push(id);
    }
    this.drainExpiries();
  }

  private drainExpiries(): void {
    while (this.expiriesRunning < EXPIRY_CONCURRENCY && this.expiryQueue.length > 0) {
      const id = this.expiryQueue.shift()!;
      this.expiriesRunning++;
      this.deleteExpired(id)
        .then(
          () => this.expiring.delete(id),
          (err: unknown) => {
            this.backgroundError(err, id, 'lease expiry');
            // Not deleted (etcd unreachable?): try again in a second. A heartbeat meanwhile is too late.
            if (!this.closed) this.opts.clock.setTimeout(() => this.retryExpiry(id), 1000);
          },
        )
        .finally(() => {
          this.expiriesRunning--;
          this.drainExpiries();
        });
    }
  }

  private retryExpiry(id: string): void {
    if (this.closed || !this.expiring.has(id)) return;
    this.expiryQueue.push(id);
    this.drainExpiries();
  }

  /** Deletes an instance whose deadline passed, if its record still lives by one of this server's leases. */
  private async deleteExpired(id: string): Promise<void> {
    const key = KEYS.instance(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const kv = await this.opts.store.get(key);
      if (!kv || !this.own.has(kv.lease)) return;
      // No tombstone: the catalog reports a leased record that disappears as an expired lease.
      const res = await this.opts.store.txn({
        compare: [{ key, target: 'modRevision', op: 'equal', value: kv.modRevision }],
        success: [{ type: 'delete', key }, { type: 'delete', key: KEYS.eurekaInstance(id) }],
      });
      if (res.succeeded) return;
    }
  }

  /** Keeps deadlines in line with the catalog: owned records that appear get a clock, others lose theirs. */
  private reconcile(change: CatalogChange): void {
    if (this.closed) return;
    if (change.reset) {
      for (const s of this.opts.catalog.services()) for (const i of this.opts.catalog.service(s.name).instances) this.reconcileOne(i.id);
    }
    for (const id of change.instanceIds) this.reconcileOne(id);
  }

  private reconcileOne(id: string): void {
    const inst = this.opts.catalog.instance(id);
    const ours = inst !== undefined && inst.ttlMs !== undefined && this.own.has(this.opts.catalog.leaseOf(id));
    if (!ours) {
      this.deadlines.forget(id);
      return;
    }
    if (!this.deadlines.has(id) && !this.expiring.has(id)) this.deadlines.track(id, inst.ttlMs!);
  }

  private backgroundError(err: unknown, id: string, what: string): void {
    if (this.closed || (isBeaconError(err) && err.code === 'not_found')) return;
    this.opts.logger?.error({ err, id }, `${what} failed`);
  }
}

function parseOwner(kv: KeyValue): string | undefined {
  try {
    const v = JSON.parse(kv.value) as { node?: unknown };
    return typeof v.node === 'string' ? v.node : undefined;
  } catch {
    return undefined;
  }
}
