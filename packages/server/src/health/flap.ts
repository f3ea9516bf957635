import type { Clock, Timer } from '@beacon/core';

export interface FlapDampingOptions {
  /** More status changes than this within `windowMs` is flapping. */
  maxChanges: number;
  windowMs: number;
  /** Hold-down of a first offence; each repeat offence doubles it. */
  holdDownMs: number;
  maxHoldDownMs: number;
  /** Each full `decayMs` without an offence forgets one earlier offence. */
  decayMs: number;
}

export const DEFAULT_FLAP_DAMPING: Readonly<FlapDampingOptions> = {
  maxChanges: 5,
  windowMs: 60_000,
  holdDownMs: 30_000,
  maxHoldDownMs: 10 * 60_000,
  decayMs: 10 * 60_000,
};

/** A hold-down in force: the check is reported critical until `until`. */
export interface HoldDown {
  since: number;
  until: number;
  /** 1 for a first offence, 2 for the next while earlier ones have not decayed, … */
  offence: number;
  /** Status changes counted in the window when the hold-down began. */
  changes: number;
  reason: string;
}

export interface FlapSnapshot {
  holdDown?: HoldDown;
  /** Status changes within the window now. */
  recentChanges: number;
  /** Offences not yet forgotten. */
  offences: number;
}

/**
 * Flap damping beyond Consul's thresholds, in the spirit of BGP route-flap damping: a check
 * whose published status changes more than `maxChanges` times within `windowMs` is held out
 * for a hold-down that doubles with each repeat offence (up to `maxHoldDownMs`) and is forgiven
 * one offence per `decayMs` of good behaviour. Changes during a hold-down still count: when it
 * ends while the check is still flapping, a longer one starts at once.
 */
export class FlapDamper {
  private readonly opts: FlapDampingOptions;
  private changes: number[] = [];
  private offences = 0;
  /** When the offence count last changed or decay was last applied. */
  private offencesAt = 0;
  private current: HoldDown | undefined;
  private timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    opts: Partial<FlapDampingOptions>,
    /** Called when a hold-down ends (not when one is extended). */
    private readonly onRelease: () => void,
  ) {
    this.opts = { ...DEFAULT_FLAP_DAMPING, ...opts };
    if (this.opts.maxChanges < 1 || this.opts.windowMs <= 0 || this.opts.holdDownMs <= 0)
      throw new RangeError('flap damping needs maxChanges ≥ 1 and positive windowMs and holdDownMs');
  }

  get holdDown(): HoldDown | undefined {
    return this.current;
  }

  /** Records a change of the published status; may start a hold-down. Returns whether one is in force. */
  recordChange(): boolean {
    const now = this.clock.now();
    this.changes.push(now);
    this.prune(now);
    if (!this.current && this.changes.length > this.opts.maxChanges) this.offend(now);
    return !!this.current;
  }

  snapshot(): FlapSnapshot {
    const now = this.clock.now();
    this.prune(now);
    const s: FlapSnapshot = { recentChanges: this.changes.length, offences: this.decayedOffences(now) };
    if (this.current) s.holdDown = { ...this.current };
    return s;
  }

  dispose(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private prune(now: number): void {
    const from = now - this.opts.windowMs;
    let i = 0;
    while (i < this.changes.length && this.changes[i]! <= from) i++;
    if (i) this.changes.splice(0, i);
  }

  private decayedOffences(now: number): number {
    if (this.current || this.offences === 0) return this.offences;
    const forgiven = Math.floor((now - this.offencesAt) / this.opts.decayMs);
    return Math.max(0, this.offences - forgiven);
  }

  private offend(now: number): void {
    const counted = this.changes.length;
    this.offences = this.decayedOffences(now) + 1;
    this.offencesAt = now;
    const ms = Math.min(this.opts.maxHoldDownMs, this.opts.holdDownMs * 2 ** (this.offences - 1));
    const until = now + ms;
    this.current = {
      since: now,
      until,
      offence: this.offences,
      changes: counted,
      reason:
        `flapping: ${counted} status changes within ${fmt(this.opts.windowMs)} (more than ${this.opts.maxChanges}); ` +
        `held out for ${fmt(ms)} until ${new Date(until).toISOString()} (offence ${this.offences})`,
    };
    // Count afresh: only changes made during the hold-down decide whether it is extended.
    this.changes = [];
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => this.expire(), ms);
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    this.prune(now);
    this.current = undefined;
    // Decay of offences counts from the end of the last hold-down.
    this.offencesAt = now;
    if (this.changes.length > this.opts.maxChanges) {
      this.offend(now);
      return;
    }
    this.onRelease();
  }
}

function fmt(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
