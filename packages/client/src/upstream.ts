import { bulkhead as cockatielBulkhead, EventEmitter, type BulkheadPolicy, type Event, type FailureReason } from 'cockatiel';
import { BeaconError, errors, inAnswers, type Clock, type Random } from '@beacon/core';
import { createBalancer, type Balancer, type BalancerSpec } from './balancers/index.js';
import { EndpointState, type SlowStartOptions } from './endpoint.js';
import type { DiscoverFilter, ResolvedFilter } from './filter.js';
import { fullJitter } from './resilience/backoff.js';
import { CircuitBreaker, type CircuitBreakerOptions } from './resilience/breaker.js';
import { RetryBudget, type RetryBudgetOptions } from './resilience/budget.js';
import { classifyError } from './resilience/classify.js';
import { OutlierDetector, type Outcome, type OutlierOptions } from './resilience/outlier.js';
import { RetryPolicy } from './resilience/retry.js';
import { clockTimeout } from './time.js';
import type { ServiceView, ViewEvent } from './view.js';

export interface RetrySettings {
  /** Retries after the first attempt (default 2). */
  maxRetries?: number;
  /** Full-jitter backoff: first cap (default 25 ms) … largest cap (default 1 s). */
  baseMs?: number;
  maxMs?: number;
  /** Share of traffic retries may add (see {@link RetryBudget}). */
  budget?: RetryBudgetOptions;
  /** Answers worth another attempt on another instance (default 502, 503, 504). */
  statuses?: number[];
  /** Retry non-idempotent requests too, beyond connection failures (default false). */
  nonIdempotent?: boolean;
}

/** How the SDK talks to one service. Every field has a default; set them per service or for all. */
export interface ServicePolicy {
  /** Default `least-request` (power of two choices). */
  balancer?: BalancerSpec;
  /**
   * Which instances are candidates (default: ready and passing), and from which datacenter:
   * `dc` for another one, `failover` for the nearest ones with a ready instance when the local
   * DC has none (live: traffic goes home when it recovers).
   */
  filter?: DiscoverFilter;
  /** Use this named port of each instance instead of its main port. */
  port?: string;
  /** Dispatcher path: take the consistent-hashing key from this request header. */
  hashHeader?: string;
  /** Ramp newly ready instances up over a window (off by default). */
  slowStart?: SlowStartOptions | false;
  /** Per-instance circuit breaker (on by default: 5 consecutive failures, 5 s open). */
  breaker?: CircuitBreakerOptions | false;
  /** Outlier ejection (on by default). */
  outlier?: OutlierOptions | false;
  /** Retries (on by default). */
  retry?: RetrySettings | false;
  /** Concurrency limit for the whole service (off by default). */
  bulkhead?: { maxConcurrent: number; maxQueue?: number } | false;
  /** Requests in flight per instance: a full instance is passed over, all full fails with `too_many_requests` (off by default). */
  maxInflightPerInstance?: number;
  /** Overall time for a call, retries included (client.fetch; none by default). */
  timeoutMs?: number;
  /** Time for each attempt (client.fetch; none by default). */
  attemptTimeoutMs?: number;
  /** How long the first request waits for discovery's first answer (default 10 s). */
  discoveryTimeoutMs?: number;
}

interface Deps {
  clock: Clock;
  random: Random;
  /** The caller's zone (zone-aware routing). */
  zone: string;
}

/** Which retry policy a request gets. */
export type RetryClass = 'idempotent' | 'connect-only' | 'none';

/**
 * Everything the SDK knows about one service: the live view, an endpoint per instance with its
 * measurements and breaker, the balancer, outlier detection, and the per-service policies
 * (retry budget, bulkhead, prebuilt retry policies). Transports pick through it and report every
 * outcome back. Get one from `client.upstream(name)`.
 *
 * @example
 * const up = client.upstream('payments');
 * up.candidates().map((e) => e.id);
 */
export class Upstream {
  readonly balancer: Balancer;
  readonly budget: RetryBudget;
  readonly bulkhead: BulkheadPolicy | undefined;
  readonly outlier: OutlierDetector | undefined;
  readonly retryStatuses: ReadonlySet<number>;
  private readonly retries: Record<RetryClass, RetryPolicy | undefined>;
  private readonly byId = new Map<string, EndpointState>();
  private all: EndpointState[] = [];
  private eligible: EndpointState[] = [];
  private dirty = true;
  private nextCheckAt = Infinity;
  private seenFirst = false;
  private readonly unsubscribe: { dispose(): void };
  private readonly ejectEmitter = new EventEmitter<{ endpoint: EndpointState; until: number }>();
  private readonly maxInflight: number;
  /** Fires when outlier detection ejects an instance (metrics, logs). */
  readonly onEject: Event<{ endpoint: EndpointState; until: number }> = this.ejectEmitter.addListener;

