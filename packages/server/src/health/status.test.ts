import { ManualClock, type CheckStatus } from '@beacon/core';
import { describe, expect, it } from 'vitest';
import { StatusHandler } from './status.js';
import type { CheckResult } from './types.js';

const thresholds = { successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1 };

function setup(opts: { damping?: false; thresholds?: typeof thresholds } = {}) {
  const clock = new ManualClock();
  const changes: Array<[CheckStatus, CheckStatus]> = [];
  const h = new StatusHandler({
    clock,
    thresholds: opts.thresholds ?? thresholds,
    initial: 'critical',
    damping: opts.damping ?? { maxChanges: 3, windowMs: 10_000, holdDownMs: 5_000, maxHoldDownMs: 60_000, decayMs: 60_000 },
    onChange: (from, to) => changes.push([from, to]),
  });
  const result = (status: CheckStatus, output = status): CheckResult => {
    clock.advance(1000);
    return { status, output, at: clock.now(), durationMs: 3 };
  };
  return { clock, h, changes, result };
}

describe('StatusHandler', () => {
  it('publishes the first passing result at once (new instance ready on first answer)', () => {
    const { h, changes, result } = setup();
    expect(h.record(result('passing', 'HTTP GET …: 200 OK'))).toBe('passing');
    expect(changes).toEqual([['critical', 'passing']]);
    expect(h.output).toBe('HTTP GET …: 200 OK');
    expect(h.currentCause).toBe('result');
  });

  it('reports nothing for results that do not change the status, but keeps their output', () => {
    const { h, changes, result } = setup();
    h.record(result('passing', 'one'));
    h.record(result('passing', 'two'));
    expect(changes).toHaveLength(1);
    expect(h.snapshot().lastResult?.output).toBe('two');
    expect(h.output).toBe('two');
  });

  it('applies thresholds before publishing', () => {
    const { h, changes, result } = setup({ thresholds: { successesBeforePassing: 2, failuresBeforeWarning: 1, failuresBeforeCritical: 3 } });
    h.record(result('passing'));
    expect(h.status).toBe('critical');
    h.record(result('passing'));
    expect(h.status).toBe('passing');
    h.record(result('critical'));
    expect(h.status).toBe('warning');
    h.record(result('critical'));
    h.record(result('critical'));
    expect(h.status).toBe('critical');
    expect(changes).toEqual([['critical', 'passing'], ['passing', 'warning'], ['warning', 'critical']]);
    expect(h.snapshot().consecutiveFailures).toBe(3);
  });

  it('holds a flapping check critical, says why, and releases it after the hold-down', () => {
    const { h, changes, result, clock } = setup();
    h.record(result('passing')); // 1
    h.record(result('critical')); // 2
    h.record(result('passing')); // 3
    expect(h.status).toBe('passing');
    h.record(result('critical', 'HTTP 500')); // 4th change: held down
    expect(h.status).toBe('critical');
    expect(h.currentCause).toBe('hold_down');
    expect(h.holdDown?.offence).toBe(1);
    expect(h.output).toMatch(/^flapping: 4 status changes within 10s .*; last result: HTTP 500$/);
    // Passing results during the hold-down do not get through.
    h.record(result('passing', 'fine again'));
    expect(h.status).toBe('critical');
    expect(h.snapshot().filtered).toBe('passing');
    expect(h.snapshot().flap?.holdDown).toBeDefined();
    clock.advance(5000);
    expect(h.holdDown).toBeUndefined();
    expect(h.status).toBe('passing');
    expect(h.currentCause).toBe('hold_down_end');
    expect(h.output).toBe('fine again');
    expect(changes).toEqual([
      ['critical', 'passing'],
      ['passing', 'critical'],
      ['critical', 'passing'],
      ['passing', 'critical'],
      ['critical', 'passing'],
    ]);
  });

  it('stays critical at the end of a hold-down when the check is failing', () => {
    const { h, changes, result, clock } = setup();
    for (const s of ['passing', 'critical', 'passing', 'critical'] as const) h.record(result(s));
    expect(h.holdDown).toBeDefined();
    const before = changes.length;
    clock.advance(5000);
    expect(h.holdDown).toBeUndefined();
    expect(h.status).toBe('critical');
    expect(changes.length).toBe(before);
  });

  it('thresholds absorb flapping before damping sees it', () => {
    const { h, result } = setup({ thresholds: { successesBeforePassing: 1, failuresBeforeWarning: 3, failuresBeforeCritical: 3 } });
    h.record(result('passing'));
    for (let i = 0; i < 10; i++) {
      h.record(result('critical'));
      h.record(result('passing'));
    }
    expect(h.status).toBe('passing');
    expect(h.holdDown).toBeUndefined();
  });

  it('without damping, flapping goes straight through', () => {
    const { h, changes, result } = setup({ damping: false });
    for (let i = 0; i < 5; i++) {
      h.record(result('passing'));
      h.record(result('critical'));
    }
    expect(changes).toHaveLength(10);
    expect(h.snapshot().flap).toBeUndefined();
  });
});
