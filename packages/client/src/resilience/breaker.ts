import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, EventEmitter, type Event, type IBreaker, type IDefaultPolicyContext } from 'cockatiel';
import type { Clock } from '@beacon/core';
import { ClockPolicy, neverAborted } from './policy-base.js';

export interface CircuitBreakerOptions {
  /** When to open: any cockatiel breaker without its own clock (default: 5 consecutive failures). */
  breaker?: IBreaker;
  /** How long the circuit stays open before one trial request (default 5 s). */
  halfOpenAfterMs?: number;
  /** Each failed trial doubles the open time, up to this (default 60 s). */
  maxHalfOpenAfterMs?: number;
  /** Whether a value counts as a failure (e.g. a 5xx response). Default: never. */
  isFailure?(value: unknown): boolean;
  /** Whether a thrown error counts as a failure (default: yes). Others only release the trial. */
  isFailureError?(error: unknown): boolean;
}

/**
 * A circuit breaker on the injected clock (cockatiel's reads `Date.now()`): closed → open after
 * the breaker trips → half-open after `halfOpenAfterMs`, admitting exactly one trial → closed on its
 * success, open again (for twice as long) on its failure. Used per instance; `execute` makes it a
 * cockatiel `IPolicy`, and `tryAcquire` / `success` / `failure` serve callback-style transports.
 *
 * @example
 * const cb = new CircuitBreaker(clock, { halfOpenAfterMs: 5_000 });
 * await cb.execute(() => callInstance());
 */
export class CircuitBreaker extends ClockPolicy<IDefaultPolicyContext> {
  private current: CircuitState = CircuitState.Closed;
  private openUntil = 0;
  private openFor: number;
  private trial = false;
  private readonly breaker: IBreaker;
  private readonly baseOpenMs: number;
  private readonly maxOpenMs: number;
  private readonly stateEmitter = new EventEmitter<CircuitState>();
  private readonly breakEmitter = new EventEmitter<void>();
  private readonly halfOpenEmitter = new EventEmitter<void>();
  private readonly resetEmitter = new EventEmitter<void>();
  /** Fires on every state change. */
  readonly onStateChange: Event<CircuitState> = this.stateEmitter.addListener;
  /** Fires when the circuit opens. */
  readonly onBreak: Event<void> = this.breakEmitter.addListener;
  /** Fires when the circuit lets a trial through. */
  readonly onHalfOpen: Event<void> = this.halfOpenEmitter.addListener;
  /** Fires when the circuit closes again. */
  readonly onReset: Event<void> = this.resetEmitter.addListener;

  constructor(
    clock: Clock,
    private readonly opts: CircuitBreakerOptions = {},
  ) {
    super(clock);
    this.breaker = opts.breaker ?? new ConsecutiveBreaker(5);
    this.baseOpenMs = opts.halfOpenAfterMs ?? 5_000;
    this.maxOpenMs = Math.max(this.baseOpenMs, opts.maxHalfOpenAfterMs ?? 60_000);
    this.openFor = this.baseOpenMs;
  }

  /** The state now: an open circuit whose time is up reads as half-open. */
  get state(): CircuitState {
    if (this.current === CircuitState.Open && this.clock.now() >= this.openUntil) return CircuitState.HalfOpen;
    return this.current;
  }

  /** When an open circuit will let a trial through (clock ms); 0 when not open. */
  get reopensAt(): number {
    return this.current === CircuitState.Open ? this.openUntil : 0;
  }

  /**
   * Whether a request could be admitted now (no side effect).
   *
   * @example
   * if (!breaker.isAvailable()) skipInstance();
   */
  isAvailable(): boolean {
    switch (this.state) {
      case CircuitState.Closed:
        return true;
      case CircuitState.HalfOpen:
        return !this.trial;
      case CircuitState.Open:
      case CircuitState.Isolated:
        return false;
    }
  }

  /**
   * Admits a request: always when closed; in half-open only the single trial. Every admitted
   * request must end in `success()`, `failure()` or `release()`.
   *
   * @example
   * if (breaker.tryAcquire()) { try { await call(); breaker.success(); } catch { breaker.failure(); } }
   */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === CircuitState.Closed) return true;
    if (s !== CircuitState.HalfOpen || this.trial) return false;
    if (this.current !== CircuitState.HalfOpen) this.transition(CircuitState.HalfOpen);
    this.trial = true;
    this.halfOpenEmitter.emit();
    return true;
  }

  /**
   * Reports a success of an admitted request (closes a half-open circuit).
   *
   * @example
   * breaker.success();
   */
  success(): void {
    if (this.current === CircuitState.HalfOpen) {
      this.trial = false;
      this.openFor = this.baseOpenMs;
      this.breaker.success(CircuitState.HalfOpen);
      this.transition(CircuitState.Closed);
      this.resetEmitter.emit();
      return;
    }
    this.breaker.success(this.current);
  }

  /**
   * Reports a failure of an admitted request (may open the circuit).
   *
   * @example
   * breaker.failure();
   */
  failure(): void {
    if (this.current === CircuitState.HalfOpen) {
      this.trial = false;
      this.breaker.failure(CircuitState.HalfOpen);
      this.openFor = Math.min(this.maxOpenMs, this.openFor * 2);
      this.open();
      return;
    }
    if (this.current === CircuitState.Closed && this.breaker.failure(CircuitState.Closed)) this.open();
  }

  /**
   * An admitted request ended without telling anything (cancelled): frees the trial slot.
   *
   * @example
   * breaker.release();
   */
  release(): void {
    if (this.current === CircuitState.HalfOpen) this.trial = false;
  }

  async execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal: AbortSignal = neverAborted): Promise<T> {
    if (!this.tryAcquire()) throw new BrokenCircuitError();
    const started = this.clock.now();
    try {
      const value = await fn({ signal });
      if (this.opts.isFailure?.(value)) {
        this.failure();
        this.failureEmitter.emit({ duration: this.clock.now() - started, handled: true, reason: { value } });
      } else {
        this.success();
        this.successEmitter.emit({ duration: this.clock.now() - started });
      }
      return value;
    } catch (error) {
      if (this.opts.isFailureError?.(error) ?? true) this.failure();
      else this.release();
      this.failureEmitter.emit({ duration: this.clock.now() - started, handled: true, reason: { error: error as Error } });
      throw error;
    }
  }

  private open(): void {
    this.openUntil = this.clock.now() + this.openFor;
    this.transition(CircuitState.Open);
    this.breakEmitter.emit();
  }

  private transition(s: CircuitState): void {
    if (this.current === s) return;
    this.current = s;
    this.stateEmitter.emit(s);
  }
}
