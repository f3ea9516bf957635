import type { CheckKind, CheckSpec, CheckStatus } from '@beacon/core';

/** The check kinds Beacon runs itself; `ttl` checks are pushed by the instance. */
export type ActiveCheckKind = Exclude<CheckKind, 'ttl'>;
export const ACTIVE_CHECK_KINDS: readonly ActiveCheckKind[] = ['http', 'tcp', 'grpc', 'script'];

export function isActiveKind(kind: CheckKind): kind is ActiveCheckKind {
  return kind !== 'ttl';
}

/** One run of a check. */
export interface CheckResult {
  status: CheckStatus;
  /** What the probe saw, capped at LIMITS.checkOutput bytes. */
  output: string;
  /** When the run started (clock ms). */
  at: number;
  durationMs: number;
}

/**
 * Runs one kind of check against one target. `run` never rejects: every failure, including a
 * timeout, is a critical result. Each runner enforces its own timeout; `signal` lets the owner
 * cancel a run early (remove, close).
 */
export interface CheckRunner {
  readonly kind: ActiveCheckKind;
  run(signal?: AbortSignal): Promise<CheckResult>;
}

/** Builds a runner for a check; throws a BeaconError when the check may not run here. */
export interface RunnerFactory {
  create(spec: CheckSpec): CheckRunner;
}
