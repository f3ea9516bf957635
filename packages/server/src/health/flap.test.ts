import { ManualClock } from '@beacon/core';
import { describe, expect, it } from 'vitest';
import { FlapDamper } from './flap.js';

const opts = { maxChanges: 3, windowMs: 10_000, holdDownMs: 5_000, maxHoldDownMs: 30_000, decayMs: 60_000 };

function setup() {
  const clock = new ManualClock();
  let released = 0;
  const d = new FlapDamper(clock, opts, () => released++);
  const flap = (n: number, every = 1000): void => {
    for (let i = 0; i < n; i++) {
      clock.advance(every);
      d.recordChange();
    }
  };
  return { clock, d, flap, released: () => released };
}

describe('FlapDamper', () => {
  it('tolerates up to maxChanges changes within the window', () => {
    const { d, flap } = setup();
    flap(3);
    expect(d.holdDown).toBeUndefined();
    expect(d.snapshot().recentChanges).toBe(3);
  });

  it('changes that fall out of the window do not count', () => {
    const { d, flap } = setup();
    flap(3, 4000); // at 4 s, 8 s, 12 s: the first has left the 10 s window by the third
    flap(1, 4000);
    expect(d.holdDown).toBeUndefined();
  });

  it('holds out on the change that exceeds maxChanges, with a readable reason', () => {
    const { d, flap, clock } = setup();
    flap(4);
    const hd = d.holdDown!;
    expect(hd.offence).toBe(1);
    expect(hd.changes).toBe(4);
    expect(hd.since).toBe(clock.now());
    expect(hd.until).toBe(clock.now() + 5000);
    expect(hd.reason).toContain('4 status changes within 10s (more than 3)');
    expect(hd.reason).toContain('held out for 5s');
  });

  it('releases after the hold-down when the check has calmed down', () => {
    const { d, flap, clock, released } = setup();
    flap(4);
    clock.advance(4999);
    expect(d.holdDown).toBeDefined();
    clock.advance(1);
    expect(d.holdDown).toBeUndefined();
    expect(released()).toBe(1);
  });

  it('extends at once, doubled, when the check kept flapping during the hold-down', () => {
    const { d, flap, clock, released } = setup();
    flap(4);
    flap(4, 1000); // 4 more changes inside the 5 s hold-down
    clock.advance(1000);
    const hd = d.holdDown!;
    expect(hd.offence).toBe(2);
    expect(hd.until - hd.since).toBe(10_000);
    expect(released()).toBe(0);
  });

  it('grows on repeat offences up to the cap, and forgives one offence per decay period', () => {
    const { d, flap, clock } = setup();
    const durations: number[] = [];
    for (let i = 0; i < 5; i++) {
      flap(4, 10);
      durations.push(d.holdDown!.until - d.holdDown!.since);
      clock.advance(d.holdDown!.until - clock.now());
      expect(d.holdDown).toBeUndefined();
    }
    expect(durations).toEqual([5_000, 10_000, 20_000, 30_000, 30_000]);
    expect(d.snapshot().offences).toBe(5);
    clock.advance(2 * 60_000); // two decay periods
    expect(d.snapshot().offences).toBe(3);
    flap(4, 10);
    expect(d.holdDown!.offence).toBe(4);
    expect(d.holdDown!.until - d.holdDown!.since).toBe(30_000);
    clock.advance(30_000 + 10 * 60_000);
    expect(d.snapshot().offences).toBe(0);
    flap(4, 10);
    expect(d.holdDown!.offence).toBe(1);
    expect(d.holdDown!.until - d.holdDown!.since).toBe(5_000);
  });

  it('dispose cancels the hold-down timer', () => {
    const { d, flap, clock, released } = setup();
    flap(4);
    d.dispose();
    expect(clock.timers).toBe(0);
    clock.advance(60_000);
    expect(released()).toBe(0);
  });

  it('rejects nonsense options', () => {
    expect(() => new FlapDamper(new ManualClock(), { maxChanges: 0 }, () => {})).toThrow(RangeError);
  });
});