  constructor(
    readonly service: string,
    readonly view: ServiceView,
    readonly policy: ServicePolicy,
    private readonly deps: Deps,
    /** The user's filter: readiness is judged here, the view itself keeps not-ready instances for zone accounting. */
    private readonly readiness: ResolvedFilter,
  ) {
    this.balancer = createBalancer(policy.balancer ?? 'least-request', { random: deps.random, zone: deps.zone });
    const r = policy.retry === false ? undefined : (policy.retry ?? {});
    this.budget = new RetryBudget(deps.clock, r?.budget);
    this.retryStatuses = new Set(r?.statuses ?? [502, 503, 504]);
    this.outlier = policy.outlier === false ? undefined : new OutlierDetector(policy.outlier);
    this.bulkhead = policy.bulkhead ? cockatielBulkhead(policy.bulkhead.maxConcurrent, policy.bulkhead.maxQueue ?? 0) : undefined;
    this.maxInflight = policy.maxInflightPerInstance ?? Infinity;
    if (!(this.maxInflight >= 1)) throw errors.invalid('maxInflightPerInstance must be ≥ 1');
    this.retries = {
      idempotent: r ? this.retryPolicy(r, 'idempotent') : undefined,
      'connect-only': r ? this.retryPolicy(r, r.nonIdempotent ? 'idempotent' : 'connect-only') : undefined,
      none: undefined,
    };
    this.unsubscribe = view.onChange((events) => this.onView(events));
    if (view.isSynced) this.onView(view.instances().map((instance) => ({ type: 'added', instance })));
  }

  /**
   * Endpoints of every known instance (ready or not).
   *
   * @example
   * up.endpoints().filter((e) => e.inflight > 10);
   */
  endpoints(): readonly EndpointState[] {
    return this.all;
  }

  /**
   * The endpoints a pick may choose now (ready, not ejected, circuit not open).
   *
   * @example
   * up.candidates().length;
   */
  candidates(now = this.deps.clock.now()): readonly EndpointState[] {
    if (this.dirty || now >= this.nextCheckAt) this.rebuild(now);
    return this.eligible;
  }

  /**
   * The retry policy for a class of request (undefined: no retries).
   *
   * @example
   * await up.retryFor('idempotent')?.execute(() => call());
   */
  retryFor(cls: RetryClass): RetryPolicy | undefined {
    return this.retries[cls];
  }

  /**
   * Waits for discovery's first answer, up to the discovery timeout or `withinMs` (a call's own
   * deadline), whichever is shorter. Fails with `unavailable` / `discovery`, naming the last
   * error discovery met (a refused connection…), when no answer came in time.
   *
   * @example
   * await up.whenReady(signal, 1_500);
   */
  async whenReady(signal?: AbortSignal, withinMs = Infinity): Promise<void> {
    if (this.view.isSynced) return;
    const own = this.policy.discoveryTimeoutMs ?? 10_000;
    const ms = Math.max(0, Math.min(own, withinMs));
    const t = clockTimeout(this.deps.clock, ms, `discovery of ${this.service}`, signal);
    try {
      await Promise.race([
        this.view.ready(),
        new Promise<never>((_, reject) => t.signal.addEventListener('abort', () => reject(t.signal.reason), { once: true })),
      ]);
    } catch (err) {
      if (signal?.aborted) throw err;
      const limit = ms < own ? "the call's timeout" : 'discoveryTimeoutMs';
      const last = this.view.state.error?.message ?? (err as Error).message;
      throw new BeaconError('unavailable', `no answer from Beacon about ${this.service} within ${Math.round(ms)} ms (${limit}): ${last}`, {
        reason: 'discovery',
        service: this.service,
        waitedMs: Math.round(ms),
      });
    } finally {
      t.cancel();
    }
  }

  /**
   * Picks an endpoint and admits the request through its circuit breaker. `avoid` lists
   * instances already tried by this call (used unless nothing else is left). The caller must
   * report the outcome ({@link responded} / {@link failed}) and {@link finished}.
   *
   * @example
   * const ep = upstream.pick();
   */
  pick(key?: string, avoid?: ReadonlySet<string>): EndpointState {
    const now = this.deps.clock.now();
    let cands = this.candidates(now);
    if (avoid && avoid.size) {
      const rest = cands.filter((e) => !avoid.has(e.id));
      if (rest.length) cands = rest;
    }
    if (this.maxInflight !== Infinity && cands.length) {
      cands = cands.filter((e) => e.inflight < this.maxInflight);
      if (!cands.length) {
        throw new BeaconError('too_many_requests', `every instance of ${this.service} has ${this.maxInflight} requests in flight (maxInflightPerInstance)`, {
          reason: 'bulkhead',
          service: this.service,
        });
      }
    }
    for (let tries = 0; tries < 3 && cands.length; tries++) {
      const ep = this.balancer.pick(cands, { now, key, all: this.all });
      if (!ep) break;
      if (!ep.breaker || ep.breaker.tryAcquire()) return ep;
      cands = cands.filter((e) => e !== ep);
    }
    throw this.noInstance(now);
  }

