import type { Clock } from '@beacon/core';

/** Why a run's signal fired. */
export type AbortCause = 'timeout' | 'cancelled';

export interface Deadline {
  /** Aborts when the timeout passes or the outer signal aborts. */
  readonly signal: AbortSignal;
  /** Set once the signal has fired. */
  readonly cause: AbortCause | undefined;
  /** Stops the timer and detaches from the outer signal. Call when the run ends. */
  dispose(): void;
}

/**
 * A timeout driven by the injected clock, merged with an optional outer signal (used by the
 * scheduler to cancel runs on remove and close).
 */
export function deadline(clock: Clock, timeoutMs: number, outer?: AbortSignal): Deadline {
  const ac = new AbortController();
  let cause: AbortCause | undefined;
  const fire = (c: AbortCause): void => {
    if (cause) return;
    cause = c;
    ac.abort(new Error(c === 'timeout' ? `timed out after ${timeoutMs} ms` : 'cancelled'));
  };
  const timer = clock.setTimeout(() => fire('timeout'), timeoutMs);
  const onOuter = (): void => fire('cancelled');
  if (outer?.aborted) fire('cancelled');
  else outer?.addEventListener('abort', onOuter, { once: true });
  return {
    signal: ac.signal,
    get cause() {
      return cause;
    },
    dispose() {
      timer.cancel();
      outer?.removeEventListener('abort', onOuter);
    },
  };
}
