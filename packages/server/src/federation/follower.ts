import { openWatch, sleep, UNSUPPORTED, type BeaconHttp } from '@beacon/client';
import { BeaconError, errors, randomInt, type Clock, type Instance, type Random, type Timer } from '@beacon/core';
import type { RemoteCatalog, RemoteChange } from './remote-catalog.js';

export interface FollowerOptions {
  view: RemoteCatalog;
  http: BeaconHttp;
  /** The DC's servers in the order to try them (nearest first). */
  order: () => string[];
  clock: Clock;
  random: Random;
  headers: Record<string, string>;
  /** A stream silent this long is dead (servers ping every 15 s). */
  idleTimeoutMs: number;
  reconnect?: { baseMs?: number; maxMs?: number };
  logger?: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void };
}

/** What a follower has done, for `/api/v1/datacenters` and the resume test. */
export interface FollowerStats {
  /** Streams opened. */
  connects: number;
  /** Full listings received (the first one, and each time history did not reach back far enough). */
  resets: number;
  /** Streams that resumed from Last-Event-ID without a full listing. */
  resumes: number;
  /** The server the stream is open to, while it is. */
  server: string | undefined;
}

/**
 * Follows one remote datacenter's push stream (`GET /api/v1/watch`, every service) into its
 * {@link RemoteCatalog}: one stream per remote DC, failing over between its servers nearest
 * first, resuming with `Last-Event-ID` so a reconnect or a restarted DC replays only what it
 * missed when its history allows (else the DC answers with a full `reset`).
 */
export class DcFollower {
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  private lastEventId: string | undefined;
  readonly stats: FollowerStats = { connects: 0, resets: 0, resumes: 0, server: undefined };

  constructor(private readonly opts: FollowerOptions) {}

  start(): void {
    this.running ??= this.loop();
  }

  async close(): Promise<void> {
    this.stop.abort(errors.unavailable('federation closed'));
    await this.running;
  }

  private async loop(): Promise<void> {
    const { view, logger } = this.opts;
    const baseMs = this.opts.reconnect?.baseMs ?? 100;
    const maxMs = this.opts.reconnect?.maxMs ?? 2_000;
    let failedRounds = 0;
    while (!this.stop.signal.aborted) {
      let connected = false;
      for (const server of this.opts.order()) {
        if (this.stop.signal.aborted) return;
        try {
          connected = await this.session(server);
        } catch (err) {
          if (this.stop.signal.aborted) return;
          logger?.warn({ err: (err as Error).message, datacenter: view.datacenter, server }, 'federation stream failed');
        }
        if (connected) break;
      }
      view.markStale();
      if (connected) {
        failedRounds = 0;
        continue;
      }
      const cap = Math.min(maxMs, baseMs * 2 ** Math.min(failedRounds++, 20));
      try {
        await sleep(this.opts.clock, baseMs / 2 + randomInt(this.opts.random, Math.max(1, Math.floor(cap))), this.stop.signal);
      } catch {
        return;
      }
    }
  }

  /** One stream to one server; true when it was open (it answered) before it ended. */
  private async session(server: string): Promise<boolean> {
    const { view, clock, idleTimeoutMs } = this.opts;
    const ac = new AbortController();
    const onStop = () => ac.abort(this.stop.signal.reason);
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    let idle: Timer | undefined;
    let open = false;
    const resumeFrom = this.lastEventId;
    // Counted as a resume until the server answers it with a full listing instead.
    let resumed = false;
    const arm = () => {
      idle?.cancel();
      idle = clock.setTimeout(() => ac.abort(new BeaconError('timeout', `${server}: watch silent for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    const activity = () => {
      arm();
      if (open) return;
      // The server wrote its first bytes: the stream is up, and its replay follows in the same write.
      open = true;
      this.stats.connects++;
      this.stats.server = server;
      if (resumeFrom !== undefined) {
        resumed = true;
        this.stats.resumes++;
      }
      view.markCurrent();
      this.opts.logger?.info({ datacenter: view.datacenter, server, resumeFrom }, 'following remote datacenter');
    };
    try {
      arm();
      const headers = { ...this.opts.headers, ...(resumeFrom !== undefined ? { 'last-event-id': resumeFrom } : {}) };
      const events = await openWatch(this.opts.http, server, { headers }, ac.signal, activity);
      if (events === UNSUPPORTED) throw errors.unavailable(`${server} has no watch stream: is it a Beacon server?`);
      let batch: RemoteChange[] = [];
      for await (const ev of events) {
        if (ev.event === 'reset') {
          const data = JSON.parse(ev.data) as { index: number; instances: Instance[] };
          if (typeof data.index !== 'number' || !Array.isArray(data.instances)) throw errors.unavailable(`${server}: malformed reset event`);
          // A resume answered by a full listing: history did not reach back far enough.
          if (resumed) {
            resumed = false;
            this.stats.resumes--;
          }
          this.stats.resets++;
          batch = [];
          view.reset(data.index, data.instances);
          this.lastEventId = ev.id ?? String(data.index);
        } else if (ev.event === 'index' && ev.id !== undefined && batch.length === 0) {
          view.advance(Number(ev.id));
          this.lastEventId = ev.id;
        } else if (ev.event === 'change') {
          const c = JSON.parse(ev.data) as RemoteChange;
          if (typeof c.index !== 'number' || typeof c.id !== 'string' || typeof c.service !== 'string') throw errors.unavailable(`${server}: malformed change event`);
          batch.push(c);
          // A revision's events are written together; only its last carries the id.
          if (ev.id !== undefined) {
            view.apply(Number(ev.id), batch);
            batch = [];
            this.lastEventId = ev.id;
          }
        }
      }
      return open;
    } catch (err) {
      if (this.stop.signal.aborted || !open) throw ac.signal.aborted && !this.stop.signal.aborted ? ac.signal.reason : err;
      this.opts.logger?.warn({ err: ((ac.signal.aborted ? ac.signal.reason : err) as Error).message, datacenter: view.datacenter, server }, 'federation stream ended; reconnecting');
      return true;
    } finally {
      idle?.cancel();
      ac.abort();
      this.stats.server = undefined;
      this.stop.signal.removeEventListener('abort', onStop);
    }
  }
}
