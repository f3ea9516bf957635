import { EventEmitter, type Event, type FailureReason, type IBackoff, type IBackoffFactory, type IRetryContext } from 'cockatiel';
import { errors, type Clock } from '@beacon/core';
import { sleep } from '../time.js';
import type { RetryBudget } from './budget.js';
import { ClockPolicy, neverAborted } from './policy-base.js';

export interface RetryPolicyOptions {
  clock: Clock;
  /** Retries after the first attempt (default 2). */
  maxRetries?: number;
  backoff: IBackoffFactory<unknown>;
  /** Shared per service: caps retries at a share of traffic. */
  budget?: RetryBudget;
  /**
   * Whether this outcome (a thrown error, or a value such as a 503 response) is worth another
   * attempt. Values for which it answers false are successes.
   */
  shouldRetry(outcome: FailureReason<unknown>, attempt: number): boolean;
  /** Releases a value that is being thrown away for a retry (e.g. cancels a response body). */
  discard?(value: unknown): void;
}

/** Why a retry policy stopped retrying. */
export type GiveUpReason = 'not-retryable' | 'attempts' | 'budget' | 'aborted';

/**
 * Retries on the injected clock: backoff from any cockatiel backoff (full jitter by default in the
 * SDK), a shared {@link RetryBudget}, and a predicate that sees errors and results alike. A
 * cockatiel `IPolicy`, so it composes with `wrap()`.
 *
 * @example
 * const retry = new RetryPolicy({ clock, backoff: fullJitter({ random }), shouldRetry: (o) => 'error' in o });
 * const answer = await retry.execute(({ attempt }) => callOnce(attempt));
 */
export class RetryPolicy extends ClockPolicy<IRetryContext> {
  private readonly retryEmitter = new EventEmitter<FailureReason<unknown> & { attempt: number; delay: number }>();
  private readonly giveUpEmitter = new EventEmitter<FailureReason<unknown> & { reason: GiveUpReason; attempt: number }>();
  /** Fires before each backoff. */
  readonly onRetry: Event<FailureReason<unknown> & { attempt: number; delay: number }> = this.retryEmitter.addListener;
  /** Fires when a failed outcome is returned or thrown without another attempt. */
  readonly onGiveUp: Event<FailureReason<unknown> & { reason: GiveUpReason; attempt: number }> = this.giveUpEmitter.addListener;
  private readonly maxRetries: number;

  constructor(private readonly opts: RetryPolicyOptions) {
    super(opts.clock);
    this.maxRetries = opts.maxRetries ?? 2;
    if (!Number.isInteger(this.maxRetries) || this.maxRetries < 0) throw errors.invalid('maxRetries must be an integer ≥ 0');
  }

  async execute<T>(fn: (context: IRetryContext) => PromiseLike<T> | T, signal: AbortSignal = neverAborted): Promise<T> {
    const started = this.begin();
    let first: FailureReason<T>;
    try {
      first = { value: await fn({ signal, attempt: 0 }) };
    } catch (error) {
      first = { error: error as Error };
    }
    return this.resume(first, fn, started, signal);
  }

  /**
   * Starts a call whose first attempt the caller makes its own way — with callbacks, no promise
   * per request (the proxy's hot path) — and returns its start time. The first attempt's outcome
   * then goes to {@link accepts}, and to {@link resume} unless accepted: together they do exactly
   * what {@link execute} does.
   *
   * @example
   * const started = retry.begin();
   * callOnce((err, answer) => {
   *   const first = err ? { error: err } : { value: answer };
   *   if (retry.accepts(first, started)) return use(answer);
   *   retry.resume(first, () => callOnceAsPromise(), started).then(use, report);
   * });
   */
  begin(): number {
    this.opts.budget?.recordRequest();
    return this.clock.now();
  }

  /** True when the first attempt's outcome is a success that wants no retry (reported as one): the call is over. */
  accepts<T>(first: FailureReason<T>, started: number): boolean {
    if (!('value' in first) || this.opts.shouldRetry(first, 0)) return false;
    if (this.successEmitter.size) this.successEmitter.emit({ duration: this.clock.now() - started });
    return true;
  }

  /** Goes on from the first attempt's outcome as {@link execute} does: backoff and retries within the budget, or gives up. */
  async resume<T>(first: FailureReason<T>, fn: (context: IRetryContext) => PromiseLike<T> | T, started: number, signal: AbortSignal = neverAborted): Promise<T> {
    let backoff: IBackoff<unknown> | undefined;
    let outcome = first;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        try {
          outcome = { value: await fn({ signal, attempt }) };
        } catch (error) {
          outcome = { error: error as Error };
        }
      }
      const retryable = this.opts.shouldRetry(outcome, attempt);
      if (!retryable && 'value' in outcome) {
        if (this.successEmitter.size) this.successEmitter.emit({ duration: this.clock.now() - started });
        return outcome.value;
      }
      let giveUp: GiveUpReason | undefined;
      if (!retryable) giveUp = 'not-retryable';
      else if (signal.aborted) giveUp = 'aborted';
      else if (attempt >= this.maxRetries) giveUp = 'attempts';
      else if (this.opts.budget && !this.opts.budget.tryRetry()) giveUp = 'budget';
      if (giveUp) {
        if (this.giveUpEmitter.size) this.giveUpEmitter.emit({ ...outcome, reason: giveUp, attempt });
        if (this.failureEmitter.size) this.failureEmitter.emit({ duration: this.clock.now() - started, handled: retryable, reason: outcome });
        if ('error' in outcome) throw outcome.error;
        return outcome.value;
      }
      backoff = backoff ? backoff.next(undefined) : this.opts.backoff.next(undefined);
      if ('value' in outcome) this.opts.discard?.(outcome.value);
      this.retryEmitter.emit({ ...outcome, attempt: attempt + 1, delay: backoff.duration });
      await sleep(this.clock, backoff.duration, signal === neverAborted ? undefined : signal);
    }
  }
}
