import type { CancelSignal } from '../util/cancel.js';
import { isBeaconError, type Clock, type Timer } from '@beacon/core';
import type { KeyValue, LeaseId, Store, WatchBatch } from '../store/types.js';

/** One key of the mirrored prefix, parsed. */
export interface MirrorEntry<T> {
  /** The key with the mirror's prefix removed. */
  name: string;
  value: T;
  createIndex: number;
  modifyIndex: number;
  lease: LeaseId;
}

/** What one applied batch changed, by name; `previous` holds the value a deleted key had. */
export interface MirrorChange<T> {
  index: number;
  put: MirrorEntry<T>[];
  deleted: { name: string; index: number; previous: MirrorEntry<T> | undefined }[];
  /** The mirror was rebuilt from a fresh listing: anything may have changed. */
  reset: boolean;
}

interface Waiter {
  names: readonly string[];
  prefix: boolean;
  minIndex: number;
  resolve: () => void;
}

export interface PrefixMirrorOptions<T> {
  store: Store;
  clock: Clock;
  prefix: string;
  parse: (kv: KeyValue) => T | undefined;
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
  /** Deleted names remembered for prefix indexes; beyond this the oldest are forgotten. Default 10,000. */
  tombstones?: number;
}

/**
 * An in-memory copy of one store prefix, kept current from the change feed (list, then watch
 * from the listing's revision; relist when the feed says it was compacted), as the catalog view
 * does for instances. Reads are served from memory; writers wait for their revision to be
 * applied so a caller always reads its own writes.
 *
 * Indexes follow Consul's rules: a key's index is its modify index; a prefix's index is the
 * highest modify index under it, deletions included, so it never goes backwards.
 */
