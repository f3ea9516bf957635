import { watch, type FSWatcher } from 'node:fs';
import type { Clock, Timer } from '@beacon/core';

export interface DirWatch {
  close(): void;
}

/**
 * Calls `onChange` once things settle after files in `dir` change: editors save in several
 * steps (write a temp file, rename, touch), and one reload per save is enough. Every event
 * restarts the `debounceMs` wait.
 */
export function watchDir(dir: string, opts: { clock: Clock; debounceMs: number; onChange: () => void; onError: (err: Error) => void }): DirWatch {
  let timer: Timer | undefined;
  let watcher: FSWatcher | undefined;
  const fire = () => {
    timer?.cancel();
    timer = opts.clock.setTimeout(() => {
      timer = undefined;
      opts.onChange();
    }, opts.debounceMs);
  };
  try {
    watcher = watch(dir, { persistent: false }, fire);
    watcher.on('error', (err) => opts.onError(err));
  } catch (err) {
    opts.onError(err as Error);
  }
  return {
    close() {
      timer?.cancel();
      watcher?.close();
    },
  };
}
