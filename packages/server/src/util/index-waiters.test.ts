import { describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { IndexWaiters } from './index-waiters.js';
import { Cancel } from './cancel.js';

describe('IndexWaiters', () => {
  it('wakes in one pass only the readers an index passes; the others stay parked until theirs', async () => {
    const clock = new ManualClock(0);
    const w = new IndexWaiters(clock);
    const woken: string[] = [];
    const a = w.wait(5, 5, 60_000).then(() => woken.push('a@5'));
    const b = w.wait(5, 7, 60_000).then(() => woken.push('b@7'));
    w.wake(6);
    await a;
    expect(woken).toEqual(['a@5']);
    expect(w.size).toBe(1);
    w.wake(8);
    await b;
    expect(woken).toEqual(['a@5', 'b@7']);
    expect(w.size).toBe(0);
  });

  it('ends a wait on its timeout or its cancel, and forgets it', async () => {
    const clock = new ManualClock(0);
    const w = new IndexWaiters(clock);
    const cancel = new Cancel();
    const timed = w.wait(1, 1, 1_000);
    const cancelled = w.wait(1, 1, 60_000, cancel);
    expect(w.size).toBe(2);
    clock.advance(1_000);
    await timed;
    expect(w.size).toBe(1);
    cancel.abort();
    await cancelled;
    expect(w.size).toBe(0);
  });
});
