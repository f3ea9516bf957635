import type { Etcd3 } from 'etcd3';
import type { Clock, Random, Timer } from '@beacon/core';

/** What the pool needs of a watch. */
export interface PooledWatch {
  /** Moves the watch onto the pool's current client, resuming after its last delivered revision. */
  reattach(): void;
  /** Called every tick: the watch decides whether it has gone too long without a confirmation. */
  checkLag(now: number): void;
  /** A probe started at `startedAt` read the cluster's revision and, if it answered, the watch member's. */
  confirm(startedAt: number, cluster: number, member: number | undefined): void;
}

export interface WatchPoolDeps {
  /** `http://host:port` of every member. */
  hosts: string[];
  /** A client of exactly one member. */
  connect(host: string): Etcd3;
  clock: Clock;
  random: Random;
  /** A watch not confirmed current for this long marks its reader behind. */
  maxLagMs: number;
  /** The cluster's current revision, one linearizable attempt within `deadlineMs`. */
  clusterRevision(deadlineMs: number): Promise<number>;
  /** A key to count (the namespace's first key): a cheap read whose header carries the revision. */
  probeKey: Buffer;
}

/**
 * The etcd member the store's watches stream from, and the probe that tells whether they are
 * current.
 *
 * All watches of a store share one client pinned to one member (picked at random, so servers
 * spread over the cluster). A watch stream gives no sign when its member stalls (a paused or
 * overloaded process keeps the connection open): events just stop. So every quarter of
 * `maxLagMs` the pool reads, at once, the cluster's revision (linearizable: only a member with
 * a leader can answer, and never with an old value) and the pinned member's own revision (a
 * serializable read answered locally). A watch is confirmed current as of the probe's start when
 * it has delivered the cluster's revision, or when its stream has been up for a while (any replay
 * of history done) and its member has applied that revision (events under our prefix, if any,
 * are then on their way; writes elsewhere in a shared etcd move the revision without any). A watch unconfirmed for about `maxLagMs` says it
 * is behind. A member that has not answered for twice that, or only with a revision behind the
 * cluster's, is given up: every watch moves to the next member and resumes where it was.
 */
export class WatchPool {
  private member: number;
  private client: Etcd3 | undefined;
  private readonly watches = new Set<PooledWatch>();
  private timer: Timer | undefined;
  /** Last probe start at which the member answered, and was not behind the cluster. */
  private memberCurrentAt: number;
  /** When the current client was made. */
  private since = 0;
  private pendingMove: Timer | undefined;
  private closed = false;

  constructor(private readonly deps: WatchPoolDeps) {
    this.member = Math.min(deps.hosts.length - 1, Math.floor(deps.random.next() * deps.hosts.length));
    this.memberCurrentAt = deps.clock.now();
  }

  /** `host:port` of the member the watches stream from. */
  get endpoint(): string {
    return this.deps.hosts[this.member]!.replace(/^https?:\/\//, '');
  }

  get tickMs(): number {
    return this.deps.maxLagMs / 4;
  }

  current(): Etcd3 {
    if (!this.client) {
      this.client = this.deps.connect(this.deps.hosts[this.member]!);
      this.since = this.deps.clock.now();
    }
    return this.client;
  }

  add(w: PooledWatch): void {
    this.watches.add(w);
    if (!this.timer && !this.closed) {
      this.memberCurrentAt = this.deps.clock.now();
      this.schedule();
    }
  }

  remove(w: PooledWatch): void {
    this.watches.delete(w);
    if (this.watches.size === 0) {
      this.timer?.cancel();
      this.timer = undefined;
    }
  }

  /** A watch lost its stream on `client`: move every watch to the next member (once per client). */
  lost(client: Etcd3): void {
    if (this.closed || client !== this.client || this.pendingMove) return;
    // With every member down, streams fail within milliseconds: pace the moves, not a busy loop.
    const wait = this.since + 2 * this.tickMs - this.deps.clock.now();
    if (wait > 0) {
      this.pendingMove = this.deps.clock.setTimeout(() => {
        this.pendingMove = undefined;
        this.lost(client);
      }, wait);
      return;
    }
    const old = this.client;
    this.member = (this.member + 1) % this.deps.hosts.length;
    this.client = this.deps.connect(this.deps.hosts[this.member]!);
    this.since = this.memberCurrentAt = this.deps.clock.now();
    // Each watch cancels its old watcher first: the client's close() leaves watchers retrying.
    for (const w of this.watches) w.reattach();
    old.close();
  }

  close(): void {
    this.closed = true;
    this.pendingMove?.cancel();
    this.timer?.cancel();
    this.timer = undefined;
    this.client?.close();
    this.client = undefined;
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => void this.tick(), this.tickMs);
  }

  private async tick(): Promise<void> {
    if (this.closed || this.watches.size === 0) return;
    this.schedule();
    const startedAt = this.deps.clock.now();
    for (const w of this.watches) w.checkLag(startedAt);
    if (this.client && startedAt - this.memberCurrentAt > 2 * this.deps.maxLagMs) this.lost(this.client);
    const client = this.current();
    const budget = this.deps.maxLagMs / 2;
    const [cluster, member] = await Promise.allSettled([
      this.deps.clusterRevision(budget),
      client.kv
        .range({ key: this.deps.probeKey, count_only: true, serializable: true }, { deadline: startedAt + budget })
        .then((res) => Number(res.header.revision)),
    ]);
    if (this.closed || client !== this.client) return;
    // A member that answers but stays behind the cluster (cut off from its leader) is no better
    // than one that does not answer; one that answers while no leader can be reached is not to blame.
    if (member.status === 'fulfilled' && (cluster.status === 'rejected' || member.value >= cluster.value)) {
      this.memberCurrentAt = Math.max(this.memberCurrentAt, startedAt);
    }
    if (cluster.status !== 'fulfilled') return;
    for (const w of this.watches) w.confirm(startedAt, cluster.value, member.status === 'fulfilled' ? member.value : undefined);
  }
}
