import type { CheckStatus, Clock } from '@beacon/core';
import { capOutput } from '../output.js';
import type { CheckResult } from '../types.js';

/** Builds a result for a run that started at `at`, measuring its duration on the same clock. */
export function finish(clock: Clock, at: number, status: CheckStatus, output: string): CheckResult {
  return { status, output: capOutput(output), at, durationMs: Math.max(0, clock.now() - at) };
}

/** A short, single-line description of an error for check output. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err.message || err.name;
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  }
  return String(err);
}
