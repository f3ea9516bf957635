import { describe, expect, it } from 'vitest';
import { Cancel } from './cancel.js';

describe('Cancel', () => {
  it('calls each listener once, in order, and none that was removed', () => {
    const c = new Cancel();
    const calls: string[] = [];
    const a = () => calls.push('a');
    const b = () => calls.push('b');
    c.addEventListener('abort', a);
    c.addEventListener('abort', b);
    c.addEventListener('abort', () => calls.push('c'));
    c.removeEventListener('abort', b);
    c.abort();
    c.abort();
    expect(calls).toEqual(['a', 'c']);
    expect(c.aborted).toBe(true);
  });

  it('ignores listeners added after the abort', () => {
    const c = new Cancel();
    c.abort();
    let called = false;
    c.addEventListener('abort', () => (called = true));
    expect(called).toBe(false);
  });
});
