import { errors, ManualClock, type CheckSpec, type CheckStatus, type Random } from '@beacon/core';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthScheduler, type HealthListener, type RunTiming, type StatusChange } from './scheduler.js';
import type { CheckResult, CheckRunner, RunnerFactory } from './types.js';

/** Lets promise callbacks run; no time passes (the clock is manual). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

interface Call {
  checkId: string;
  at: number;
  signal: AbortSignal | undefined;
  finish(status: CheckStatus, output?: string): void;
  done: boolean;
}

/**
 * Runners whose runs end when the test says so (`manual`), or at once with the status the
 * test set for that check (`auto`). A cancelled manual run ends as a real runner's would.
 */
class FakeRunners implements RunnerFactory {
  calls: Call[] = [];
  next = new Map<string, CheckStatus>();
  manual = false;
  created = 0;
  constructor(private readonly clock: ManualClock) {}

  create(spec: CheckSpec): CheckRunner {
    if (spec.kind === 'script') throw errors.forbidden('script checks are disabled');
    this.created++;
    return {
      kind: 'http',
      run: (signal) =>
        new Promise<CheckResult>((resolve, reject) => {
          const at = this.clock.now();
          const call: Call = {
            checkId: spec.id,
            at,
            signal,
            done: false,
            finish: (status, output = `${status} from ${spec.url}`) => {
              if (call.done) return;
              call.done = true;
              resolve({ status, output, at, durationMs: this.clock.now() - at });
            },
          };
          this.calls.push(call);
          signal?.addEventListener('abort', () => call.finish('critical', 'cancelled'));
          if (spec.url === 'reject') return reject(new Error('runner bug'));
          if (!this.manual) call.finish(this.next.get(spec.id) ?? 'passing');
        }),
    };
  }

  running(): Call[] {
    return this.calls.filter((c) => !c.done);
  }
}

function spec(id: string, extra: Partial<CheckSpec> = {}): CheckSpec {
  return {
    id, name: id, kind: 'http', role: 'readiness', url: `http://127.0.0.1/${id}`, intervalMs: 10_000, timeoutMs: 1000,
    successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1, ...extra,
  };
}

function setup(opts: { maxInFlight?: number; random?: Random; listener?: Partial<HealthListener> } = {}) {
  const clock = new ManualClock();
  const t0 = clock.now();
  const runners = new FakeRunners(clock);
  const changes: StatusChange[] = [];
  const results: Array<{ checkId: string; result: CheckResult; timing: RunTiming }> = [];
  const errs: unknown[] = [];
  const scheduler = new HealthScheduler({
    clock,
    random: opts.random ?? { next: () => 0.5 },
    runners,
    maxInFlight: opts.maxInFlight,
    damping: { maxChanges: 3, windowMs: 60_000, holdDownMs: 30_000, maxHoldDownMs: 120_000, decayMs: 600_000 },
    listener: {
      onStatusChange: (c) => void changes.push(c),
      onResult: (checkId, result, timing) => void results.push({ checkId, result, timing }),
      onError: (_id, err) => void errs.push(err),
      ...opts.listener,
    },
  });
  return { clock, t0, runners, scheduler, changes, results, errs };
}

let open: HealthScheduler[] = [];
afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});
const track = <T extends { scheduler: HealthScheduler }>(x: T): T => (open.push(x.scheduler), x);

