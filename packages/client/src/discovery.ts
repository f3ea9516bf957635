import { BeaconError, errors, randomInt, type Clock, type Instance, type Random, type Timer } from '@beacon/core';
import { describeFetchError, type BeaconHttp } from './http.js';
import { parseSse, type SseEvent } from './sse.js';
import { filterQuery, scopeQuery, type ResolvedFilter } from './filter.js';
import { sleep } from './time.js';
import type { ServiceView } from './view.js';

/** A push stream that could not be used: the server (or a proxy in front of it) has no SSE watch. */
export const UNSUPPORTED = 'unsupported' as const;

/** One read of a service's instances; `datacenter`: the DC they came from (servers with federation say). */
export interface ReadAnswer {
  index: number;
  instances: Instance[];
  datacenter?: string;
}

/** How a view reaches Beacon servers. {@link HttpDiscoveryTransport} in production, a fake in unit tests. */
export interface DiscoveryTransport {
  /** Servers in the order to try them. */
  servers(): readonly string[];
  /** Remember the server that just worked. */
  prefer(server: string): void;
  /**
   * Opens the push stream of one service. `onActivity` is called for every chunk read (pings
   * included), so the caller can detect a dead connection. Returns {@link UNSUPPORTED} when the
   * server answers but has no usable stream; throws on network errors.
   */
  watch(server: string, service: string, signal: AbortSignal, onActivity: () => void, scope?: Record<string, string>): Promise<AsyncIterable<SseEvent> | typeof UNSUPPORTED>;
  /** One (blocking when `index > 0`) read of the service's instances. */
  read(server: string, service: string, filter: ResolvedFilter, index: number, waitMs: number, signal: AbortSignal): Promise<ReadAnswer>;
}

/**
 * {@link DiscoveryTransport} over Beacon's native HTTP API: `GET /api/v1/watch` (SSE) and
 * `GET /api/v1/services/:name/instances?index=&wait=`.
 *
 * @example
 * const transport = new HttpDiscoveryTransport(new BeaconHttp({ servers: ['http://127.0.0.1:8500'] }));
 */
export class HttpDiscoveryTransport implements DiscoveryTransport {
  constructor(private readonly http: BeaconHttp) {}

  /**
   * The servers, the last one that worked first.
   *
   * @example
   * transport.servers(); // ['http://10.0.0.2:8500', 'http://10.0.0.1:8500']
   */
  servers(): readonly string[] {
    return this.http.orderedServers();
  }

  /**
   * Remembers the server that just worked.
   *
   * @example
   * transport.prefer('http://10.0.0.2:8500');
   */
  prefer(server: string): void {
    this.http.prefer(server);
  }

  /**
   * Opens `GET /api/v1/watch?service=` as an SSE stream (`scope`: `dc` or `failover`).
   *
   * @example
   * const events = await transport.watch(server, 'payments', ac.signal, () => {});
   */
  async watch(server: string, service: string, signal: AbortSignal, onActivity: () => void, scope: Record<string, string> = {}): Promise<AsyncIterable<SseEvent> | typeof UNSUPPORTED> {
    return openWatch(this.http, server, { query: { service, ...scope } }, signal, onActivity);
  }

  /**
   * One read of `GET /api/v1/services/:name/instances`, blocking when `index > 0`.
   *
   * @example
   * const { index, instances } = await transport.read(server, 'payments', resolveFilter(), 0, 30_000, signal);
   */
  async read(server: string, service: string, filter: ResolvedFilter, index: number, waitMs: number, signal: AbortSignal): Promise<ReadAnswer> {
    const query: Record<string, string | string[]> = filterQuery(filter);
    if (index > 0) {
      query.index = String(index);
      query.wait = `${Math.max(1, Math.round(waitMs))}ms`;
    }
    // The server may hold the read for wait + wait/16; give it room before calling it dead.
    const timeoutMs = index > 0 ? waitMs + waitMs / 16 + 5_000 : 10_000;
    const { body } = await this.http.request<ReadAnswer>('GET', `/api/v1/services/${service}/instances`, {
      query,
      signal,
      timeoutMs,
      server,
    });
    if (!body || typeof body.index !== 'number' || !Array.isArray(body.instances)) throw errors.unavailable(`${server}: malformed instances answer`);
    return body;
  }
}

