import { errors, type CheckSpec, type CheckStatus, type Clock, type Random, type Timer } from '@beacon/core';
import type { FlapDampingOptions, HoldDown } from './flap.js';
import { describeError } from './runners/result.js';
import { StatusHandler, type StatusCause, type StatusSnapshot } from './status.js';
import { isActiveKind, type ActiveCheckKind, type CheckResult, type CheckRunner, type RunnerFactory } from './types.js';

/** A change of a check's published status: the only thing the registry needs to write. */
export interface StatusChange {
  checkId: string;
  from: CheckStatus;
  to: CheckStatus;
  output: string;
  at: number;
  cause: StatusCause;
  /** Present while the check is held down for flapping. */
  holdDown?: HoldDown;
}

/** When a run was due and when it actually started (lateness comes from the in-flight cap or a busy loop). */
export interface RunTiming {
  plannedAt: number;
  startedAt: number;
  lateMs: number;
}

/**
 * Where the scheduler reports. `onStatusChange` is called only when the published status
 * changes; when it returns a promise, the change counts as published once it resolves. A
 * rejected or throwing `onStatusChange` is retried after the next result (never in a loop).
 */
export interface HealthListener {
  onStatusChange(change: StatusChange): void | Promise<unknown>;
  /** Every result, for metrics and for output kept in memory. Must not throw. */
  onResult?(checkId: string, result: CheckResult, timing: RunTiming, kind: ActiveCheckKind): void;
  /** Failures of the listener itself, so background errors are never swallowed. */
  onError?(checkId: string, err: unknown): void;
}

export interface HealthSchedulerOptions {
  clock: Clock;
  random: Random;
  runners: RunnerFactory;
  listener: HealthListener;
  /** Checks running at once; more wait in a FIFO queue. Default 1024: checks wait on I/O, and a lower cap showed as start lateness (bench/health). */
  maxInFlight?: number;
  /** Flap damping for every check; `false` turns it off. Default DEFAULT_FLAP_DAMPING. */
  damping?: Partial<FlapDampingOptions> | false;
  /** Interval when a spec names none. Default 10 s. */
  defaultIntervalMs?: number;
}

export interface AddCheckOptions {
  /** The check's status as stored now; changes are reported relative to it. Default critical. */
  status?: CheckStatus;
  /**
   * `now` (default): first run at once, so a new instance is ready as soon as it answers.
   * `spread`: first run after a random delay within one interval, for checks loaded in bulk
   * (server start, agent reload) so they do not all fire together.
   */
  start?: 'now' | 'spread';
}

export type RunState = 'idle' | 'queued' | 'running';

export interface CheckExplain extends StatusSnapshot {
  checkId: string;
  kind: CheckSpec['kind'];
  intervalMs: number;
  /** The status last accepted by the listener (what the store holds). */
  published: CheckStatus;
  state: RunState;
  nextRunAt?: number;
  runs: number;
  /** Ticks skipped because the previous run of this check had not finished. */
  skipped: number;
  lastTiming?: RunTiming;
}

export interface SchedulerStats {
  checks: number;
  inFlight: number;
  queued: number;
  runs: number;
  skipped: number;
}

/** Fields that change what a run does; a change to any of them rebuilds the runner and runs at once. */
const PROBE_FIELDS = ['kind', 'url', 'method', 'headers', 'body', 'tlsSkipVerify', 'target', 'grpcService', 'grpcUseTls', 'args', 'timeoutMs'] as const;

interface Entry {
  spec: CheckSpec;
  runner: CheckRunner;
  handler: StatusHandler;
  intervalMs: number;
  /** The planned time of the next tick; ticks sit on a fixed grid, so runs never drift. */
  nextAt: number;
  timer: Timer | undefined;
  state: RunState;
  queuedFor: number;
  abort: AbortController | undefined;
  /** Run again as soon as the current (cancelled) run ends: the definition changed under it. */
  rerun: boolean;
  published: CheckStatus;
  writing: boolean;
  /** Set while a result is being recorded, so it is reconciled once, after recording. */
  recording: boolean;
  removed: boolean;
  runs: number;
  skipped: number;
  lastTiming: RunTiming | undefined;
}

/**
 * Owns every active check's timer. One run per check at a time, at most `maxInFlight` runs in
 * total, runs planned on a fixed grid (`first + k × interval`) rather than from the end of the
 * previous run, and `close()` cancels everything and waits for what is in flight.
 */
export class HealthScheduler {
  private readonly entries = new Map<string, Entry>();
  /** Insertion-ordered: a FIFO with O(1) removal. */
  private readonly queue = new Set<Entry>();
  private readonly running = new Set<Promise<void>>();
  private readonly writes = new Set<Promise<void>>();
  private inFlight = 0;
  private totalRuns = 0;
  private totalSkipped = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly maxInFlight: number;

  constructor(private readonly opts: HealthSchedulerOptions) {
    this.maxInFlight = Math.max(1, Math.floor(opts.maxInFlight ?? 1024));
  }

