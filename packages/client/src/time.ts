import { performance } from 'node:perf_hooks';
import { BeaconError, type Clock } from '@beacon/core';

/**
 * The SDK's default {@link Clock}: wall-clock based, with sub-millisecond `now()` so latency
 * estimates (EWMA) mean something on loopback, and referenced timers, so a retry waiting out its
 * backoff keeps the process alive the way the request it replaces would have.
 *
 * @example
 * const client = createClient({ servers: ['http://127.0.0.1:8500'], clock: preciseClock });
 */
const ORIGIN = performance.timeOrigin;

export const preciseClock: Clock = {
  now: () => ORIGIN + performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Resolves after `ms` of `clock` time; rejects with the signal's reason when aborted first.
 *
 * @example
 * await sleep(clock, 100, signal);
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (ms <= 0 && !signal) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      timer.cancel();
      reject(abortReason(signal!));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The reason an aborted signal carries, as an Error.
 *
 * @example
 * if (signal.aborted) throw abortReason(signal);
 */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  return new BeaconError('unavailable', 'operation aborted', { reason: 'aborted' });
}

/**
 * An AbortSignal that aborts after `ms` of `clock` time (or when `parent` aborts), with a
 * `timeout` {@link BeaconError} as its reason. Call `cancel()` when the guarded work is done.
 *
 * @example
 * const t = clockTimeout(clock, 500, 'request to payments');
 * try { await work(t.signal); } finally { t.cancel(); }
 */
export function clockTimeout(clock: Clock, ms: number, what: string, parent?: AbortSignal): { signal: AbortSignal; cancel(): void } {
  const ac = new AbortController();
  const onParent = () => ac.abort(abortReason(parent!));
  const timer = clock.setTimeout(() => {
    ac.abort(new BeaconError('timeout', `${what} timed out after ${Math.round(ms)} ms`, { reason: 'timeout', timeoutMs: ms }));
  }, ms);
  if (parent) {
    if (parent.aborted) onParent();
    else parent.addEventListener('abort', onParent, { once: true });
  }
  return {
    signal: ac.signal,
    cancel() {
      timer.cancel();
      parent?.removeEventListener('abort', onParent);
    },
  };
}
