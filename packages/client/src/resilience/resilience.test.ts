import { describe, expect, it } from 'vitest';
import { CircuitState, CountBreaker, handleAll, retry as cockatielRetry, wrap } from 'cockatiel';
import { BeaconError, ManualClock, seededRandom } from '@beacon/core';
import { fullJitter } from './backoff.js';
import { RetryBudget } from './budget.js';
import { CircuitBreaker } from './breaker.js';
import { classifyError, isIdempotent } from './classify.js';
import { DEADLINE_HEADER, Deadline, readDeadline } from './deadline.js';
import { OutlierDetector, OutlierState } from './outlier.js';
import { RetryPolicy } from './retry.js';
import { TimeoutPolicy } from './timeout.js';

/** Lets pending promise callbacks run (one macrotask turn); no clock time passes. */
async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

const econn = (code: string) => Object.assign(new Error(code), { code });

describe('full-jitter backoff', () => {
  it('draws the n-th delay uniformly from [0, min(max, base·2ⁿ)]', () => {
    const f = fullJitter({ baseMs: 10, maxMs: 100, random: seededRandom(3) });
    for (let run = 0; run < 200; run++) {
      let b = f.next(undefined);
      const caps = [10, 20, 40, 80, 100, 100];
      for (const cap of caps) {
        expect(b.duration).toBeGreaterThanOrEqual(0);
        expect(b.duration).toBeLessThan(cap);
        b = b.next(undefined);
      }
    }
  });

  it('uses the injected randomness', () => {
    const d = (seed: number) => fullJitter({ random: seededRandom(seed) }).next(undefined).duration;
    expect(d(1)).toBe(d(1));
    expect(d(1)).not.toBe(d(2));
  });

  it('plugs into cockatiel’s own retry()', async () => {
    let n = 0;
    const p = cockatielRetry(handleAll, { maxAttempts: 2, backoff: fullJitter({ baseMs: 0, maxMs: 0, random: seededRandom(1) }) });
    await expect(p.execute(() => (++n < 3 ? Promise.reject(new Error('x')) : 'ok'))).resolves.toBe('ok');
  });
});

describe('retry budget', () => {
  it('allows the floor plus a share of requests in the window, then refuses', () => {
    const clock = new ManualClock();
    const b = new RetryBudget(clock, { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 });
    for (let i = 0; i < 100; i++) b.recordRequest();
    let granted = 0;
    while (b.tryRetry()) granted++;
    expect(granted).toBe(30); // 10 (floor: 1/s × 10 s) + 20 % of 100
    expect(b.stats()).toEqual({ requests: 100, retries: 30, allowed: 30 });
  });

  it('forgets requests and retries that slide out of the window', () => {
    const clock = new ManualClock();
    const b = new RetryBudget(clock, { ratio: 0, minPerSecond: 1, windowMs: 10_000 });
    for (let i = 0; i < 10; i++) expect(b.tryRetry()).toBe(true);
    expect(b.tryRetry()).toBe(false);
    clock.advance(5_000);
    expect(b.tryRetry()).toBe(false);
    clock.advance(5_000);
    expect(b.tryRetry()).toBe(true);
  });

  it('an outage cannot become a retry storm: retries stay ≤ 20 % of traffic', () => {
    const clock = new ManualClock();
    const b = new RetryBudget(clock, { ratio: 0.2, minPerSecond: 0 });
    let retries = 0;
    for (let i = 0; i < 10_000; i++) {
      b.recordRequest();
      // every request fails and would retry up to 3 times
      for (let r = 0; r < 3 && b.tryRetry(); r++) retries++;
      clock.advance(1);
    }
    expect(retries / 10_000).toBeLessThanOrEqual(0.2);
    expect(retries / 10_000).toBeGreaterThan(0.19);
  });
});