describe('HealthScheduler', () => {
  it('runs a new check at once, so a new instance is ready without waiting an interval', async () => {
    const { scheduler, runners, changes, t0 } = track(setup());
    scheduler.add(spec('a'));
    expect(runners.calls).toHaveLength(1);
    expect(runners.calls[0]!.at).toBe(t0);
    await flush();
    expect(changes).toEqual([{ checkId: 'a', from: 'critical', to: 'passing', output: 'passing from http://127.0.0.1/a', at: t0, cause: 'result' }]);
    expect(scheduler.explain('a')).toMatchObject({ status: 'passing', published: 'passing', runs: 1, nextRunAt: t0 + 10_000 });
  });

  it('spreads checks loaded in bulk over the first interval with the injected random', async () => {
    const { scheduler, runners, clock, t0 } = track(setup({ random: { next: () => 0.25 } }));
    scheduler.add(spec('a'), { start: 'spread', status: 'passing' });
    expect(runners.calls).toHaveLength(0);
    clock.advance(2499);
    expect(runners.calls).toHaveLength(0);
    clock.advance(1);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([2500]);
    await flush();
    clock.advance(10_000);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([2500, 12_500]);
  });

  it('does not drift: runs start on the planned grid however long each run takes', async () => {
    const { scheduler, runners, clock, t0, results } = track(setup());
    runners.manual = true;
    scheduler.add(spec('a'));
    for (let i = 0; i < 5; i++) {
      clock.advance(3_000); // each run takes 3 s
      runners.running()[0]!.finish('passing');
      await flush();
      clock.advance(7_000);
    }
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    expect(results.every((r) => r.timing.lateMs === 0)).toBe(true);
  });

  it('never overlaps runs of one check: a run longer than the interval absorbs the ticks', async () => {
    const { scheduler, runners, clock, t0 } = track(setup());
    runners.manual = true;
    scheduler.add(spec('a'));
    clock.advance(25_000);
    expect(runners.calls).toHaveLength(1);
    runners.running()[0]!.finish('passing');
    await flush();
    clock.advance(5_000); // the next grid point, 30 s
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 30_000]);
    expect(scheduler.explain('a')!.skipped).toBe(2);
    expect(scheduler.stats().skipped).toBe(2);
  });

  it('caps checks in flight and queues the rest in order, recording how late they started', async () => {
    const { scheduler, runners, clock, t0, results } = track(setup({ maxInFlight: 2 }));
    runners.manual = true;
    for (const id of ['a', 'b', 'c', 'd']) scheduler.add(spec(id));
    expect(runners.running().map((c) => c.checkId)).toEqual(['a', 'b']);
    expect(scheduler.stats()).toMatchObject({ inFlight: 2, queued: 2 });
    expect(scheduler.explain('c')!.state).toBe('queued');
    clock.advance(400);
    runners.running()[0]!.finish('passing');
    await flush();
    expect(runners.running().map((c) => c.checkId)).toEqual(['b', 'c']);
    clock.advance(100);
    runners.running()[0]!.finish('passing');
    await flush();
    expect(runners.running().map((c) => c.checkId)).toEqual(['c', 'd']);
    for (const c of runners.running()) c.finish('passing');
    await flush();
    expect(scheduler.stats()).toMatchObject({ inFlight: 0, queued: 0 });
    const lateness = Object.fromEntries(results.map((r) => [r.checkId, r.timing.lateMs]));
    expect(lateness).toEqual({ a: 0, b: 0, c: 400, d: 500 });
    expect(results.find((r) => r.checkId === 'd')!.timing).toEqual({ plannedAt: t0, startedAt: t0 + 500, lateMs: 500 });
  });

  it('reports every result but only status changes', async () => {
    const { scheduler, runners, clock, changes, results } = track(setup());
    scheduler.add(spec('a'));
    await flush();
    for (let i = 0; i < 4; i++) {
      clock.advance(10_000);
      await flush();
    }
    runners.next.set('a', 'warning');
    clock.advance(10_000);
    await flush();
    expect(results).toHaveLength(6);
    expect(changes.map((c) => `${c.from}→${c.to}`)).toEqual(['critical→passing', 'passing→warning']);
  });

  it('starts from the stored status: an unchanged result writes nothing', async () => {
    const { scheduler, changes } = track(setup());
    scheduler.add(spec('a'), { status: 'passing' });
    await flush();
    expect(changes).toHaveLength(0);
    expect(scheduler.status('a')).toBe('passing');
  });

  it('waits for an asynchronous write before reporting again, and retries a failed one after the next result', async () => {
    const writes: Array<{ change: StatusChange; ok(): void; fail(e: Error): void }> = [];
    const { scheduler, runners, clock, errs } = track(
      setup({
        listener: {
          onStatusChange: (change) =>
            new Promise<void>((ok, fail) => writes.push({ change, ok: () => ok(), fail })),
        },
      }),
    );
    scheduler.add(spec('a'));
    await flush();
    expect(writes).toHaveLength(1);
    writes[0]!.fail(new Error('store unavailable'));
    await flush();
    expect(errs).toHaveLength(1);
    expect(writes).toHaveLength(1); // no retry loop
    expect(scheduler.explain('a')!.published).toBe('critical');
    clock.advance(10_000); // next result (still passing) retries the write
    await flush();
    expect(writes).toHaveLength(2);
    expect(writes[1]!.change).toMatchObject({ from: 'critical', to: 'passing' });
    // While that write is pending the status moves on; the follow-up waits for it.
    runners.next.set('a', 'critical');
    clock.advance(10_000);
    await flush();
    expect(writes).toHaveLength(2);
    writes[1]!.ok();
    await flush();
    expect(writes).toHaveLength(3);
    expect(writes[2]!.change).toMatchObject({ from: 'passing', to: 'critical' });
    writes[2]!.ok();
    await flush();
    expect(scheduler.explain('a')!.published).toBe('critical');
  });

  it('holds a flapping check out, reports why, and lets it back in after the hold-down', async () => {
    const { scheduler, runners, clock, changes } = track(setup());
    scheduler.add(spec('a'));
    await flush();
    for (const s of ['critical', 'passing', 'critical'] as const) {
      runners.next.set('a', s);
      clock.advance(10_000);
      await flush();
    }
    expect(scheduler.holdDowns().map((h) => h.checkId)).toEqual(['a']);
    const held = changes.at(-1)!;
    expect(held).toMatchObject({ from: 'passing', to: 'critical', cause: 'hold_down' });
    expect(held.holdDown).toMatchObject({ offence: 1 });
    expect(held.output).toContain('flapping');
    runners.next.set('a', 'passing');
    clock.advance(10_000);
    await flush();
    expect(scheduler.status('a')).toBe('critical');
    expect(scheduler.explain('a')).toMatchObject({ filtered: 'passing', status: 'critical', flap: { holdDown: { offence: 1 } } });
    clock.advance(20_000); // the 30 s hold-down ends
    await flush();
    expect(changes.at(-1)).toMatchObject({ from: 'critical', to: 'passing', cause: 'hold_down_end' });
    expect(changes.at(-1)!.holdDown).toBeUndefined();
    expect(scheduler.holdDowns()).toEqual([]);
  });

  it('update keeps status and schedule for a threshold change, and runs at once for a new probe', async () => {
    const { scheduler, runners, clock, t0, changes } = track(setup());
    scheduler.add(spec('a'));
    await flush();
    clock.advance(1_000);
    scheduler.update(spec('a', { successesBeforePassing: 3, notes: 'x' }));
    expect(runners.calls).toHaveLength(1);
    expect(runners.created).toBe(1);
    scheduler.update(spec('a', { url: 'http://127.0.0.1/other' }));
    expect(runners.created).toBe(2);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 1_000]);
    await flush();
    expect(scheduler.status('a')).toBe('passing'); // kept across the update
    expect(changes).toHaveLength(1);
    clock.advance(10_000);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 1_000, 11_000]);
  });

  it('update of a check in flight cancels that run, ignores its result and runs the new definition', async () => {
    const { scheduler, runners, results } = track(setup());
    runners.manual = true;
    scheduler.add(spec('a'));
    const first = runners.calls[0]!;
    scheduler.update(spec('a', { url: 'http://127.0.0.1/v2' }));
    expect(first.signal!.aborted).toBe(true);
    await flush();
    expect(results).toHaveLength(0);
    expect(runners.running()).toHaveLength(1);
    runners.running()[0]!.finish('passing');
    await flush();
    expect(results.map((r) => r.result.output)).toEqual(['passing from http://127.0.0.1/v2']);
  });

  it('update of the interval moves the next tick on the old grid', async () => {
    const { scheduler, runners, clock, t0 } = track(setup());
    scheduler.add(spec('a'));
    await flush();
    clock.advance(2_000);
    scheduler.update(spec('a', { intervalMs: 5_000 }));
    clock.advance(3_000);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 5_000]);
    await flush();
    clock.advance(5_000);
    expect(runners.calls.map((c) => c.at - t0)).toEqual([0, 5_000, 10_000]);
  });

  it('a refused update leaves the running definition alone', async () => {
    const { scheduler } = track(setup());
    scheduler.add(spec('a'));
    expect(() => scheduler.update(spec('a', { kind: 'script', args: ['true'] }))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(scheduler.explain('a')!.kind).toBe('http');
    expect(() => scheduler.update(spec('zzz'))).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('remove cancels the timer and the run in flight, and drops its result', async () => {
    const { scheduler, runners, clock, results, changes } = track(setup());
    runners.manual = true;
    scheduler.add(spec('a'));
    scheduler.add(spec('b'));
    const timers = clock.timers;
    expect(scheduler.remove('a')).toBe(true);
    expect(scheduler.remove('a')).toBe(false);
    expect(clock.timers).toBe(timers - 1);
    expect(runners.calls[0]!.signal!.aborted).toBe(true);
    await flush();
    expect(results.map((r) => r.checkId)).toEqual([]);
    expect(changes).toEqual([]);
    expect(scheduler.has('a')).toBe(false);
    expect(scheduler.stats().inFlight).toBe(1);
  });

  it('refuses ttl checks and checks the runner factory refuses', () => {
    const { scheduler } = track(setup());
    expect(() => scheduler.add(spec('t', { kind: 'ttl', ttlMs: 5000 }))).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => scheduler.add(spec('s', { kind: 'script', args: ['true'] }))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(scheduler.size).toBe(0);
  });

  it('turns a runner that rejects into a critical result instead of crashing', async () => {
    const { scheduler, changes } = track(setup());
    scheduler.add(spec('a', { url: 'reject' }), { status: 'passing' });
    await flush();
    expect(changes).toMatchObject([{ from: 'passing', to: 'critical', output: 'check runner failed: runner bug' }]);
  });

  it('survives a listener that throws, reporting the error', async () => {
    const { scheduler, errs } = track(
      setup({
        listener: {
          onStatusChange: () => {
            throw new Error('listener bug');
          },
          onResult: () => {
            throw new Error('metrics bug');
          },
        },
      }),
    );
    scheduler.add(spec('a'));
    await flush();
    expect(errs.map((e) => (e as Error).message)).toEqual(['metrics bug', 'listener bug']);
    expect(scheduler.explain('a')!.published).toBe('critical');
  });

  it('close cancels every timer, waits for runs in flight, and refuses new checks', async () => {
    const { scheduler, runners, clock, results } = setup();
    runners.manual = true;
    for (const id of ['a', 'b', 'c']) scheduler.add(spec(id));
    scheduler.add(spec('d'), { start: 'spread' });
    let closed = false;
    const p = scheduler.close().then(() => (closed = true));
    expect(runners.calls.every((c) => c.signal!.aborted)).toBe(true);
    expect(clock.timers).toBe(0);
    await p;
    expect(closed).toBe(true);
    expect(results).toHaveLength(0);
    clock.advance(60_000);
    expect(runners.calls).toHaveLength(3);
    expect(() => scheduler.add(spec('e'))).toThrow(expect.objectContaining({ code: 'unavailable' }));
    // Closing again is harmless.
    await scheduler.close();
  });

  it('close waits for a runner that takes its time to stop', async () => {
    const { scheduler, clock } = setup();
    let release!: () => void;
    const slow: RunnerFactory = {
      create: () => ({
        kind: 'tcp',
        run: () => new Promise<CheckResult>((r) => (release = () => r({ status: 'passing', output: '', at: clock.now(), durationMs: 0 }))),
      }),
    };
    const s = new HealthScheduler({ clock, random: { next: () => 0 }, runners: slow, listener: { onStatusChange: () => {} } });
    s.add(spec('a'));
    void scheduler.close();
    let closed = false;
    const p = s.close().then(() => (closed = true));
    await flush();
    expect(closed).toBe(false);
    release();
    await p;
    expect(closed).toBe(true);
  });
});
