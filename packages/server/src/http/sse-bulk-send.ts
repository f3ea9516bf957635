import { availableParallelism } from 'node:os';
import { loadAddon } from '../native-addon.js';

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
 * 10,000 streams on 2 cores two threads cut the time to the last byte by about a third
 * (`npm run bench -- sse-floor`, docs/benchmarks.md).
 */
const THREADED_FROM = 1024;
const MAX_THREADS = 4;

/** The addon-backed sender, or undefined when the addon was not built or does not load. */
export function nativeBulkSender(): BulkSender | undefined {
  const addon = loadAddon<FanoutAddon>('fanout');
  if (!addon) return undefined;
  const threads = Math.min(MAX_THREADS, availableParallelism());
  return { sendAll: (fds, data, out) => addon.sendAll(fds, data, out, fds.length >= THREADED_FROM ? threads : 1) };
}
