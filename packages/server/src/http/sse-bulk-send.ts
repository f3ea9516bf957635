import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** Sends one buffer on many sockets at once: `out[i]` = bytes sent on `fds[i]` (maybe fewer than all), or -errno. */
export interface BulkSender {
  sendAll(fds: Int32Array, data: Buffer, out: Int32Array): void;
}

/** The fan-out addon (packages/server/native/fanout.c), built by `npm run build` when a C compiler is there. */
interface FanoutAddon {
  sendAll(fds: Int32Array, data: Buffer, out: Int32Array, threads: number): void;
}

/**
 * Below this many streams one thread sends: starting threads costs more than it saves. At
 * 10,000 streams on 2 cores two threads halved the time to the last byte (floor runs in
 * docs/benchmarks.md).
 */
const THREADED_FROM = 1024;
const MAX_THREADS = 4;

let loaded: FanoutAddon | null | undefined;

/** The addon-backed sender, or undefined when the addon was not built or does not load. */
export function nativeBulkSender(): BulkSender | undefined {
  if (loaded === undefined) {
    const file = fileURLToPath(new URL('../../native/build/fanout.node', import.meta.url));
    try {
      loaded = existsSync(file) ? (createRequire(import.meta.url)(file) as FanoutAddon) : null;
    } catch {
      loaded = null;
    }
  }
  const addon = loaded;
  if (!addon) return undefined;
  const threads = Math.min(MAX_THREADS, availableParallelism());
  return { sendAll: (fds, data, out) => addon.sendAll(fds, data, out, fds.length >= THREADED_FROM ? threads : 1) };
}