/** What to ask `GET /api/v1/watch` for: its query (`service`, `dc`, …) and extra headers (`Last-Event-ID`, a token). */
export interface WatchRequest {
  query?: Record<string, string | string[] | undefined>;
  headers?: Record<string, string>;
}

/**
 * Opens `GET /api/v1/watch` on one server as a stream of SSE events. `onActivity` is called for
 * every chunk read (pings included), so the caller can detect a dead connection. Returns
 * {@link UNSUPPORTED} when the server answers but has no usable stream; throws on network errors
 * and on refusals (429, 5xx).
 *
 * @example
 * const events = await openWatch(http, server, { query: { service: ['api'] }, headers: { 'last-event-id': '42' } }, signal, () => {});
 * if (events !== UNSUPPORTED) for await (const ev of events) console.log(ev.event, ev.id);
 */
export async function openWatch(
  http: BeaconHttp,
  server: string,
  req: WatchRequest,
  signal: AbortSignal,
  onActivity: () => void,
): Promise<AsyncIterable<SseEvent> | typeof UNSUPPORTED> {
  let res: Response;
  try {
    res = await http.fetch(http.url(server, '/api/v1/watch', req.query), { headers: { accept: 'text/event-stream', ...req.headers }, signal });
  } catch (err) {
    if (signal.aborted) throw err;
    throw errors.unavailable(`${server}: ${describeFetchError(err, server)}`);
  }
  const type = res.headers.get('content-type') ?? '';
  if (res.ok && res.body && type.startsWith('text/event-stream')) {
    const body = res.body;
    return parseSse(
      (async function* () {
        for await (const chunk of body) {
          onActivity();
          yield chunk;
        }
      })(),
    );
  }
  await res.body?.cancel().catch(() => {});
  if (res.ok || res.status === 404 || res.status === 405 || res.status === 406 || res.status === 501) return UNSUPPORTED;
  throw new BeaconError(res.status === 429 ? 'too_many_requests' : 'unavailable', `${server}: watch answered HTTP ${res.status}`);
}

export interface ViewSyncOptions {
  clock: Clock;
  random: Random;
  /** `auto` (default): the push stream, falling back to blocking reads per server when it has none. */
  mode?: 'auto' | 'stream' | 'blocking';
  /** Wait of each blocking read (default 30 s). */
  waitMs?: number;
  /** A stream silent this long is dead (the server pings every 15 s; default 45 s). */
  idleTimeoutMs?: number;
  /** Reconnect backoff after a round in which every server failed: full jitter over base·2ⁿ, capped. */
  reconnect?: { baseMs?: number; maxMs?: number };
  /** Called with every error of the background loop (logging). */
  onError?: (err: Error) => void;
}

/**
 * Keeps a {@link ServiceView} current: a push stream per view, with failover across servers, a
 * fallback to blocking reads, and reconnect backoff on the injected clock. Every (re)connection
 * starts from a full `reset`, so a restarted server or a failover to another cluster can never
 * leave the view with a half-applied history.
 *
 * @example
 * void new ViewSync(view, new HttpDiscoveryTransport(http), { clock, random }).start();
 */
