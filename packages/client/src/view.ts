import { EventEmitter, type Event, type IDisposable } from 'cockatiel';
import { assertServiceName, errors, type Instance } from '@beacon/core';
import { matchesFilter, type ResolvedFilter } from './filter.js';

/** What happened to one instance of a view. */
export type ViewEvent =
  | { type: 'added'; instance: Instance }
  | { type: 'changed'; instance: Instance; previous: Instance }
  | { type: 'removed'; instance: Instance };

/** Freshness of a view: `stale` while no Beacon server can be reached and the answer is the last known good one. */
export interface ViewHealth {
  stale: boolean;
  /** Why it is stale (the last connection error). */
  error?: Error;
  /** When the view last heard from a server (clock ms). */
  lastContactAt: number | undefined;
}

/**
 * The instances of one service that match one filter, kept in memory and diffed on every update.
 * It knows nothing of HTTP: a {@link ViewSync} feeds it `reset`/`upsert`/`remove` from the push
 * stream or from blocking reads. Get one from `client.discover()`.
 *
 * @example
 * const view = new ServiceView('payments', resolveFilter({ tags: ['v2'] }));
 * view.onChange((events) => console.log(events));
 */
export class ServiceView {
  private readonly byId = new Map<string, Instance>();
  private list: readonly Instance[] = [];
  private idx = 0;
  private dc: string | undefined;
  private health: ViewHealth = { stale: false, lastContactAt: undefined };
  private synced = false;
  private closed = false;
  private readonly readyWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private readonly changeEmitter = new EventEmitter<readonly ViewEvent[]>();
  private readonly healthEmitter = new EventEmitter<ViewHealth>();
  private readonly closeHooks: (() => void)[] = [];

  /**
   * Fires once per update with every instance that was added, changed or removed by it.
   *
   * @example
   * view.onChange((events) => { for (const e of events) console.log(e.type, e.instance.id); });
   */
  readonly onChange: Event<readonly ViewEvent[]> = this.changeEmitter.addListener;

  /**
   * Fires when the view turns stale (no server reachable) or fresh again.
   *
   * @example
   * view.onHealth((h) => console.warn(h.stale ? `stale: ${h.error?.message}` : 'fresh'));
   */
  readonly onHealth: Event<ViewHealth> = this.healthEmitter.addListener;

  constructor(
    readonly service: string,
    readonly filter: ResolvedFilter,
  ) {
    assertServiceName(service);
  }

  /**
   * The current instances, in a stable order (by id). The array is replaced, never mutated, so it
   * is safe to keep.
   *
   * @example
   * for (const i of view.instances()) console.log(i.address, i.port);
   */
  instances(): readonly Instance[] {
    return this.list;
  }

  /**
   * One instance by id, if it is in the view.
   *
   * @example
   * view.get('payments-1')?.port;
   */
  get(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  /**
   * The datacenter the instances came from, when the view reads another DC or fails over
   * (`discover('web', { failover: { nearest: 2 } })`); undefined for the server's own DC.
   *
   * @example
   * view.onChange(() => console.log(`web answered from ${view.datacenter ?? 'the local DC'}`));
   */
  get datacenter(): string | undefined {
    return this.dc;
  }

  /** The server index this view reflects (0 until the first answer). */
  get index(): number {
    return this.idx;
  }

  /** True while every server is unreachable and the instances are the last known good ones. */
  get stale(): boolean {
    return this.health.stale;
  }

  /** Freshness details. */
  get state(): Readonly<ViewHealth> {
    return this.health;
  }

  /** True once a first answer arrived. */
  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * Resolves once the view holds a first answer; rejects if the view is closed first. It never
   * times out by itself: race it with your own deadline.
   *
   * @example
   * await view.ready();
   */
  ready(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.closed) return Promise.reject(errors.unavailable(`view of ${this.service} is closed`));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Stops updates (closing the stream behind it); the last instances stay readable.
   *
   * @example
   * view.close();
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.readyWaiters.splice(0)) w.reject(errors.unavailable(`view of ${this.service} is closed`));
    for (const h of this.closeHooks.splice(0)) h();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs `fn` when the view closes (the sync loop uses it to stop).
   *
   * @example
   * view.onClose(() => console.log('no more updates'));
   */
  onClose(fn: () => void): IDisposable {
    if (this.closed) {
      fn();
      return { dispose() {} };
    }
    this.closeHooks.push(fn);
    return { dispose: () => void this.closeHooks.splice(this.closeHooks.indexOf(fn) >>> 0, 1) };
  }

