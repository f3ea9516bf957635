import { EventEmitter, type Event, type ICancellationContext } from 'cockatiel';
import type { Clock } from '@beacon/core';
import { clockTimeout } from '../time.js';
import { ClockPolicy, neverAborted, rejectOnAbort } from './policy-base.js';

/**
 * An aggressive timeout on the injected clock: the inner signal aborts and the call rejects with a
 * `timeout` BeaconError (details.reason `timeout`) as soon as `durationMs` passes, whether or not
 * the work notices. A cockatiel `IPolicy`.
 *
 * @example
 * const t = new TimeoutPolicy(clock, 500, 'payments attempt');
 * await t.execute(({ signal }) => fetch(url, { signal }));
 */
export class TimeoutPolicy extends ClockPolicy<ICancellationContext> {
  private readonly timeoutEmitter = new EventEmitter<void>();
  /** Fires when the time runs out. */
  readonly onTimeout: Event<void> = this.timeoutEmitter.addListener;

  constructor(
    clock: Clock,
    readonly durationMs: number,
    private readonly what = 'operation',
  ) {
    super(clock);
  }

  async execute<T>(fn: (context: ICancellationContext) => PromiseLike<T> | T, signal: AbortSignal = neverAborted): Promise<T> {
    const started = this.clock.now();
    const t = clockTimeout(this.clock, this.durationMs, this.what, signal === neverAborted ? undefined : signal);
    const onTimeout = () => {
      if (!signal.aborted) this.timeoutEmitter.emit();
    };
    t.signal.addEventListener('abort', onTimeout, { once: true });
    const abort = rejectOnAbort(t.signal);
    try {
      const value = await Promise.race([Promise.resolve(fn({ signal: t.signal })), abort.promise]);
      this.successEmitter.emit({ duration: this.clock.now() - started });
      return value;
    } catch (error) {
      this.failureEmitter.emit({ duration: this.clock.now() - started, handled: t.signal.aborted, reason: { error: error as Error } });
      throw error;
    } finally {
      abort.dispose();
      t.signal.removeEventListener('abort', onTimeout);
      t.cancel();
    }
  }
}