describe('RetryPolicy (manual clock)', () => {
  it('backs off on the clock between attempts, then succeeds', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const p = new RetryPolicy({ clock, maxRetries: 3, backoff: fullJitter({ baseMs: 100, maxMs: 1_000, random: seededRandom(1) }), shouldRetry: (o) => 'error' in o });
    p.onRetry((e) => delays.push(e.delay));
    const attempts: number[] = [];
    const done = p.execute(({ attempt }) => {
      attempts.push(attempt);
      if (attempt < 2) throw econn('ECONNREFUSED');
      return 'ok';
    });
    await flush();
    expect(attempts).toEqual([0]);
    clock.advance(delays[0]! - 0.001);
    await flush();
    expect(attempts).toEqual([0]);
    clock.advance(0.001);
    await flush();
    expect(attempts).toEqual([0, 1]);
    clock.advance(delays[1]!);
    await expect(done).resolves.toBe('ok');
    expect(attempts).toEqual([0, 1, 2]);
    expect(delays[0]).toBeLessThan(100);
    expect(delays[1]).toBeLessThan(200);
  });

  it('returns the last retryable value when attempts run out, discarding the others', async () => {
    const clock = new ManualClock();
    const discarded: number[] = [];
    const p = new RetryPolicy({
      clock,
      maxRetries: 2,
      backoff: fullJitter({ baseMs: 0, maxMs: 0, random: seededRandom(1) }),
      shouldRetry: (o) => 'value' in o && (o.value as { status: number }).status === 503,
      discard: (v) => discarded.push((v as { n: number }).n),
    });
    let n = 0;
    const res = await p.execute(() => ({ status: 503, n: n++ }));
    expect(res).toEqual({ status: 503, n: 2 });
    expect(discarded).toEqual([0, 1]);
  });

  it('stops when the budget says so', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget(clock, { ratio: 0, minPerSecond: 0.1 }); // one retry per 10 s window
    const p = new RetryPolicy({ clock, maxRetries: 5, budget, backoff: fullJitter({ baseMs: 0, maxMs: 0, random: seededRandom(1) }), shouldRetry: () => true });
    const reasons: string[] = [];
    p.onGiveUp((g) => reasons.push(g.reason));
    let calls = 0;
    await expect(p.execute(() => Promise.reject(new Error(`fail ${++calls}`)))).rejects.toThrow('fail 2');
    expect(reasons).toEqual(['budget']);
  });

  it('does not retry what the predicate refuses, and stops when the signal aborts', async () => {
    const clock = new ManualClock();
    const p = new RetryPolicy({ clock, backoff: fullJitter({ baseMs: 1_000, maxMs: 1_000, random: seededRandom(1) }), shouldRetry: (o) => 'error' in o && o.error.message === 'again' });
    await expect(p.execute(() => Promise.reject(new Error('final')))).rejects.toThrow('final');
    const ac = new AbortController();
    const run = p.execute(() => Promise.reject(new Error('again')), ac.signal);
    await flush();
    ac.abort(new Error('caller gave up'));
    await expect(run).rejects.toThrow('caller gave up');
  });
  it('begin / accepts / resume: a first attempt made outside execute counts alike and retries alike', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget(clock, { ratio: 0, minPerSecond: 0.1 }); // one retry per 10 s window
    const discarded: number[] = [];
    const successes: number[] = [];
    const p = new RetryPolicy({
      clock,
      maxRetries: 3,
      budget,
      backoff: fullJitter({ baseMs: 0, maxMs: 0, random: seededRandom(1) }),
      shouldRetry: (o) => 'value' in o && (o.value as { status: number }).status === 503,
      discard: (v) => discarded.push((v as { n: number }).n),
    });
    p.onSuccess(() => successes.push(1));
    // A success the first time: accepted on the spot, reported, no promise involved.
    const started = p.begin();
    expect(p.accepts({ value: { status: 200, n: 0 } }, started)).toBe(true);
    expect(successes).toEqual([1]);
    // A 503 the first time: not accepted; resume discards it and retries (attempt 1 on), once, as the budget allows.
    const again = p.begin();
    const first = { value: { status: 503, n: 1 } };
    expect(p.accepts(first, again)).toBe(false);
    const attempts: number[] = [];
    const res = await p.resume(first, ({ attempt }) => (attempts.push(attempt), { status: 503, n: 2 }), again);
    expect(attempts).toEqual([1]);
    expect(res).toEqual({ status: 503, n: 2 });
    expect(discarded).toEqual([1]);
    // An error the first time is never accepted, and resume throws it when it may not retry.
    expect(p.accepts({ error: new Error('down') }, p.begin())).toBe(false);
    await expect(p.resume({ error: new Error('down') }, () => ({ status: 200, n: 3 }), p.begin())).rejects.toThrow('down');
  });
});

