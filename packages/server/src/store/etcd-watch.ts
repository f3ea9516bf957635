import type { IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { errors, isBeaconError, type Clock, type Timer } from '@beacon/core';
import { toBeaconError } from './etcd-errors.js';
import type { KeyValue, WatchBatch, WatchEvent, WatchOptions } from './types.js';
import type { PooledWatch, WatchPool } from './etcd-watch-pool.js';

export interface EtcdWatchDeps {
  /** The member the watch streams from, and whoever reports its lag. */
  pool: Pick<WatchPool, 'current' | 'lost' | 'add' | 'remove' | 'tickMs'>;
  clock: Clock;
  /** Byte range of the watched prefix, already namespaced. */
  start: Buffer;
  end: Buffer;
  /** Turns a raw key-value into the store's, without the namespace; undefined for keys outside it. */
  decode(kv: IKeyValue): KeyValue | undefined;
  /** Whether `revision` is below etcd's compaction point (a probe read at that revision). */
  isCompacted(revision: number): Promise<boolean>;
  /** How long the watch may stay disconnected before it fails (and its reader lists again). */
  graceMs: number;
  /** Batches buffered for a slow reader before the watch fails rather than grow without bound. */
  maxQueued: number;
  /** How long the watch may go without being confirmed current before it tells `onBehind`. */
  maxLagMs: number;
  register(w: EtcdWatch): void;
  unregister(w: EtcdWatch): void;
}

/**
 * One prefix watch through the etcd3 client's watcher, as an async iterator of one batch per
 * revision, in order.
 *
 * - etcd may pack several revisions into one response; they are split here. It never splits a
 *   revision across responses (no fragmentation is requested), so a txn stays one batch.
 * - The watcher reconnects by itself (to any member) and resumes from a revision. The client
 *   computes that revision from response headers, which can run ahead of the events actually
 *   delivered while a watcher is catching up; the resume point is therefore set here from the
 *   last delivered event, and anything older is dropped, so a reconnect neither skips nor repeats.
 * - A disconnection that lasts longer than `graceMs` ends the watch with `unavailable`, so the
 *   catalog marks itself stale and lists again instead of waiting silently.
 * - Any watcher error ends the watch: with `compacted` when etcd has compacted the revision it
 *   would resume from (the cancel reason alone does not say so, so it is probed), otherwise with
 *   `unavailable`.
 * - A stream whose member stalls says nothing; the pool's probe confirms the watch current
 *   (see {@link WatchPool}), and a watch unconfirmed for about `maxLagMs` tells `onBehind` until
 *   it is confirmed again. On a lost stream, or a member that stopped answering, the pool moves
 *   the watch to another member, where it resumes from the same revision.
 */
export class EtcdWatch implements AsyncIterableIterator<WatchBatch>, PooledWatch {
  private queue: WatchBatch[] = [];
  private waiter: { resolve(r: IteratorResult<WatchBatch>): void; reject(err: unknown): void } | undefined;
  private failure: unknown;
  private ended = false;
  private started = false;
  private watcher: Watcher | undefined;
  private graceTimer: Timer | undefined;
  private cancelling: Promise<void> = Promise.resolve();
  private resumeFrom: number;
  /** When the current watcher was created on its member; Infinity while it is not. */
  private connectedAt = Infinity;
  private confirmedAt: number;
  private behind = false;
  private readonly signal: AbortSignal | undefined;
  private readonly onBehind: WatchOptions['onBehind'];
  private readonly onAbort = () => this.finish();

  constructor(
    private readonly deps: EtcdWatchDeps,
    opts: WatchOptions,
  ) {
    this.resumeFrom = Math.max(1, Math.floor(opts.fromRevision));
    this.signal = opts.signal;
    this.onBehind = opts.onBehind;
    this.confirmedAt = deps.clock.now();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<WatchBatch>> {
    if (!this.started) this.start();
    const batch = this.queue.shift();
    if (batch) return Promise.resolve({ value: batch, done: false });
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      this.ended = true;
      return Promise.reject(err);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<WatchBatch>> {
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the watch cleanly (abort, store close). Resolves once etcd has dropped the watcher. */
  async stop(): Promise<void> {
    this.finish();
    await this.cancelling;
  }

  private start(): void {
    this.started = true;
    if (this.signal?.aborted) {
      this.ended = true;
      return;
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.deps.register(this);
    this.deps.pool.add(this);
    this.attach();
  }

  reattach(): void {
    if (this.ended || !this.started) return;
    this.dropWatcher();
    this.attach();
  }

  checkLag(now: number): void {
    // Behind once no probe started within the last `maxLagMs` can confirm it: one tick early,
    // because the next check comes a tick later.
    const behind = now - this.confirmedAt > this.deps.maxLagMs - this.deps.pool.tickMs;
    if (behind === this.behind) return;
    this.behind = behind;
    this.onBehind?.(behind);
  }

  confirm(startedAt: number, cluster: number, member: number | undefined): void {
    // A watcher created below its member's revision replays history first, in etcd's background
    // sync (every 100 ms): the member's revision says nothing about it until that has had time.
    const settled = startedAt - this.connectedAt >= this.deps.maxLagMs / 2;
    if (this.resumeFrom - 1 >= cluster || (settled && member !== undefined && member >= cluster)) {
      this.confirmedAt = Math.max(this.confirmedAt, startedAt);
      this.checkLag(this.deps.clock.now());
    }
  }

  private attach(): void {
    const client = this.deps.pool.current();
    // No previous values (etcd's prev_kv): no reader uses them, and with them etcd reads the old
    // value of every overwrite and delete for each watcher, and every server decodes it.
    const w = client
      .watch()
      .inRange({ start: this.deps.start, end: this.deps.end })
      .startRevision(String(this.resumeFrom))
      .watcher();
    this.watcher = w;
    this.connectedAt = Infinity;
    w.on('data', (res: IWatchResponse) => this.onData(res));
    w.on('connected', () => {
      this.connectedAt = this.deps.clock.now();
      this.graceTimer?.cancel();
      this.graceTimer = undefined;
    });
    w.on('disconnected', () => {
      this.connectedAt = Infinity;
      // Resume exactly after the last delivered revision (see the class comment).
      w.request.start_revision = String(this.resumeFrom);
      this.graceTimer ??= this.deps.clock.setTimeout(() => {
        this.fail(errors.unavailable(`the etcd watch has been disconnected for more than ${this.deps.graceMs} ms`));
      }, this.deps.graceMs);
      // The client talks to one member: go to the next rather than wait for this one (outside
      // the client's own disconnect handling, which is still walking its watchers).
      queueMicrotask(() => this.deps.pool.lost(client));
    });
    w.on('error', (err: Error) => {
      // etcd has cancelled it and the client has dropped it: there is nothing left to cancel.
      if (this.watcher === w) this.watcher = undefined;
      w.on('error', () => undefined);
      const from = this.resumeFrom;
      this.deps.isCompacted(from).then(
        (compacted) =>
          this.fail(
            compacted
              ? errors.compacted(`revision ${from} has been compacted in etcd; list again`)
              : errors.unavailable(`the etcd watch failed: ${err.message}`),
          ),
        (probeErr: unknown) => this.fail(isBeaconError(probeErr) && probeErr.code === 'compacted' ? probeErr : toBeaconError(err, 'watch')),
      );
    });
  }

  private onData(res: IWatchResponse): void {
    if (this.ended) return;
    if (res.events.length === 0) {
      // A progress notification: everything up to the header's revision has been sent.
      const rev = Number(res.header.revision);
      if (rev + 1 > this.resumeFrom) this.resumeFrom = rev + 1;
      return;
    }
    let current: { revision: number; events: WatchEvent[] } | undefined;
    const batches: WatchBatch[] = [];
    for (const ev of res.events) {
      const revision = Number(ev.kv.mod_revision);
      if (revision < this.resumeFrom) continue; // already delivered before a reconnect
      const kv = this.deps.decode(ev.kv);
      if (!kv) continue;
      const event: WatchEvent = { type: ev.type === 'Put' ? 'put' : 'delete', kv };
      if (!current || current.revision !== revision) {
        if (current) batches.push(current);
        current = { revision, events: [] };
      }
      current.events.push(event);
    }
    if (current) batches.push(current);
    for (const b of batches) {
      this.resumeFrom = b.revision + 1;
      this.deliver(b);
    }
  }

  private deliver(batch: WatchBatch): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: batch, done: false });
      return;
    }
    this.queue.push(batch);
    if (this.queue.length > this.deps.maxQueued) {
      this.queue = [];
      this.fail(errors.unavailable(`the watch reader fell more than ${this.deps.maxQueued} revisions behind; list again`));
    }
  }

  private fail(err: unknown): void {
    if (this.ended || this.failure !== undefined) return;
    this.teardown();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.ended = true;
      w.reject(err);
      return;
    }
    this.failure = err;
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.failure = undefined;
    this.teardown();
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve({ value: undefined, done: true });
  }

  private teardown(): void {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.deps.unregister(this);
    this.deps.pool.remove(this);
    this.cancelling = this.cancelWatcher();
  }

  /** Cancels the watcher without waiting for etcd: its member may never answer. */
  private dropWatcher(): void {
    void this.cancelWatcher();
  }

  private cancelWatcher(): Promise<void> {
    const w = this.watcher;
    if (!w) return Promise.resolve();
    this.watcher = undefined;
    w.removeAllListeners();
    // Errors after cancellation (a stream torn down meanwhile) have nobody left to tell.
    w.on('error', () => undefined);
    // Cancelling waits for etcd's acknowledgement; on a dead connection it may never come.
    return Promise.race([w.cancel().catch(() => undefined), new Promise<void>((r) => this.deps.clock.setTimeout(r, 2000))]);
  }
}
