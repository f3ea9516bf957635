import type { CheckStatus } from '@beacon/core';

export interface Thresholds {
  /** Consecutive passing (or warning) results before the status leaves critical/warning. */
  successesBeforePassing: number;
  /** Consecutive failures before the status turns warning. */
  failuresBeforeWarning: number;
  /** Consecutive failures before the status turns critical. */
  failuresBeforeCritical: number;
}

/**
 * Consul's status handler (agent/checks/check.go StatusHandler): a run's status is published
 * only once enough consecutive runs agree. Passing and warning results count as successes and
 * publish their own status; a critical result counts as a failure and publishes warning, then
 * critical, as the failure thresholds are reached.
 *
 * One deliberate difference: a failure never improves the status. Consul would move a check
 * that is already critical to warning on the failure that reaches `failuresBeforeWarning`.
 */
export class ThresholdFilter {
  private successes = 0;
  private failures = 0;
  private current: CheckStatus;
  private t: Thresholds;

  constructor(thresholds: Thresholds, initial: CheckStatus) {
    this.t = sanitize(thresholds);
    this.current = initial;
  }

  /** The published status. */
  get status(): CheckStatus {
    return this.current;
  }

  get consecutiveSuccesses(): number {
    return this.successes;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  get thresholds(): Thresholds {
    return { ...this.t };
  }

  /** New thresholds apply from the next result; the counters are kept. */
  setThresholds(t: Thresholds): void {
    this.t = sanitize(t);
  }

  /** Feeds one run's status; returns the published status after it. */
  apply(result: CheckStatus): CheckStatus {
    switch (result) {
      case 'passing':
      case 'warning':
        this.successes++;
        this.failures = 0;
        if (this.successes >= this.t.successesBeforePassing) this.current = result;
        break;
      case 'critical':
        this.failures++;
        this.successes = 0;
        if (this.failures >= this.t.failuresBeforeCritical) this.current = 'critical';
        else if (this.failures >= this.t.failuresBeforeWarning && this.current === 'passing') this.current = 'warning';
        break;
    }
    return this.current;
  }
}

function sanitize(t: Thresholds): Thresholds {
  const n = (v: number): number => (Number.isFinite(v) && v >= 1 ? Math.floor(v) : 1);
  return {
    successesBeforePassing: n(t.successesBeforePassing),
    failuresBeforeWarning: n(t.failuresBeforeWarning),
    failuresBeforeCritical: n(t.failuresBeforeCritical),
  };
}