  /** Starts running a check; adding one that exists updates it. Throws when the check may not run here. */
  add(spec: CheckSpec, options: AddCheckOptions = {}): void {
    if (this.closed) throw errors.unavailable('the health scheduler is closed');
    if (this.entries.has(spec.id)) return this.update(spec);
    if (!isActiveKind(spec.kind)) throw errors.invalid(`check ${spec.id} is a ttl check; the scheduler runs active checks only`);
    const intervalMs = this.intervalOf(spec);
    const runner = this.opts.runners.create(spec);
    const initial = options.status ?? 'critical';
    const e: Entry = {
      spec,
      runner,
      handler: undefined as unknown as StatusHandler,
      intervalMs,
      nextAt: 0,
      timer: undefined,
      state: 'idle',
      queuedFor: 0,
      abort: undefined,
      rerun: false,
      published: initial,
      writing: false,
      recording: false,
      removed: false,
      runs: 0,
      skipped: 0,
      lastTiming: undefined,
    };
    e.handler = new StatusHandler({
      clock: this.opts.clock,
      thresholds: spec,
      initial,
      damping: this.opts.damping ?? {},
      // Results reconcile once after recording; this catches changes made by the hold-down timer.
      onChange: () => {
        if (!e.recording) this.reconcile(e);
      },
    });
    this.entries.set(spec.id, e);
    const now = this.opts.clock.now();
    if ((options.start ?? 'now') === 'now') {
      this.enqueue(e, now);
      this.arm(e, now + intervalMs);
    } else {
      this.arm(e, now + Math.floor(this.opts.random.next() * intervalMs));
    }
  }

  /**
   * Applies a new definition, keeping the check's status, counters and flap history (as Consul
   * keeps check state across re-registration). A changed probe runs at once; a changed interval
   * moves the next tick; thresholds apply from the next result.
   */
  update(spec: CheckSpec): void {
    if (this.closed) throw errors.unavailable('the health scheduler is closed');
    const e = this.entries.get(spec.id);
    if (!e) throw errors.notFound(`check ${spec.id} is not scheduled`);
    const probeChanged = PROBE_FIELDS.some((k) => JSON.stringify(e.spec[k]) !== JSON.stringify(spec[k]));
    const intervalMs = this.intervalOf(spec);
    if (probeChanged) {
      if (!isActiveKind(spec.kind)) throw errors.invalid(`check ${spec.id} is a ttl check; the scheduler runs active checks only`);
      // Build first: if the new definition is refused, the old one keeps running untouched.
      e.runner = this.opts.runners.create(spec);
    }
    e.spec = spec;
    e.handler.setThresholds(spec);
    const now = this.opts.clock.now();
    if (probeChanged) {
      e.timer?.cancel();
      e.intervalMs = intervalMs;
      if (e.state === 'running') {
        // Its result would describe the old definition.
        e.rerun = true;
        e.abort?.abort();
      } else if (e.state === 'idle') {
        this.enqueue(e, now);
      }
      this.arm(e, now + intervalMs);
    } else if (intervalMs !== e.intervalMs) {
      const lastTick = e.nextAt - e.intervalMs;
      e.timer?.cancel();
      e.intervalMs = intervalMs;
      this.arm(e, Math.max(now, lastTick + intervalMs));
    }
  }

  /** Stops a check, cancelling its run if one is in flight. Returns whether it existed. */
  remove(checkId: string): boolean {
    const e = this.entries.get(checkId);
    if (!e) return false;
    this.entries.delete(checkId);
    this.stop(e);
    return true;
  }

