import { errors, isBeaconError, type Clock, type Timer } from '@beacon/core';
import { KEYS } from '../keys.js';
import type { KeyValue, LeaseId, Store, WatchBatch } from '../store/types.js';
import { followPrefix } from './follow.js';
import { rendezvousOwner } from './rendezvous.js';

/** What a server publishes about itself under `/beacon/members/<node>`. */
export interface MemberRecord {
  node: string;
  /** Where its HTTP API answers (as it listens; see docs/clustering.md for advertising). */
  httpUrl: string;
  version: string;
  startedAt: number;
}

export interface Member extends MemberRecord {
  /** Store revision at which it joined (its key's createRevision): the oldest member leads. */
  joinedIndex: number;
  /** The lease its key lives by: how recently it renewed is how recently it was seen. */
  lease: LeaseId;
}

/**
 * The cluster as one server sees it, for anything that must know its peers: ownership of shared
 * work, Consul's `/v1/status/leader` and `/v1/status/peers`, the native `/api/v1/cluster`.
 */
export interface ClusterInfo {
  /** This server's node name. */
  readonly self: string;
  /** This server holds a live membership: its key is in the store and its lease renewed within the TTL. */
  readonly alive: boolean;
  /** Live members, sorted by node name. */
  members(): Member[];
  /**
   * The longest-standing member (lowest join index). Beacon servers need no leader to serve or
   * write (etcd orders writes); this is the stable answer for APIs that expect one.
   */
  leader(): Member | undefined;
  /** The member that owns `key` by rendezvous hashing over the live members. */
  owner(key: string): string | undefined;
  /** Whether this server owns `key`; false for everything while it is not a live member. */
  owns(key: string): boolean;
  /** Called when the member set or this server's liveness changes. Returns an unsubscribe. */
  onChange(listener: () => void): () => void;
}

export interface MembershipOptions {
  store: Store;
  clock: Clock;
  node: string;
  version: string;
  /** TTL of the membership lease: how long a dead server keeps its share of the work. Default 3000 ms. */
  ttlMs?: number;
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void } | undefined;
}

/**
 * Server membership through leased keys: each server puts `/beacon/members/<node>` with a lease
 * it renews every third of the TTL, and follows the prefix to know the others. A server that
 * dies stops renewing and its key goes with its lease; one that stops cleanly revokes it, so its
 * work moves at once.
 *
 * A server also stops counting itself as a member when it has not managed a renewal for a whole
 * TTL (etcd unreachable): by then its lease is likely gone and the others have taken its work.
 */