  /**
   * A request was sent to `ep` (counts it in flight).
   *
   * @example
   * up.started(ep);
   */
  started(ep: EndpointState): void {
    ep.inflight++;
  }

  /**
   * `ep` answered with `status` after `ms`: latency, breaker and outlier detection learn from it.
   *
   * @example
   * up.responded(ep, 200, 3.2);
   */
  responded(ep: EndpointState, status: number, ms: number): void {
    const now = this.deps.clock.now();
    ep.observeLatency(ms, now);
    this.record(ep, status >= 500 ? 'http-5xx' : 'success', now);
  }

  /**
   * The request to `ep` failed before an answer; returns how the failure was classified.
   *
   * @example
   * up.failed(ep, err, elapsedMs); // 'connect' | 'reset' | 'timeout' | 'cancelled'
   */
  failed(ep: EndpointState, err: unknown, ms: number): Outcome {
    const now = this.deps.clock.now();
    const outcome = classifyError(err);
    if (outcome === 'timeout') ep.observeLatency(ms, now);
    this.record(ep, outcome, now);
    return outcome;
  }

  /**
   * The exchange with `ep` is over (answer read, or failed).
   *
   * @example
   * up.finished(ep);
   */
  finished(ep: EndpointState): void {
    if (ep.inflight > 0) ep.inflight--;
  }

  /**
   * Stops following the view (the client closes the view itself).
   *
   * @example
   * up.close();
   */
  close(): void {
    this.unsubscribe.dispose();
  }

  private record(ep: EndpointState, outcome: Outcome, now: number): void {
    if (ep.breaker) {
      if (outcome === 'success') ep.breaker.success();
      else if (outcome === 'cancelled') ep.breaker.release();
      else ep.breaker.failure();
    }
    if (this.outlier && this.outlier.observe(ep.outlier, outcome, now, () => this.ejectedCount(now) < this.outlier!.maxEjected(this.readyCount()))) {
      this.dirty = true;
      if (this.ejectEmitter.size) this.ejectEmitter.emit({ endpoint: ep, until: ep.outlier.ejectedUntil });
    }
  }

  private ejectedCount(now: number): number {
    let n = 0;
    for (const e of this.all) if (e.outlier.isEjected(now)) n++;
    return n;
  }

  private readyCount(): number {
    let n = 0;
    for (const e of this.all) if (inAnswers(e.instance, this.readiness.passing)) n++;
    return n;
  }

  private rebuild(now: number): void {
    const out: EndpointState[] = [];
    let next = Infinity;
    for (const e of this.all) {
      if (!inAnswers(e.instance, this.readiness.passing)) continue;
      if (e.outlier.isEjected(now)) {
        next = Math.min(next, e.outlier.ejectedUntil);
        continue;
      }
      if (e.breaker && !e.breaker.isAvailable()) {
        if (e.breaker.reopensAt > now) next = Math.min(next, e.breaker.reopensAt);
        continue;
      }
      out.push(e);
    }
    this.eligible = out;
    this.nextCheckAt = next;
    this.dirty = false;
  }

  private onView(events: readonly ViewEvent[]): void {
    const now = this.deps.clock.now();
    const initial = !this.seenFirst;
    this.seenFirst = true;
    for (const ev of events) {
      switch (ev.type) {
        case 'added': {
          if (this.byId.has(ev.instance.id)) break;
          const ready = inAnswers(ev.instance, this.readiness.passing);
          this.byId.set(ev.instance.id, this.newEndpoint(ev.instance, initial && ready ? -Infinity : now, now));
          break;
        }
        case 'changed': {
          const ep = this.byId.get(ev.instance.id);
          if (!ep) break;
          const wasReady = inAnswers(ep.instance, this.readiness.passing);
          ep.setInstance(ev.instance);
          if (!wasReady && inAnswers(ev.instance, this.readiness.passing)) ep.readySince = now;
          break;
        }
        case 'removed':
          this.byId.delete(ev.instance.id);
          break;
      }
    }
    this.all = [...this.byId.values()];
    this.dirty = true;
  }

