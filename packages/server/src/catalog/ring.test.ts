import { describe, expect, it } from 'vitest';
import { Ring } from './ring.js';

describe('Ring', () => {
  it('keeps the newest entries in order and hands back the one that fell out', () => {
    const r = new Ring<number>(3);
    expect([r.push(1), r.push(2), r.push(3)]).toEqual([undefined, undefined, undefined]);
    expect(r.push(4)).toBe(1);
    expect(r.push(5)).toBe(2);
    expect([...r]).toEqual([3, 4, 5]);
    expect(r.length).toBe(3);
    expect([r.at(0), r.at(2), r.at(3), r.at(-1)]).toEqual([3, 5, undefined, undefined]);
  });

  it('gives up its oldest entry on shift, wrapping around, and nothing when empty', () => {
    const r = new Ring<number>(3);
    for (const n of [1, 2, 3, 4]) r.push(n);
    expect([r.shift(), r.shift()]).toEqual([2, 3]);
    r.push(5);
    r.push(6);
    expect([...r]).toEqual([4, 5, 6]);
    expect([r.shift(), r.shift(), r.shift(), r.shift()]).toEqual([4, 5, 6, undefined]);
    expect(r.length).toBe(0);
  });

  it('matches a trimmed array over a long run', () => {
    const r = new Ring<number>(7);
    const model: number[] = [];
    for (let i = 0; i < 100; i++) {
      const dropped = r.push(i);
      model.push(i);
      const expected = model.length > 7 ? model.shift() : undefined;
      expect(dropped).toBe(expected);
      expect([...r]).toEqual(model);
    }
  });

  it('shifts the oldest off, interleaved with pushes, like an array', () => {
    const r = new Ring<number>(4);
    const model: number[] = [];
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 2) expect(r.shift()).toBe(model.shift());
      else {
        r.push(i);
        model.push(i);
        if (model.length > 4) model.shift();
      }
      expect([...r]).toEqual(model);
      expect(r.length).toBe(model.length);
    }
    while (model.length) expect(r.shift()).toBe(model.shift());
    expect(r.shift()).toBeUndefined();
  });

  it('starts over after clear', () => {
    const r = new Ring<string>(2);
    r.push('a');
    r.push('b');
    r.push('c');
    r.clear();
    expect(r.length).toBe(0);
    expect([...r]).toEqual([]);
    r.push('d');
    expect([...r]).toEqual(['d']);
  });

  it('drops everything at capacity 0 and refuses a bad capacity', () => {
    const r = new Ring<number>(0);
    expect(r.push(1)).toBe(1);
    expect(r.length).toBe(0);
    expect(() => new Ring(-1)).toThrow(RangeError);
    expect(() => new Ring(1.5)).toThrow(RangeError);
  });
});