  has(checkId: string): boolean {
    return this.entries.has(checkId);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The effective status of a check (critical while held down), if it is scheduled. */
  status(checkId: string): CheckStatus | undefined {
    return this.entries.get(checkId)?.handler.status;
  }

  /** Everything known about a check, for `explain`: last result and output, counters, hold-down, timing. */
  explain(checkId: string): CheckExplain | undefined {
    const e = this.entries.get(checkId);
    if (!e) return undefined;
    const x: CheckExplain = {
      ...e.handler.snapshot(),
      checkId,
      kind: e.spec.kind,
      intervalMs: e.intervalMs,
      published: e.published,
      state: e.state,
      runs: e.runs,
      skipped: e.skipped,
    };
    if (e.timer) x.nextRunAt = e.nextAt;
    if (e.lastTiming) x.lastTiming = { ...e.lastTiming };
    return x;
  }

  /** Checks held down for flapping right now. */
  holdDowns(): Array<{ checkId: string; holdDown: HoldDown }> {
    const out: Array<{ checkId: string; holdDown: HoldDown }> = [];
    for (const [checkId, e] of this.entries) {
      const hd = e.handler.holdDown;
      if (hd) out.push({ checkId, holdDown: { ...hd } });
    }
    return out;
  }

  stats(): SchedulerStats {
    return { checks: this.entries.size, inFlight: this.inFlight, queued: this.queue.size, runs: this.totalRuns, skipped: this.totalSkipped };
  }

  /** Cancels every timer and run, then waits for runs and status writes still in flight. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    for (const e of this.entries.values()) this.stop(e);
    this.entries.clear();
    this.queue.clear();
    this.closing = Promise.allSettled([...this.running, ...this.writes]).then(() => undefined);
    return this.closing;
  }

  private intervalOf(spec: CheckSpec): number {
    const iv = spec.intervalMs ?? this.opts.defaultIntervalMs ?? 10_000;
    if (!Number.isFinite(iv) || iv <= 0) throw errors.invalid(`check ${spec.id}: intervalMs must be positive`);
    return iv;
  }

  private stop(e: Entry): void {
    e.removed = true;
    e.timer?.cancel();
    e.timer = undefined;
    this.queue.delete(e);
    e.abort?.abort();
    e.handler.dispose();
  }

  /** Sets the next tick at `at`, or at the first grid point not in the past when the loop fell behind. */
  private arm(e: Entry, at: number): void {
    const now = this.opts.clock.now();
    if (at < now) at += Math.ceil((now - at) / e.intervalMs) * e.intervalMs;
    e.nextAt = at;
    e.timer = this.opts.clock.setTimeout(() => this.tick(e), at - now);
  }

  private tick(e: Entry): void {
    e.timer = undefined;
    if (e.removed) return;
    const planned = e.nextAt;
    if (e.state === 'idle') this.enqueue(e, planned);
    else {
      // Never two runs of one check at once: a slow or queued run absorbs the tick.
      e.skipped++;
      this.totalSkipped++;
    }
    this.arm(e, planned + e.intervalMs);
  }

  private enqueue(e: Entry, plannedAt: number): void {
    e.state = 'queued';
    e.queuedFor = plannedAt;
    this.queue.add(e);
    this.pump();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.maxInFlight && this.queue.size > 0) {
      const e = this.queue.values().next().value as Entry;
      this.queue.delete(e);
      this.start(e);
    }
  }

  private start(e: Entry): void {
    const { clock } = this.opts;
    e.state = 'running';
    this.inFlight++;
    this.totalRuns++;
    const ac = new AbortController();
    e.abort = ac;
    const startedAt = clock.now();
    const timing: RunTiming = { plannedAt: e.queuedFor, startedAt, lateMs: Math.max(0, startedAt - e.queuedFor) };
    let p: Promise<CheckResult>;
    try {
      p = e.runner.run(ac.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    const done: Promise<void> = p
      .catch((err): CheckResult => ({
        status: 'critical',
        output: `check runner failed: ${describeError(err)}`,
        at: startedAt,
        durationMs: Math.max(0, clock.now() - startedAt),
      }))
      .then((result) => {
        if (!e.removed && !ac.signal.aborted) this.handleResult(e, result, timing);
      })
      .catch((err) => this.report(e.spec.id, err))
      .finally(() => {
        this.inFlight--;
        this.running.delete(done);
        if (e.abort === ac) e.abort = undefined;
        if (e.state === 'running') e.state = 'idle';
        if (e.rerun && !e.removed) {
          e.rerun = false;
          this.enqueue(e, clock.now());
        }
        this.pump();
      });
    this.running.add(done);
  }

  private handleResult(e: Entry, result: CheckResult, timing: RunTiming): void {
    e.runs++;
    e.lastTiming = timing;
    try {
      this.opts.listener.onResult?.(e.spec.id, result, timing, e.runner.kind);
    } catch (err) {
      this.report(e.spec.id, err);
    }
    e.recording = true;
    try {
      e.handler.record(result);
    } finally {
      e.recording = false;
    }
    // Also the retry point for a change whose write failed earlier.
    this.reconcile(e);
  }

  /** Publishes the effective status if it differs from what the listener last accepted; one write at a time per check. */
  private reconcile(e: Entry): void {
    if (e.removed || this.closed || e.writing) return;
    const to = e.handler.status;
    if (to === e.published) return;
    const change: StatusChange = {
      checkId: e.spec.id,
      from: e.published,
      to,
      output: e.handler.output,
      at: this.opts.clock.now(),
      cause: e.handler.currentCause,
    };
    const hd = e.handler.holdDown;
    if (hd) change.holdDown = { ...hd };
    let r: void | Promise<unknown>;
    try {
      r = this.opts.listener.onStatusChange(change);
    } catch (err) {
      this.report(e.spec.id, err);
      return;
    }
    if (!r || typeof (r as Promise<unknown>).then !== 'function') {
      e.published = to;
      return;
    }
    e.writing = true;
    const w: Promise<void> = (r as Promise<unknown>).then(
      () => {
        e.writing = false;
        this.writes.delete(w);
        e.published = to;
        // The status may have moved on while the write was in flight.
        this.reconcile(e);
      },
      (err) => {
        e.writing = false;
        this.writes.delete(w);
        this.report(e.spec.id, err);
      },
    );
    this.writes.add(w);
  }

  private report(checkId: string, err: unknown): void {
    try {
      this.opts.listener.onError?.(checkId, err);
    } catch {
      // The error reporter itself failed; nothing further can be done without looping.
    }
  }
}