export class Membership implements ClusterInfo {
  readonly self: string;
  private readonly ttlMs: number;
  private lease: LeaseId = 0;
  /** When the request of the last successful renewal was sent (its lease runs from no earlier). */
  private renewedAt = Number.NEGATIVE_INFINITY;
  private record: MemberRecord | undefined;
  private readonly byNode = new Map<string, Member>();
  private names: string[] = [];
  private readonly listeners = new Set<() => void>();
  private signature = '';
  private timer: Timer | undefined;
  private readonly abort = new AbortController();
  private following: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: MembershipOptions) {
    if (!opts.node || opts.node.includes('/')) throw errors.invalid(`a cluster node name must be non-empty and contain no '/', got ${JSON.stringify(opts.node)}`);
    this.self = opts.node;
    this.ttlMs = Math.max(2000, opts.ttlMs ?? 3000);
  }

  /** Joins (or keeps trying to, if the store is unreachable) and starts following the members. */
  async start(httpUrl: string): Promise<void> {
    this.record = { node: this.self, httpUrl, version: this.opts.version, startedAt: this.opts.clock.now() };
    const { ready, done } = followPrefix(
      this.opts.store,
      KEYS.members,
      { reset: (kvs) => this.reset(kvs), batch: (b) => this.apply(b) },
      { clock: this.opts.clock, signal: this.abort.signal, logger: this.opts.logger },
    );
    this.following = done;
    try {
      await this.join();
    } catch (err) {
      this.opts.logger?.warn({ err }, 'could not join the cluster yet; retrying');
    }
    await ready;
    this.scheduleRenewal();
    this.evaluate();
  }

  get alive(): boolean {
    return !this.closed && this.byNode.has(this.self) && this.opts.clock.now() - this.renewedAt < this.ttlMs;
  }

  /** The membership lease (0 before joining): keys that must go when this server does attach to it. */
  get leaseId(): LeaseId {
    return this.lease;
  }

  members(): Member[] {
    return this.names.map((n) => this.byNode.get(n)!);
  }

  leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.byNode.values()) {
      if (!best || m.joinedIndex < best.joinedIndex || (m.joinedIndex === best.joinedIndex && m.node < best.node)) best = m;
    }
    return best;
  }

  owner(key: string): string | undefined {
    return rendezvousOwner(key, this.names);
  }

  owns(key: string): boolean {
    return this.alive && this.owner(key) === this.self;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Leaves: revokes the lease so the others take over at once, then stops following. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    if (this.lease) {
      try {
        await this.opts.store.revokeLease(this.lease);
      } catch (err) {
        if (!isBeaconError(err) || err.code !== 'not_found') this.opts.logger?.warn({ err }, 'could not leave the cluster cleanly; peers will notice at the lease expiry');
      }
    }
    this.abort.abort();
    await this.following;
    this.listeners.clear();
  }

  private async join(): Promise<void> {
    const sentAt = this.opts.clock.now();
    const lease = await this.opts.store.grantLease(this.ttlMs);
    try {
      await this.opts.store.put(KEYS.member(this.self), JSON.stringify(this.record), { lease });
    } catch (err) {
      await this.opts.store.revokeLease(lease).catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await this.opts.store.revokeLease(lease).catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.renewedAt = sentAt;
    this.opts.logger?.info({ node: this.self, lease }, 'joined the cluster');
  }

  private scheduleRenewal(): void {
    if (this.closed) return;
    this.timer = this.opts.clock.setTimeout(() => {
      void this.renew().finally(() => this.scheduleRenewal());
    }, Math.floor(this.ttlMs / 3));
  }

  private async renew(): Promise<void> {
    const sentAt = this.opts.clock.now();
    try {
      if (!this.lease) await this.join();
      else {
        await this.opts.store.keepAlive(this.lease);
        this.renewedAt = sentAt;
      }
    } catch (err) {
      if (this.closed) return;
      if (isBeaconError(err) && err.code === 'not_found') {
        // Expired: this server was cut off for longer than the TTL. Its work has moved; join again.
        this.opts.logger?.warn({ node: this.self }, 'membership lease expired; joining the cluster again');
        this.lease = 0;
        await this.join().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'could not join the cluster again yet'));
      } else {
        this.opts.logger?.warn({ err }, 'could not renew the cluster membership');
      }
    }
    this.evaluate();
  }

  private reset(kvs: KeyValue[]): void {
    this.byNode.clear();
    for (const kv of kvs) this.put(kv);
    this.evaluate();
  }

  private apply(batch: WatchBatch): void {
    for (const ev of batch.events) {
      if (ev.type === 'put') this.put(ev.kv);
      else this.byNode.delete(ev.kv.key.slice(KEYS.members.length));
    }
    this.evaluate();
  }

  private put(kv: KeyValue): void {
    const node = kv.key.slice(KEYS.members.length);
    try {
      const rec = JSON.parse(kv.value) as MemberRecord;
      this.byNode.set(node, { node, httpUrl: String(rec.httpUrl ?? ''), version: String(rec.version ?? ''), startedAt: Number(rec.startedAt ?? 0), joinedIndex: kv.createRevision, lease: kv.lease });
    } catch {
      this.opts.logger?.warn({ key: kv.key }, 'ignoring an unreadable member record');
    }
  }

  /** Tells listeners when what ownership depends on has changed. */
  private evaluate(): void {
    this.names = [...this.byNode.keys()].sort();
    const signature = `${this.alive}|${this.names.join(',')}`;
    if (signature === this.signature) return;
    this.signature = signature;
    this.opts.logger?.info({ node: this.self, alive: this.alive, members: this.names }, 'cluster membership changed');
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch (err) {
        this.opts.logger?.warn({ err }, 'cluster membership listener failed');
      }
    }
  }
}
