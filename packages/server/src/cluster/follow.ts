import { isBeaconError, type Clock } from '@beacon/core';
import type { KeyValue, Store, WatchBatch } from '../store/types.js';

export interface PrefixHandler {
  /** The whole prefix, after the first listing and after every relist. */
  reset(kvs: KeyValue[], revision: number): void;
  batch(batch: WatchBatch): void;
}

export interface FollowOptions {
  clock: Clock;
  signal: AbortSignal;
  logger?: { warn(obj: unknown, msg?: string): void } | undefined;
  /** Pause before listing again after a failure. Default 500 ms. */
  retryMs?: number;
}

/**
 * Keeps a handler in line with a prefix of the store, informer style: list, watch from the
 * listing's revision, and on any failure of the watch (compacted or not) list again.
 * `ready` settles after the first listing (or its failure); `done` when the signal ends it.
 */
export function followPrefix(store: Store, prefix: string, handler: PrefixHandler, opts: FollowOptions): { ready: Promise<void>; done: Promise<void> } {
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));
  const pause = () => new Promise<void>((r) => opts.clock.setTimeout(r, opts.retryMs ?? 500));
  const done = (async () => {
    while (!opts.signal.aborted) {
      let from: number;
      try {
        const { kvs, revision } = await store.range(prefix);
        handler.reset(kvs, revision);
        from = revision + 1;
      } catch (err) {
        markReady();
        if (opts.signal.aborted) return;
        opts.logger?.warn({ err, prefix }, 'listing failed; trying again');
        await pause();
        continue;
      }
      markReady();
      try {
        for await (const b of store.watch(prefix, { fromRevision: from, signal: opts.signal })) handler.batch(b);
        // Ended without an error and without our signal: the store is closing.
        if (!opts.signal.aborted) await pause();
      } catch (err) {
        if (opts.signal.aborted) return;
        const compacted = isBeaconError(err) && err.code === 'compacted';
        opts.logger?.warn({ err, prefix }, compacted ? 'watch compacted; listing again' : 'watch failed; listing again');
        if (!compacted) await pause();
      }
    }
  })();
  return { ready, done };
}
