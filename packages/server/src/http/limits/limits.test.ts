import { describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { clampToNofile, FD_HEADROOM, KeyedBuckets, RequestLimits, Slots, softNofile, TokenBucket } from './index.js';

describe('TokenBucket', () => {
  it('lets a burst through, then one request per 1/rate seconds, and says how long to wait', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(10, 3, clock.now());
    expect([b.take(clock.now()), b.take(clock.now()), b.take(clock.now())]).toEqual([0, 0, 0]);
    expect(b.take(clock.now())).toBe(100);
    clock.advance(60);
    expect(b.take(clock.now())).toBe(40);
    clock.advance(40);
    expect(b.take(clock.now())).toBe(0);
    expect(b.take(clock.now())).toBe(100);
  });

  it('refills no further than the burst', () => {
    const clock = new ManualClock();
    const b = new TokenBucket(1000, 2, clock.now());
    clock.advance(60_000);
    expect([b.take(clock.now()), b.take(clock.now())]).toEqual([0, 0]);
    expect(b.take(clock.now())).toBe(1);
    expect(b.full(clock.now())).toBe(false);
  });
});

describe('KeyedBuckets', () => {
  it('keeps one bucket per client, and a rate of 0 limits nothing', () => {
    const now = 0;
    const k = new KeyedBuckets(1, 1);
    expect(k.take('10.0.0.1', now)).toBe(0);
    expect(k.take('10.0.0.1', now)).toBe(1000);
    expect(k.take('10.0.0.2', now)).toBe(0);
    const off = new KeyedBuckets(0, 1);
    for (let i = 0; i < 10; i++) expect(off.take('10.0.0.1', now)).toBe(0);
    expect(off.size).toBe(0);
  });

  it('forgets refilled buckets once the map reaches its sweep size, keeping the ones still draining', () => {
    const clock = new ManualClock();
    const k = new KeyedBuckets(1, 1, 4);
    for (let i = 0; i < 3; i++) k.take(`10.0.0.${i}`, clock.now());
    clock.advance(1_000);
    k.take('10.0.0.3', clock.now());
    k.take('10.0.0.9', clock.now());
    expect(k.size).toBe(2);
    expect(k.take('10.0.0.3', clock.now())).toBe(1000);
    expect(k.take('10.0.0.9', clock.now())).toBe(1000);
  });
});

describe('Slots', () => {
  it('caps one client without touching another, and frees a slot once', () => {
    const s = new Slots('watch streams', 10, 2);
    const a1 = s.acquire('a');
    s.acquire('a');
    expect(() => s.acquire('a')).toThrow(/from a \(2, the per-client cap\)/);
    const b = s.acquire('b');
    a1();
    a1();
    expect(s.open).toBe(2);
    s.acquire('a');
    b();
    expect(s.open).toBe(2);
  });

  it('holds the global cap whatever the client, and a per-client cap of 0 is off', () => {
    const s = new Slots('blocking queries', 3, 0);
    for (let i = 0; i < 3; i++) s.acquire('a');
    expect(() => s.acquire('b')).toThrow(expect.objectContaining({ code: 'too_many_requests', message: expect.stringMatching(/too many blocking queries open \(3\)/) }));
  });
});

describe('descriptor limit', () => {
  it('reads the soft limit from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    expect(softNofile(() => text)).toBe(1024);
    expect(softNofile(() => text.replace('1024 ', 'unlimited'))).toBeUndefined();
    expect(
      softNofile(() => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
  });

  it('leaves caps that fit alone and lowers caps that do not in proportion', () => {
    expect(clampToNofile({ sse: 100, blocking: 200 }, 1_000_000)).toEqual({ sse: 100, blocking: 200 });
    const c = clampToNofile({ sse: 20_000, blocking: 50_000 }, 1024);
    expect(c.sse + c.blocking).toBeLessThanOrEqual(1024 - FD_HEADROOM);
    expect(c).toEqual({ sse: Math.floor((20_000 * 512) / 70_000), blocking: Math.floor((50_000 * 512) / 70_000) });
    expect(clampToNofile({ sse: 10, blocking: 10 }, 100)).toEqual({ sse: 1, blocking: 1 });
  });

  it('reports the clamped caps', () => {
    const l = new RequestLimits(new ManualClock(), { nofile: 1024, maxWatchStreams: 300, maxBlockingQueries: 300 });
    expect(l.effective).toEqual({ nofile: 1024, nofileKnown: true, watchStreams: 256, blockingQueries: 256 });
    expect(l.sse.cap).toBe(256);
  });
});
