import { EventEmitter, type Event, type IFailureEvent, type IPolicy, type ISuccessEvent } from 'cockatiel';
import type { Clock } from '@beacon/core';

/**
 * What every SDK policy shares with cockatiel's: `onSuccess` / `onFailure` events with durations
 * measured on the injected clock, so they compose with cockatiel's `wrap()` and its own policies.
 */
export abstract class ClockPolicy<C extends { signal: AbortSignal }> implements IPolicy<C> {
  declare readonly _altReturn: never;
  protected readonly successEmitter = new EventEmitter<ISuccessEvent>();
  protected readonly failureEmitter = new EventEmitter<IFailureEvent>();
  readonly onSuccess: Event<ISuccessEvent> = this.successEmitter.addListener;
  readonly onFailure: Event<IFailureEvent> = this.failureEmitter.addListener;

  constructor(protected readonly clock: Clock) {}

  abstract execute<T>(fn: (context: C) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T>;
}

/** A signal that never aborts (cockatiel's default for `execute` without one). */
export const neverAborted: AbortSignal = new AbortController().signal;

/** Rejects with the signal's reason once it aborts; `dispose()` removes the listener. */
export function rejectOnAbort(signal: AbortSignal): { promise: Promise<never>; dispose(): void } {
  let onAbort: () => void = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}