  private newEndpoint(instance: EndpointState['instance'], readySince: number, now: number): EndpointState {
    const breaker = this.policy.breaker === false ? undefined : new CircuitBreaker(this.deps.clock, this.policy.breaker ?? {});
    if (breaker) breaker.onStateChange(() => (this.dirty = true));
    // A newcomer starts at the pool's mean latency, neither flooded nor starved.
    let seed = 0;
    for (const e of this.all) seed += e.latencyMs(now);
    seed = this.all.length ? seed / this.all.length : 0;
    const ep = new EndpointState(instance, this.policy.port, breaker, this.policy.slowStart || undefined, readySince, seed, now);
    if (breaker) {
      breaker.onHalfOpen(() => (this.dirty = true));
    }
    return ep;
  }

  private noInstance(now: number): BeaconError {
    let notReady = 0;
    let ejected = 0;
    let open = 0;
    for (const e of this.all) {
      if (!inAnswers(e.instance, this.readiness.passing)) notReady++;
      else if (e.outlier.isEjected(now)) ejected++;
      else if (e.breaker && !e.breaker.isAvailable()) open++;
    }
    const known = this.all.length;
    // A server answered (and still does) that nothing matches: a wrong name or a service that is
    // gone, which retrying will not fix. `unavailable` stays for what may pass: instances known but
    // not eligible now, or no server answering.
    const f = this.readiness;
    const filtered = f.tags.length > 0 || f.zone !== undefined || f.meta.length > 0;
    // With failover the server looked further than the local DC: say that none of them had one.
    // The server chooses the DC by the service's ready instances; a tag, zone or meta filter is
    // applied here, to the chosen DC's, so with one it may be what left nothing.
    if (f.failover !== undefined && this.view.isSynced && !this.view.stale && notReady === known) {
      const dc = this.view.datacenter ?? 'the local datacenter';
      const message = filtered
        ? `no ready instance of ${this.service} in ${dc} (the datacenter failover ${f.failover} chose by the service's ready instances) matches the filter`
        : `no datacenter has a ready instance of ${this.service}: not ${dc}, nor its failover datacenters (${f.failover})`;
      return new BeaconError('unavailable', message, { reason: 'no_instances', service: this.service, failover: f.failover, known, notReady });
    }
    if (known === 0 && this.view.isSynced && !this.view.stale) {
      return new BeaconError('not_found', `no instance of ${this.service} is registered${filtered ? ' that matches the filter' : ''}`, {
        reason: 'not_registered',
        service: this.service,
      });
    }
    const why = known === 0 ? (this.view.isSynced ? 'none at the last answer, and no Beacon server answers now' : 'discovery has not answered yet') : `${known} known: ${notReady} not ready, ${ejected} ejected, ${open} circuit open`;
    return new BeaconError('unavailable', `no instance of ${this.service} is available (${why})`, {
      reason: open > 0 && open + ejected + notReady === known ? 'circuit_open' : 'no_instances',
      service: this.service,
      known,
      notReady,
      ejected,
      circuitOpen: open,
    });
  }

  private retryPolicy(r: RetrySettings, cls: 'idempotent' | 'connect-only'): RetryPolicy {
    return new RetryPolicy({
      clock: this.deps.clock,
      maxRetries: r.maxRetries ?? 2,
      backoff: fullJitter({ baseMs: r.baseMs ?? 25, maxMs: r.maxMs ?? 1_000, random: this.deps.random }),
      budget: this.budget,
      shouldRetry: (o: FailureReason<unknown>) => this.shouldRetry(o, cls),
      discard: (v) => void (v as { body?: { cancel(): Promise<void> } | null })?.body?.cancel().catch(() => {}),
    });
  }

  private shouldRetry(o: FailureReason<unknown>, cls: 'idempotent' | 'connect-only'): boolean {
    if ('value' in o) {
      const status = (o.value as { status?: number } | undefined)?.status;
      return cls === 'idempotent' && typeof status === 'number' && this.retryStatuses.has(status);
    }
    const err = o.error as unknown;
    if (err instanceof BeaconError) {
      if (!err.retryable) return false;
      const reason = (err.details as { reason?: string } | undefined)?.reason;
      // Nothing to retry on: every instance is gone, ejected or open.
      if (reason === 'no_instances' || reason === 'circuit_open' || reason === 'discovery' || reason === 'deadline') return false;
      if (reason === 'timeout') return cls === 'idempotent';
    }
    const kind = classifyError(err);
    switch (kind) {
      case 'connect':
        return true;
      case 'reset':
      case 'timeout':
        return cls === 'idempotent';
      case 'cancelled':
        return false;
    }
  }
}
