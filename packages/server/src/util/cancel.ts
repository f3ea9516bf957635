/**
 * What a wait needs of a cancellation: whether it happened, and one callback when it does.
 * `AbortSignal` has this shape too, so callers that hold one pass it as it is.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A cancellation for one parked request. An `AbortController` builds an `EventTarget` per
 * request (with 1,000 blocking queries parked, its creation and listener bookkeeping were ~5 % of
 * the server's time in a fan-out); a parked wait only ever has one listener at a time, so this
 * holds a short list and nothing else.
 */
export class Cancel implements CancelSignal {
  private fns: (() => void)[] = [];
  aborted = false;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    this.fns.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.fns.indexOf(listener);
    if (i >= 0) this.fns.splice(i, 1);
  }

  /** Calls every listener once, in the order added; later calls do nothing. */
  readonly abort = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    const fns = this.fns;
    this.fns = [];
    for (const fn of fns) fn();
  };
}