  // ---- fed by the sync loop --------------------------------------------------------------

  /**
   * Replaces the whole content (a `reset` event, or a blocking read's answer), emitting the diff.
   *
   * @example
   * view.reset(42, answer.instances, clock.now());
   *
   * `datacenter`: the DC the instances came from, when the server says (with `dc` or `failover`).
   */
  reset(index: number, instances: readonly Instance[], now: number, datacenter?: string): void {
    if (this.closed) return;
    this.dc = datacenter;
    const next = new Map<string, Instance>();
    for (const i of instances) if (i.service === this.service && matchesFilter(i, this.filter)) next.set(i.id, i);
    const events: ViewEvent[] = [];
    for (const [id, prev] of this.byId) if (!next.has(id)) events.push({ type: 'removed', instance: prev });
    for (const [id, inst] of next) {
      const prev = this.byId.get(id);
      if (!prev) events.push({ type: 'added', instance: inst });
      else if (changed(prev, inst)) events.push({ type: 'changed', instance: inst, previous: prev });
    }
    this.byId.clear();
    for (const [id, inst] of [...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) this.byId.set(id, inst);
    this.idx = index;
    this.commit(events, now);
  }

  /**
   * Applies one pushed change: the instance's state after it, or its removal.
   *
   * @example
   * view.apply(43, { type: 'delete', id: 'payments-2' }, clock.now());
   */
  apply(index: number, change: { type: 'upsert'; instance: Instance } | { type: 'delete'; id: string }, now: number): void {
    if (this.closed) return;
    const events: ViewEvent[] = [];
    if (change.type === 'delete') {
      const prev = this.byId.get(change.id);
      if (prev) {
        this.byId.delete(change.id);
        events.push({ type: 'removed', instance: prev });
      }
    } else {
      const inst = change.instance;
      if (inst.service !== this.service) return;
      const prev = this.byId.get(inst.id);
      const keep = matchesFilter(inst, this.filter);
      if (keep && !prev) {
        this.byId.set(inst.id, inst);
        events.push({ type: 'added', instance: inst });
      } else if (keep && prev) {
        this.byId.set(inst.id, inst);
        if (changed(prev, inst)) events.push({ type: 'changed', instance: inst, previous: prev });
      } else if (!keep && prev) {
        this.byId.delete(inst.id);
        events.push({ type: 'removed', instance: prev });
      }
    }
    this.idx = Math.max(this.idx, index);
    if (events.some((e) => e.type === 'added')) this.resort();
    this.commit(events, now);
  }

  /**
   * The stream or a read worked: the view is fresh (fires `onHealth` if it was stale).
   *
   * @example
   * view.markFresh(clock.now());
   */
  markFresh(now: number): void {
    if (this.closed) return;
    const wasStale = this.health.stale;
    this.health = { stale: false, lastContactAt: now };
    if (wasStale) this.healthEmitter.emit(this.health);
  }

  /**
   * Every server failed: keep the instances, say they are stale (fires `onHealth` once).
   *
   * @example
   * view.markStale(new Error('connect ECONNREFUSED'));
   */
  markStale(error: Error): void {
    if (this.closed) return;
    const wasStale = this.health.stale;
    this.health = { stale: true, error, lastContactAt: this.health.lastContactAt };
    if (!wasStale) this.healthEmitter.emit(this.health);
  }

  private resort(): void {
    const sorted = [...this.byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.byId.clear();
    for (const [id, inst] of sorted) this.byId.set(id, inst);
  }

  private commit(events: ViewEvent[], now: number): void {
    if (events.length) this.list = [...this.byId.values()];
    this.markFresh(now);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    }
    if (events.length) this.changeEmitter.emit(events);
  }
}

/** Whether an update matters to a reader: anything but the indexes moved. */
function changed(a: Instance, b: Instance): boolean {
  if (a.modifyIndex !== b.modifyIndex) return true;
  return a.status !== b.status || a.conditions.ready !== b.conditions.ready || a.address !== b.address || a.port !== b.port;
}