export class PrefixMirror<T> {
  private readonly entries = new Map<string, MirrorEntry<T>>();
  private sortedNames: string[] | undefined;
  private readonly deletedAt = new Map<string, number>();
  /** Highest index of a deletion forgotten from `deletedAt`: a floor for every prefix index. */
  private forgottenIndex = 0;
  private applied = 0;
  private tableIndex = 1;
  private readonly waiters = new Set<Waiter>();
  private revisionWaiters: { revision: number; resolve: () => void }[] = [];
  private readonly listeners = new Set<(c: MirrorChange<T>) => void>();
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: PrefixMirrorOptions<T>) {}

  async start(): Promise<void> {
    const from = await this.relist(false);
    this.loop = this.follow(from);
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
    for (const w of this.waiters) w.resolve();
    this.waiters.clear();
    for (const w of this.revisionWaiters) w.resolve();
    this.revisionWaiters = [];
  }

  /** Highest index of any change under the prefix (Consul's "table index"); never 0. */
  get index(): number {
    return this.tableIndex;
  }

  get size(): number {
    return this.entries.size;
  }

  get(name: string): MirrorEntry<T> | undefined {
    return this.entries.get(name);
  }

  /** Entries whose name starts with `prefix`, sorted by name. */
  list(prefix = ''): MirrorEntry<T>[] {
    const names = this.names();
    const out: MirrorEntry<T>[] = [];
    let lo = 0;
    let hi = names.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (names[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < names.length && names[i]!.startsWith(prefix); i++) out.push(this.entries.get(names[i]!)!);
    return out;
  }

  all(): IterableIterator<MirrorEntry<T>> {
    return this.entries.values();
  }

  /** Index of one name: its modify index, else the table index (Consul answers a missing key so). */
  indexOf(name: string): number {
    return this.entries.get(name)?.modifyIndex ?? this.tableIndex;
  }

  /** Highest modify index under `prefix`, deletions included; the table index when nothing was ever there. */
  prefixIndex(prefix: string): number {
    let max = 0;
    for (const e of this.list(prefix)) if (e.modifyIndex > max) max = e.modifyIndex;
    for (const [name, at] of this.deletedAt) if (at > max && name.startsWith(prefix)) max = at;
    if (max === 0) return this.tableIndex;
    return Math.max(max, this.forgottenIndex);
  }

  onChange(listener: (c: MirrorChange<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the mirror has applied `revision` (read-your-writes after a write under the prefix). */
  waitForRevision(revision: number, timeoutMs = 10_000): Promise<void> {
    if (this.applied >= revision) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const entry = {
        revision,
        resolve: () => {
          timer?.cancel();
          resolve();
        },
      };
      // A write whose batch never arrives (the feed broke) must not hang the caller: give up quietly.
      timer = this.opts.clock.setTimeout(() => {
        this.revisionWaiters = this.revisionWaiters.filter((w) => w !== entry);
        resolve();
      }, timeoutMs);
      this.revisionWaiters.push(entry);
    });
  }

  /**
   * Resolves when a change touches `names` (exact, or as prefixes when `prefix`) at an index
   * above `minIndex`, after `timeoutMs`, or when `signal` aborts. Only such changes wake it.
   */
  waitForChange(names: readonly string[], prefix: boolean, minIndex: number, timeoutMs: number, signal?: CancelSignal): Promise<void> {
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        timer.cancel();
        signal?.removeEventListener('abort', finish);
        this.waiters.delete(waiter);
        resolve();
      };
      const waiter: Waiter = { names, prefix, minIndex, resolve: finish };
      this.waiters.add(waiter);
      const timer = this.opts.clock.setTimeout(finish, timeoutMs);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  /** Blocked readers (for metrics and benchmarks). */
  get waiting(): number {
    return this.waiters.size;
  }

  // ---- feed ----------------------------------------------------------------------------

  private names(): string[] {
    this.sortedNames ??= [...this.entries.keys()].sort();
    return this.sortedNames;
  }

  private async follow(from: number): Promise<void> {
    let next = from;
    while (!this.abort.signal.aborted) {
      try {
        for await (const batch of this.opts.store.watch(this.opts.prefix, { fromRevision: next, signal: this.abort.signal })) {
          this.apply(batch);
          next = batch.revision + 1;
        }
        // A watch ends without an error only when asked to or when the store closes (Store.watch):
        // either way this is teardown, and watching again would only fail on a closed store.
        return;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (!isBeaconError(err) || err.code !== 'compacted') {
          this.opts.logger?.error({ err, prefix: this.opts.prefix }, 'mirror watch failed; listing again');
          await new Promise<void>((r) => this.opts.clock.setTimeout(r, 500));
          if (this.abort.signal.aborted) return;
        } else {
          this.opts.logger?.warn({ prefix: this.opts.prefix, from: next }, 'mirror watch compacted; listing again');
        }
        try {
          next = await this.relist(true);
        } catch (e) {
          this.opts.logger?.error({ err: e, prefix: this.opts.prefix }, 'mirror relist failed');
        }
      }
    }
  }

  private async relist(reset: boolean): Promise<number> {
    const { kvs, revision } = await this.opts.store.range(this.opts.prefix);
    this.entries.clear();
    this.sortedNames = undefined;
    const put: MirrorEntry<T>[] = [];
    for (const kv of kvs) {
      const e = this.toEntry(kv);
      if (e) {
        this.entries.set(e.name, e);
        put.push(e);
      }
    }
    this.applied = Math.max(this.applied, revision);
    this.tableIndex = Math.max(this.tableIndex, revision, 1);
    // Deletions during the gap are unknown: every prefix index must move past them.
    if (reset) this.forgottenIndex = Math.max(this.forgottenIndex, revision);
    this.deletedAt.clear();
    this.resolveRevisionWaiters();
    if (reset) {
      for (const w of [...this.waiters]) w.resolve();
      this.publish({ index: revision, put, deleted: [], reset: true });
    }
    return revision + 1;
  }

  private toEntry(kv: KeyValue): MirrorEntry<T> | undefined {
    const value = this.opts.parse(kv);
    if (value === undefined) {
      this.opts.logger?.warn({ key: kv.key }, 'ignoring unreadable record');
      return undefined;
    }
    return { name: kv.key.slice(this.opts.prefix.length), value, createIndex: kv.createRevision, modifyIndex: kv.modRevision, lease: kv.lease };
  }

  private apply(batch: WatchBatch): void {
    const change: MirrorChange<T> = { index: batch.revision, put: [], deleted: [], reset: false };
    for (const ev of batch.events) {
      const name = ev.kv.key.slice(this.opts.prefix.length);
      if (ev.type === 'put') {
        const e = this.toEntry(ev.kv);
        if (!e) continue;
        if (!this.entries.has(name)) this.sortedNames = undefined;
        this.entries.set(name, e);
        this.deletedAt.delete(name);
        change.put.push(e);
      } else {
        const previous = this.entries.get(name);
        if (previous) {
          this.entries.delete(name);
          this.sortedNames = undefined;
        }
        this.rememberDeletion(name, batch.revision);
        change.deleted.push({ name, index: batch.revision, previous });
      }
    }
    this.applied = batch.revision;
    this.tableIndex = Math.max(this.tableIndex, batch.revision);
    this.resolveRevisionWaiters();
    if (this.waiters.size > 0) {
      const touched = [...change.put.map((e) => e.name), ...change.deleted.map((d) => d.name)];
      for (const w of [...this.waiters]) {
        if (batch.revision <= w.minIndex) continue;
        if (touched.some((t) => w.names.some((n) => (w.prefix ? t.startsWith(n) : t === n)))) w.resolve();
      }
    }
    this.publish(change);
  }

  private rememberDeletion(name: string, index: number): void {
    this.deletedAt.delete(name);
    this.deletedAt.set(name, index);
    const cap = this.opts.tombstones ?? 10_000;
    while (this.deletedAt.size > cap) {
      const oldest = this.deletedAt.entries().next().value as [string, number];
      this.deletedAt.delete(oldest[0]);
      this.forgottenIndex = Math.max(this.forgottenIndex, oldest[1]);
    }
  }

  private resolveRevisionWaiters(): void {
    if (this.revisionWaiters.length === 0) return;
    const due = this.revisionWaiters.filter((w) => w.revision <= this.applied);
    this.revisionWaiters = this.revisionWaiters.filter((w) => w.revision > this.applied);
    for (const w of due) w.resolve();
  }

  private publish(change: MirrorChange<T>): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.opts.logger?.error({ err, prefix: this.opts.prefix }, 'mirror listener failed');
      }
    }
  }
}
