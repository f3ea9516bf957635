import type { CheckStatus, Clock } from '@beacon/core';
import { FlapDamper, type FlapDampingOptions, type FlapSnapshot, type HoldDown } from './flap.js';
import { capOutput } from './output.js';
import { ThresholdFilter, type Thresholds } from './thresholds.js';
import type { CheckResult } from './types.js';

/** Why the effective status is what it is. */
export type StatusCause = 'result' | 'hold_down' | 'hold_down_end';

export interface StatusHandlerOptions {
  clock: Clock;
  thresholds: Thresholds;
  /** The status the check has now (as stored), before any result. */
  initial: CheckStatus;
  /** Flap damping; `false` turns it off. Default: on, with DEFAULT_FLAP_DAMPING. */
  damping?: Partial<FlapDampingOptions> | false;
  /** Called whenever the effective status changes, including when a hold-down ends on its timer. */
  onChange?: (from: CheckStatus, to: CheckStatus) => void;
}

export interface StatusSnapshot {
  /** What readers should see: critical while held down, else the threshold-filtered status. */
  status: CheckStatus;
  /** The status after thresholds, before damping. */
  filtered: CheckStatus;
  cause: StatusCause;
  /** Output to publish with `status`. */
  output: string;
  lastResult?: CheckResult;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  thresholds: Thresholds;
  /** Absent when damping is off. */
  flap?: FlapSnapshot;
}

/**
 * Turns a stream of check results into the status the registry should publish: thresholds
 * first (Consul semantics), then flap damping on the changes that survive them. Pure logic:
 * time comes from the injected clock, and the only timer is the damper's hold-down.
 */
export class StatusHandler {
  private readonly filter: ThresholdFilter;
  private readonly damper: FlapDamper | undefined;
  private effective: CheckStatus;
  private cause: StatusCause = 'result';
  private last: CheckResult | undefined;
  private readonly onChange: ((from: CheckStatus, to: CheckStatus) => void) | undefined;

  constructor(opts: StatusHandlerOptions) {
    this.filter = new ThresholdFilter(opts.thresholds, opts.initial);
    this.effective = opts.initial;
    this.onChange = opts.onChange;
    if (opts.damping !== false) this.damper = new FlapDamper(opts.clock, opts.damping ?? {}, () => this.released());
  }

  get status(): CheckStatus {
    return this.effective;
  }

  get holdDown(): HoldDown | undefined {
    return this.damper?.holdDown;
  }

  get lastResult(): CheckResult | undefined {
    return this.last;
  }

  /** The output that goes with the current status: the hold-down reason while held, else the last result's. */
  get output(): string {
    const hd = this.damper?.holdDown;
    const out = this.last?.output ?? '';
    if (!hd) return out;
    return capOutput(out ? `${hd.reason}; last result: ${out}` : hd.reason);
  }

  get currentCause(): StatusCause {
    return this.cause;
  }

  setThresholds(t: Thresholds): void {
    this.filter.setThresholds(t);
  }

  /** Feeds one result. Returns the effective status after it. */
  record(result: CheckResult): CheckStatus {
    this.last = result;
    const before = this.filter.status;
    const after = this.filter.apply(result.status);
    const wasHeld = !!this.damper?.holdDown;
    const held = after !== before && this.damper ? this.damper.recordChange() : wasHeld;
    if (held && !wasHeld) this.cause = 'hold_down';
    else if (!held) this.cause = 'result';
    this.set(held ? 'critical' : after);
    return this.effective;
  }

  snapshot(): StatusSnapshot {
    const s: StatusSnapshot = {
      status: this.effective,
      filtered: this.filter.status,
      cause: this.cause,
      output: this.output,
      consecutiveSuccesses: this.filter.consecutiveSuccesses,
      consecutiveFailures: this.filter.consecutiveFailures,
      thresholds: this.filter.thresholds,
    };
    if (this.last) s.lastResult = { ...this.last };
    if (this.damper) s.flap = this.damper.snapshot();
    return s;
  }

  /** Cancels the hold-down timer. */
  dispose(): void {
    this.damper?.dispose();
  }

  private released(): void {
    this.cause = 'hold_down_end';
    this.set(this.filter.status);
  }

  private set(to: CheckStatus): void {
    const from = this.effective;
    if (from === to) return;
    this.effective = to;
    this.onChange?.(from, to);
  }
}
