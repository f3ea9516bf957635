import type { CheckStatus } from '@beacon/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ThresholdFilter } from './thresholds.js';

const feed = (f: ThresholdFilter, results: CheckStatus[]): CheckStatus[] => results.map((r) => f.apply(r));

describe('ThresholdFilter (Consul semantics)', () => {
  it('with thresholds of 1 publishes every result as it comes', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1 }, 'critical');
    expect(feed(f, ['passing', 'critical', 'warning', 'passing'])).toEqual(['passing', 'critical', 'warning', 'passing']);
  });

  it('needs successesBeforePassing consecutive successes to leave critical', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 3, failuresBeforeWarning: 1, failuresBeforeCritical: 1 }, 'critical');
    expect(feed(f, ['passing', 'passing', 'critical', 'passing', 'passing', 'passing'])).toEqual([
      'critical', 'critical', 'critical', 'critical', 'critical', 'passing',
    ]);
  });

  it('counts a warning result as a success and publishes warning', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 2, failuresBeforeWarning: 1, failuresBeforeCritical: 1 }, 'critical');
    expect(feed(f, ['passing', 'warning'])).toEqual(['critical', 'warning']);
  });

  it('goes warning at failuresBeforeWarning, critical at failuresBeforeCritical', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 1, failuresBeforeWarning: 2, failuresBeforeCritical: 4 }, 'passing');
    expect(feed(f, ['critical', 'critical', 'critical', 'critical'])).toEqual(['passing', 'warning', 'warning', 'critical']);
  });

  it('a success resets the failure count', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 1, failuresBeforeWarning: 3, failuresBeforeCritical: 3 }, 'passing');
    expect(feed(f, ['critical', 'critical', 'passing', 'critical', 'critical'])).toEqual(['passing', 'passing', 'passing', 'passing', 'passing']);
    expect(f.consecutiveFailures).toBe(2);
  });

  it('a failure never improves the status (unlike Consul, critical does not drop to warning)', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 3 }, 'critical');
    expect(feed(f, ['critical', 'critical'])).toEqual(['critical', 'critical']);
  });

  it('new thresholds apply from the next result, keeping the counters', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 5, failuresBeforeWarning: 1, failuresBeforeCritical: 1 }, 'critical');
    feed(f, ['passing', 'passing']);
    f.setThresholds({ successesBeforePassing: 3, failuresBeforeWarning: 1, failuresBeforeCritical: 1 });
    expect(f.apply('passing')).toBe('passing');
  });

  it('treats thresholds below 1 as 1', () => {
    const f = new ThresholdFilter({ successesBeforePassing: 0, failuresBeforeWarning: -2, failuresBeforeCritical: Number.NaN }, 'critical');
    expect(f.apply('passing')).toBe('passing');
    expect(f.apply('critical')).toBe('critical');
  });

  it('never publishes critical before failuresBeforeCritical consecutive failures (property)', () => {
    const status = fc.constantFrom<CheckStatus>('passing', 'warning', 'critical');
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.array(status, { maxLength: 60 }), (s, c, results) => {
        const f = new ThresholdFilter({ successesBeforePassing: s, failuresBeforeWarning: c, failuresBeforeCritical: c }, 'passing');
        let prev: CheckStatus = 'passing';
        let fails = 0;
        let oks = 0;
        for (const r of results) {
          if (r === 'critical') (fails++, (oks = 0));
          else (oks++, (fails = 0));
          const out = f.apply(r);
          if (out === 'critical' && prev !== 'critical') expect(fails).toBeGreaterThanOrEqual(c);
          if (out !== 'critical' && prev === 'critical') expect(oks).toBeGreaterThanOrEqual(s);
          prev = out;
        }
      }),
    );
  });
});
