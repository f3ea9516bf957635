import { errors } from '@beacon/core';
import type { WatchBatch, WatchOptions } from './types.js';

type ReadResult =
  | { kind: 'batch'; batch: WatchBatch }
  | { kind: 'idle'; next: number }
  | { kind: 'compacted'; firstRetained: number }
  | { kind: 'closed' };

/**
 * The change feed of the embedded store: an in-memory window of the most recent revisions, and
 * watchers that read it through their own cursor.
 *
 * Watchers keep no buffer of their own: a commit appends to the window and wakes the watchers
 * parked on it, and each reads forward from its cursor. Memory is bounded by the window alone;
 * a watcher that falls further behind than the window fails with `compacted` and must list again,
 * as an etcd watcher would.
 */
export class WatchHub {
  /** Batches in revision order; entries before `head` are dropped. */
  private batches: WatchBatch[] = [];
  private head = 0;
  private events = 0;
  /** Every revision >= firstRetained (up to lastRevision) is in the window. */
  private firstRetained: number;
  private lastRevision: number;
  private parked = new Set<() => void>();
  private closed = false;

  constructor(
    currentRevision: number,
    private readonly maxEvents: number,
  ) {
    this.lastRevision = currentRevision;
    this.firstRetained = currentRevision + 1;
  }

  /** Oldest revision a watch may start from. */
  get oldestRetained(): number {
    return this.firstRetained;
  }

  get retainedEvents(): number {
    return this.events;
  }

  /** Appends a committed revision and wakes every parked watcher. */
  publish(batch: WatchBatch): void {
    if (this.closed) return;
    if (batch.revision <= this.lastRevision) throw new Error(`revision ${batch.revision} published after ${this.lastRevision}`);
    this.batches.push(batch);
    this.lastRevision = batch.revision;
    this.events += batch.events.length;
    // The newest revision always stays, however large, so a live watcher can still read it.
    while (this.events > this.maxEvents && this.batches.length - this.head > 1) this.dropOldest();
    this.compactArray();
    this.wakeAll();
  }

  /** Forgets revisions below `revision`; watches from there on fail with `compacted`. */
  compact(revision: number): void {
    if (!Number.isSafeInteger(revision) || revision < 1) throw errors.invalid(`compact revision must be a positive integer, got ${revision}`);
    if (revision > this.lastRevision) throw errors.invalid(`cannot compact at revision ${revision}: the current revision is ${this.lastRevision}`);
    while (this.head < this.batches.length && this.batches[this.head]!.revision < revision) this.dropOldest();
    this.firstRetained = Math.max(this.firstRetained, revision);
    this.compactArray();
    // Parked watchers are caught up (their cursor is past the window), so they are unaffected.
  }

  watch(prefix: string, opts: WatchOptions): AsyncIterableIterator<WatchBatch> {
    return new HubWatcher(this, prefix, opts);
  }

  /** Ends every watcher cleanly; later watches fail with `unavailable`. */
  close(): void {
    this.closed = true;
    this.batches = [];
    this.head = 0;
    this.events = 0;
    this.wakeAll();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The first revision >= from with an event under prefix, or where to wait from. */
  read(prefix: string, from: number): ReadResult {
    if (this.closed) return { kind: 'closed' };
    if (from < this.firstRetained) return { kind: 'compacted', firstRetained: this.firstRetained };
    for (let i = this.indexOf(from); i < this.batches.length; i++) {
      const b = this.batches[i]!;
      const events = prefix === '' ? b.events : b.events.filter((e) => e.kv.key.startsWith(prefix));
      if (events.length > 0) return { kind: 'batch', batch: { revision: b.revision, events } };
    }
    return { kind: 'idle', next: this.lastRevision + 1 };
  }

  park(wake: () => void): void {
    this.parked.add(wake);
  }

  unpark(wake: () => void): void {
    this.parked.delete(wake);
  }

  private wakeAll(): void {
    if (this.parked.size === 0) return;
    const waiting = [...this.parked];
    this.parked.clear();
    for (const w of waiting) w();
  }

  private dropOldest(): void {
    const b = this.batches[this.head]!;
    this.batches[this.head] = undefined as unknown as WatchBatch;
    this.head++;
    this.events -= b.events.length;
    this.firstRetained = Math.max(this.firstRetained, b.revision + 1);
  }

  private compactArray(): void {
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first retained batch with revision >= rev (binary search). */
  private indexOf(rev: number): number {
    let lo = this.head;
    let hi = this.batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.batches[mid]!.revision < rev) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

class HubWatcher implements AsyncIterableIterator<WatchBatch> {
  private from: number;
  private finished = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  /** next() calls are served one after another so that two never hand out the same batch. */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly hub: WatchHub,
    private readonly prefix: string,
    opts: WatchOptions,
  ) {
    // Revisions start at 1: asking for anything below cannot have missed anything.
    this.from = Number.isFinite(opts.fromRevision) ? Math.max(1, Math.floor(opts.fromRevision)) : NaN;
    if (Number.isNaN(this.from)) this.failure = errors.invalid(`fromRevision must be a number, got ${String(opts.fromRevision)}`);
    else if (hub.isClosed) this.failure = errors.unavailable('the store is closed');
    this.signal = opts.signal;
    if (this.signal?.aborted) this.finished = true;
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchBatch> {
    return this;
  }

  next(): Promise<IteratorResult<WatchBatch>> {
    const p = this.chain.then(() => this.step());
    this.chain = p.catch(() => undefined);
    return p;
  }

  return(): Promise<IteratorResult<WatchBatch>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  private async step(): Promise<IteratorResult<WatchBatch>> {
    for (;;) {
      if (this.failure !== undefined) {
        const f = this.failure;
        this.failure = undefined;
        this.finish();
        throw f;
      }
      if (this.finished) return DONE;
      const r = this.hub.read(this.prefix, this.from);
      switch (r.kind) {
        case 'batch':
          this.from = r.batch.revision + 1;
          return { done: false, value: r.batch };
        case 'compacted':
          this.finish();
          throw errors.compacted(`revision ${this.from} has been compacted; the oldest revision that can be watched is ${r.firstRetained}`);
        case 'closed':
          this.finish();
          return DONE;
        case 'idle':
          this.from = Math.max(this.from, r.next);
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            this.hub.park(resolve);
          });
          this.wake = undefined;
          break;
        default: {
          const never: never = r;
          throw new Error(`unexpected read result ${String(never)}`);
        }
      }
    }
  }

  private readonly onAbort = (): void => this.finish();

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    const w = this.wake;
    if (w) {
      this.hub.unpark(w);
      w();
    }
  }
}