describe('TimeoutPolicy (manual clock)', () => {
  it('aborts the inner signal and rejects with a timeout error when time is up', async () => {
    const clock = new ManualClock();
    const t = new TimeoutPolicy(clock, 500, 'lookup');
    let inner: AbortSignal | undefined;
    let fired = 0;
    t.onTimeout(() => fired++);
    const run = t.execute(({ signal }) => {
      inner = signal;
      return new Promise(() => {});
    });
    clock.advance(499);
    await flush();
    expect(inner!.aborted).toBe(false);
    clock.advance(1);
    await expect(run).rejects.toMatchObject({ code: 'timeout', details: { reason: 'timeout', timeoutMs: 500 } });
    expect(inner!.aborted).toBe(true);
    expect(fired).toBe(1);
  });

  it('passes results through and leaves no timer behind', async () => {
    const clock = new ManualClock();
    await expect(new TimeoutPolicy(clock, 500).execute(() => 42)).resolves.toBe(42);
    expect(clock.timers).toBe(0);
  });

  it('composes with cockatiel’s wrap()', async () => {
    const clock = new ManualClock();
    const policy = wrap(new TimeoutPolicy(clock, 1_000), new RetryPolicy({ clock, backoff: fullJitter({ baseMs: 400, maxMs: 400, random: { next: () => 0.99 } }), maxRetries: 10, shouldRetry: () => true }));
    let attempts = 0;
    const run = policy.execute(() => {
      attempts++;
      return Promise.reject(new Error('down'));
    });
    const outcome = run.catch((e: unknown) => e);
    await flush();
    for (let i = 0; i < 5; i++) {
      clock.advance(400);
      await flush();
    }
    expect(await outcome).toMatchObject({ code: 'timeout' });
    expect(attempts).toBe(3); // t=0, ≈396, ≈792; the overall timeout ends the wait for a fourth
  });
});