export class ViewSync {
  private readonly noStream = new Set<string>();
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  private readonly mode: 'auto' | 'stream' | 'blocking';
  private readonly waitMs: number;
  private readonly idleTimeoutMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly view: ServiceView,
    private readonly transport: DiscoveryTransport,
    private readonly opts: ViewSyncOptions,
  ) {
    this.mode = opts.mode ?? 'auto';
    this.waitMs = opts.waitMs ?? 30_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
    this.baseMs = opts.reconnect?.baseMs ?? 100;
    this.maxMs = opts.reconnect?.maxMs ?? 5_000;
    view.onClose(() => this.stop.abort(errors.unavailable('view closed')));
  }

  /**
   * Starts the background loop (idempotent). It ends when the view is closed.
   *
   * @example
   * new ViewSync(view, transport, { clock, random }).start();
   */
  start(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    let failedRounds = 0;
    while (!this.stop.signal.aborted) {
      let lastErr: Error | undefined;
      let synced = false;
      for (const server of this.transport.servers()) {
        if (this.stop.signal.aborted) return;
        try {
          synced = await this.session(server);
        } catch (err) {
          if (this.stop.signal.aborted) return;
          lastErr = err as Error;
          this.opts.onError?.(lastErr);
        }
        // A session that got an answer and then ended: reconnect from the preferred server at once.
        if (synced) break;
      }
      if (synced) {
        failedRounds = 0;
        continue;
      }
      this.view.markStale(lastErr ?? errors.unavailable('no Beacon server answered'));
      const cap = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failedRounds++, 20));
      try {
        await sleep(this.opts.clock, this.baseMs / 2 + randomInt(this.opts.random, Math.max(1, Math.floor(cap))), this.stop.signal);
      } catch {
        return;
      }
    }
  }

  /** One connection to one server; true when it delivered at least one answer before ending. */
  private async session(server: string): Promise<boolean> {
    const useStream = this.mode === 'stream' || (this.mode === 'auto' && !this.noStream.has(server));
    if (useStream) {
      const r = await this.stream(server);
      if (r !== UNSUPPORTED) return r;
      if (this.mode === 'stream') throw errors.unavailable(`${server} has no watch stream`);
      this.noStream.add(server);
    }
    return this.poll(server);
  }

  private async stream(server: string): Promise<boolean | typeof UNSUPPORTED> {
    const ac = new AbortController();
    const onStop = () => ac.abort(this.stop.signal.reason);
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    let idle: Timer | undefined;
    const arm = () => {
      idle?.cancel();
      idle = this.opts.clock.setTimeout(() => ac.abort(new BeaconError('timeout', `${server}: watch silent for ${this.idleTimeoutMs} ms`)), this.idleTimeoutMs);
    };
    let got = false;
    try {
      arm();
      const events = await this.transport.watch(server, this.view.service, ac.signal, arm, scopeQuery(this.view.filter));
      if (events === UNSUPPORTED) return UNSUPPORTED;
      for await (const ev of events) {
        if (ev.event === 'reset') {
          const data = JSON.parse(ev.data) as { index: number; instances: Instance[]; datacenter?: string };
          if (!Array.isArray(data.instances)) throw errors.unavailable(`${server}: malformed reset event`);
          this.view.reset(data.index, data.instances, this.opts.clock.now(), data.datacenter);
          this.transport.prefer(server);
          got = true;
        } else if (ev.event === 'change') {
          const c = JSON.parse(ev.data) as { index: number; type: 'upsert' | 'delete'; service: string; id: string; instance?: Instance };
          if (c.service !== this.view.service) continue;
          if (c.type === 'upsert' && c.instance) this.view.apply(c.index, { type: 'upsert', instance: c.instance }, this.opts.clock.now());
          else if (c.type === 'delete') this.view.apply(c.index, { type: 'delete', id: c.id }, this.opts.clock.now());
        }
      }
      return got;
    } catch (err) {
      if (this.stop.signal.aborted) throw err;
      // A stream that broke after delivering is not a failed round: the caller reconnects at once.
      if (got) {
        this.opts.onError?.(ac.signal.aborted ? (ac.signal.reason as Error) : (err as Error));
        return true;
      }
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      idle?.cancel();
      ac.abort();
      this.stop.signal.removeEventListener('abort', onStop);
    }
  }

  private async poll(server: string): Promise<boolean> {
    let got = false;
    let index = 0;
    while (!this.stop.signal.aborted) {
      let ans: ReadAnswer;
      try {
        ans = await this.transport.read(server, this.view.service, this.view.filter, index, this.waitMs, this.stop.signal);
      } catch (err) {
        if (got && !this.stop.signal.aborted) {
          this.opts.onError?.(err as Error);
          return true;
        }
        throw err;
      }
      // An index that went backwards means a restarted server or another cluster: start over (Consul's rule).
      index = ans.index < index ? 0 : Math.max(1, ans.index);
      this.view.reset(ans.index, ans.instances, this.opts.clock.now(), ans.datacenter);
      this.transport.prefer(server);
      got = true;
    }
    return got;
  }
}