describe('CircuitBreaker (manual clock)', () => {
  it('opens after 5 consecutive failures, half-opens after the wait with one trial, closes on success', () => {
    const clock = new ManualClock();
    const cb = new CircuitBreaker(clock, { halfOpenAfterMs: 1_000 });
    const states: CircuitState[] = [];
    cb.onStateChange((s) => states.push(s));
    for (let i = 0; i < 4; i++) {
      expect(cb.tryAcquire()).toBe(true);
      cb.failure();
    }
    cb.tryAcquire();
    cb.success(); // a success resets the count
    for (let i = 0; i < 5; i++) {
      cb.tryAcquire();
      cb.failure();
    }
    expect(cb.state).toBe(CircuitState.Open);
    expect(cb.tryAcquire()).toBe(false);
    clock.advance(999);
    expect(cb.isAvailable()).toBe(false);
    clock.advance(1);
    expect(cb.state).toBe(CircuitState.HalfOpen);
    expect(cb.tryAcquire()).toBe(true);
    expect(cb.tryAcquire()).toBe(false); // a single trial
    cb.success();
    expect(cb.state).toBe(CircuitState.Closed);
    expect(states).toEqual([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });

  it('a failed trial reopens it for twice as long, capped', () => {
    const clock = new ManualClock();
    const cb = new CircuitBreaker(clock, { halfOpenAfterMs: 1_000, maxHalfOpenAfterMs: 3_000, breaker: new CountBreaker({ threshold: 0.5, size: 2, minimumNumberOfCalls: 2 }) });
    cb.tryAcquire();
    cb.failure();
    cb.tryAcquire();
    cb.failure();
    expect(cb.state).toBe(CircuitState.Open);
    for (const wait of [1_000, 2_000, 3_000, 3_000]) {
      clock.advance(wait - 1);
      expect(cb.tryAcquire()).toBe(false);
      clock.advance(1);
      expect(cb.tryAcquire()).toBe(true);
      cb.failure();
    }
  });

  it('a cancelled trial frees the slot; execute() counts values the caller calls failures', async () => {
    const clock = new ManualClock();
    const cb = new CircuitBreaker(clock, { halfOpenAfterMs: 10, isFailure: (v) => (v as number) >= 500 });
    for (let i = 0; i < 5; i++) await cb.execute(() => 503);
    await expect(cb.execute(() => 200)).rejects.toThrow(/open/i);
    clock.advance(10);
    expect(cb.tryAcquire()).toBe(true);
    cb.release();
    await expect(cb.execute(() => 200)).resolves.toBe(200);
    expect(cb.state).toBe(CircuitState.Closed);
  });
});

describe('outlier detection', () => {
  it('ejects after consecutive 5xx for a growing time, and never more than the allowed share', () => {
    const od = new OutlierDetector({ consecutive5xx: 3, baseEjectionMs: 1_000, maxEjectionMs: 2_500, maxEjectedShare: 0.5 });
    const s = new OutlierState();
    let now = 0;
    const fail3 = () => [0, 1, 2].map(() => od.observe(s, 'http-5xx', now, () => true)).some(Boolean);
    expect(fail3()).toBe(true);
    expect(s.ejectedUntil).toBe(1_000);
    now = 1_000;
    expect(fail3()).toBe(true);
    expect(s.ejectedUntil).toBe(1_000 + 2_000);
    now = 3_000;
    expect(fail3()).toBe(true);
    expect(s.ejectedUntil).toBe(3_000 + 2_500); // capped
    // A long healthy spell resets the multiplier.
    now = 5_500 + 2_501;
    expect(fail3()).toBe(true);
    expect(s.ejectedUntil - now).toBe(1_000);
    // The pool cap is the caller's answer.
    const t = new OutlierState();
    expect([0, 1, 2].map(() => od.observe(t, 'http-5xx', now, () => false)).some(Boolean)).toBe(false);
    expect(od.maxEjected(1)).toBe(0);
    expect(od.maxEjected(2)).toBe(1);
    expect(od.maxEjected(10)).toBe(5);
  });

  it('connection failures eject sooner; a success resets the streak; cancellations say nothing', () => {
    const od = new OutlierDetector({ consecutive5xx: 5, consecutiveConnectFailures: 2 });
    const s = new OutlierState();
    od.observe(s, 'connect', 0, () => true);
    od.observe(s, 'success', 0, () => true);
    od.observe(s, 'connect', 0, () => true);
    od.observe(s, 'cancelled', 0, () => true);
    expect(s.isEjected(0)).toBe(false);
    expect(od.observe(s, 'connect', 0, () => true)).toBe(true);
    expect(s.isEjected(0)).toBe(true);
  });
});

describe('error classification and idempotency', () => {
  it('tells connection failures, resets, timeouts and cancellations apart (through cause chains)', () => {
    expect(classifyError(econn('ECONNREFUSED'))).toBe('connect');
    expect(classifyError(new TypeError('fetch failed', { cause: econn('ECONNREFUSED') }))).toBe('connect');
    expect(classifyError(econn('UND_ERR_SOCKET'))).toBe('reset');
    expect(classifyError(econn('ECONNRESET'))).toBe('reset');
    expect(classifyError(econn('UND_ERR_HEADERS_TIMEOUT'))).toBe('timeout');
    expect(classifyError(new BeaconError('timeout', 'x'))).toBe('timeout');
    expect(classifyError(Object.assign(new Error('aborted'), { name: 'AbortError' }))).toBe('cancelled');
  });

  it('knows idempotent methods and Idempotency-Key', () => {
    expect(isIdempotent('get')).toBe(true);
    expect(isIdempotent('PUT')).toBe(true);
    expect(isIdempotent('POST')).toBe(false);
    expect(isIdempotent('POST', true)).toBe(true);
  });
});

describe('deadlines', () => {
  it('reads the header, counts down on the clock, and aborts its signal at the deadline', () => {
    const clock = new ManualClock();
    const d = readDeadline({ [DEADLINE_HEADER]: '250' }, { clock })!;
    expect(d.remainingMs()).toBe(250);
    const signal = d.signal;
    clock.advance(100);
    expect(d.headerValue()).toBe('150');
    expect(signal.aborted).toBe(false);
    clock.advance(150);
    expect(d.expired).toBe(true);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ code: 'timeout' });
    expect(d.headerValue()).toBe('0');
  });

  it('ignores malformed values and caps huge ones', () => {
    const clock = new ManualClock();
    expect(readDeadline({}, { clock })).toBeUndefined();
    expect(readDeadline({ [DEADLINE_HEADER]: '-5' }, { clock })).toBeUndefined();
    expect(readDeadline({ [DEADLINE_HEADER]: 'soon' }, { clock })).toBeUndefined();
    expect(readDeadline(new Headers({ [DEADLINE_HEADER]: '99999999' }), { clock, maxMs: 1_000 })!.remainingMs()).toBe(1_000);
    expect(Deadline.after(10, clock).headerValue()).toBe('10');
  });
});
