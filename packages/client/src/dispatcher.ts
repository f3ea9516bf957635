import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { isBulkheadRejectedError } from 'cockatiel';
import { BeaconError, isServiceName, type Clock } from '@beacon/core';
import type { EndpointState } from './endpoint.js';
import { isIdempotent } from './resilience/classify.js';
import type { Upstream } from './upstream.js';

/** What the interceptor needs from the client: an upstream per service name. */
export interface UpstreamSource {
  readonly clock: Clock;
  /** Whether a URL host names a Beacon service (else the request passes through untouched). */
  isService(host: string): boolean;
  upstream(service: string): Upstream;
}

/** Default rule: a bare DNS label (no dots, not `localhost`) is a service name. */
export function defaultIsService(host: string): boolean {
  return host !== 'localhost' && isServiceName(host);
}

interface ParsedOrigin {
  service: string;
  protocol: string;
}

const NOT_A_SERVICE = null;

/** Per-dispatch options the SDK's own `fetch` passes down (never set by plain undici users). */
export interface PinnedAttempt {
  upstream: Upstream;
  endpoint: EndpointState;
}

/** Forwards pause/abort to whichever attempt is current, so the caller holds one controller across retries. */
class ControllerProxy implements Dispatcher.DispatchController {
  private t: Dispatcher.DispatchController | undefined;
  private isPaused = false;
  private abortReason: Error | null = null;
  rawHeaders: Dispatcher.DispatchController['rawHeaders'] = null;
  rawTrailers: Dispatcher.DispatchController['rawTrailers'] = null;

  set target(c: Dispatcher.DispatchController | undefined | null) {
    if (!c) return;
    this.t = c;
    if (this.abortReason) c.abort(this.abortReason);
    else if (this.isPaused) c.pause();
  }

  get aborted(): boolean {
    return this.abortReason !== null || (this.t?.aborted ?? false);
  }
  get paused(): boolean {
    return this.isPaused;
  }
  get reason(): Error | null {
    return this.abortReason ?? this.t?.reason ?? null;
  }
  abort(reason: Error): void {
    this.abortReason ??= reason;
    this.t?.abort(reason);
  }
  pause(): void {
    this.isPaused = true;
    this.t?.pause();
  }
  resume(): void {
    this.isPaused = false;
    this.t?.resume();
  }
}

/** A body that can be sent again unchanged. */
function replayable(body: unknown): boolean {
  return body == null || typeof body === 'string' || body instanceof Uint8Array;
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (Array.isArray(headers)) {
    if (headers.length && Array.isArray(headers[0])) {
      for (const [k, v] of headers as [string, string][]) if (String(k).toLowerCase() === name) return String(v);
      return undefined;
    }
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    return undefined;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function' && typeof headers !== 'string') {
    for (const [k, v] of headers as Iterable<[string, string]>) if (String(k).toLowerCase() === name) return String(v);
    return undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? String(v[0]) : v == null ? undefined : String(v);
  }
  return undefined;
}

/**
 * One logical request through an upstream: picks an endpoint, reports every outcome back (latency,
 * 5xx, connection failures), and — on the dispatcher path — retries transparently on another
 * instance: connection failures for any method (nothing reached the instance), resets and
 * 502/503/504 for idempotent requests with a replayable body, all within the retry budget.
 */
class BeaconHandler implements Dispatcher.DispatchHandler {
  private readonly controller = new ControllerProxy();
  private userStarted = false;
  private responseForwarded = false;
  private discarding = false;
  private ep!: EndpointState;
  private t0 = 0;
  private retriesLeft: number;
  private tried: Set<string> | undefined;
  private finished = false;
  private readonly idempotent: boolean;
  private readonly canReplay: boolean;
  onDone: (() => void) | undefined;

  constructor(
    private readonly up: Upstream,
    private readonly user: Dispatcher.DispatchHandler,
    private readonly dispatch: Dispatcher['dispatch'],
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly protocol: string,
    private readonly key: string | undefined,
    transparentRetries: boolean,
    private readonly clock: Clock,
  ) {
    const r = up.policy.retry;
    this.retriesLeft = transparentRetries && r !== false ? (r?.maxRetries ?? 2) : 0;
    this.idempotent = isIdempotent(opts.method ?? 'GET', headerValue(opts.headers, 'idempotency-key') !== undefined) || (r !== false && !!r?.nonIdempotent);
    this.canReplay = replayable(opts.body);
  }

  /** First attempt: pick, then send. */
  start(pinned?: EndpointState): void {
    let ep: EndpointState;
    if (pinned) ep = pinned;
    else {
      try {
        ep = this.up.pick(this.key);
      } catch (err) {
        return this.fail(err as Error);
      }
    }
    this.send(ep);
  }

  private send(ep: EndpointState): void {
    this.ep = ep;
    this.up.started(ep);
    this.t0 = this.clock.now();
    try {
      this.dispatch({ ...this.opts, origin: ep.origin(this.protocol) }, this);
    } catch (err) {
      this.up.failed(ep, err, 0);
      this.up.finished(ep);
      this.fail(err as Error);
    }
  }

  private retry(): boolean {
    if (this.retriesLeft <= 0 || this.controller.aborted) return false;
    if (!this.up.budget.tryRetry()) return false;
    (this.tried ??= new Set()).add(this.ep.id);
    let next: EndpointState;
    try {
      next = this.up.pick(this.key, this.tried);
    } catch {
      return false;
    }
    this.retriesLeft--;
    this.send(next);
    return true;
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.user.onResponseError?.(this.controller, err);
    this.onDone?.();
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.controller.target = controller;
    if (!this.userStarted) {
      this.userStarted = true;
      this.user.onRequestStart?.(this.controller, context);
    }
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.controller.target = controller;
    this.up.responded(this.ep, statusCode, this.clock.now() - this.t0);
    this.responseForwarded = true;
    this.user.onRequestUpgrade?.(this.controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.controller.target = controller;
    this.up.responded(this.ep, statusCode, this.clock.now() - this.t0);
    if (this.retriesLeft > 0 && this.up.retryStatuses.has(statusCode) && this.idempotent && this.canReplay && !this.controller.aborted) {
      // Read and drop this answer; another instance gets the request when it ends.
      this.discarding = true;
      return;
    }
    this.responseForwarded = true;
    this.controller.rawHeaders = controller.rawHeaders ?? null;
    this.user.onResponseStart?.(this.controller, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discarding) return;
    this.user.onResponseData?.(this.controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.up.finished(this.ep);
    if (this.discarding) {
      this.discarding = false;
      if (this.retry()) return;
      return this.fail(new BeaconError('unavailable', `${this.up.service}: instance ${this.ep.id} answered an error and no retry was possible`, { reason: 'retries_exhausted' }));
    }
    if (this.finished) return;
    this.finished = true;
    this.controller.rawTrailers = controller.rawTrailers ?? null;
    this.user.onResponseEnd?.(this.controller, trailers);
    this.onDone?.();
  }

  onResponseError(controller: Dispatcher.DispatchController | null, err: Error): void {
    if (controller) this.controller.target = controller;
    if (this.discarding) {
      this.discarding = false;
      this.up.finished(this.ep);
      if (this.retry()) return;
      return this.fail(err);
    }
    if (!this.responseForwarded) {
      const outcome = this.up.failed(this.ep, err, this.clock.now() - this.t0);
      this.up.finished(this.ep);
      const safe = outcome === 'connect' || ((outcome === 'reset' || outcome === 'timeout') && this.idempotent && this.canReplay);
      if (safe && this.retry()) return;
    } else this.up.finished(this.ep);
    this.fail(err);
  }
}

/**
 * The undici interceptor behind `client.dispatcher`: requests to `http://<service>/…` are sent
 * to an instance picked by the service's balancer; every outcome is reported back; connection
 * failures (and, for idempotent requests, resets and 502/503/504) are retried on another
 * instance within the retry budget. Other hosts pass through untouched.
 *
 * @example
 * import { Agent, fetch } from 'undici';
 * const dispatcher = new Agent().compose(beaconInterceptor(client));
 * const res = await fetch('http://payments/charge', { method: 'POST', body, dispatcher });
 */
export function beaconInterceptor(source: UpstreamSource): Dispatcher.DispatcherComposeInterceptor {
  const origins = new Map<string, ParsedOrigin | null>();
  const parse = (origin: string | URL | undefined): ParsedOrigin | null => {
    if (origin === undefined) return NOT_A_SERVICE;
    const key = typeof origin === 'string' ? origin : origin.origin;
    let p = origins.get(key);
    if (p === undefined) {
      let u: URL;
      try {
        u = typeof origin === 'string' ? new URL(origin) : origin;
      } catch {
        return NOT_A_SERVICE;
      }
      p = (u.protocol === 'http:' || u.protocol === 'https:') && source.isService(u.hostname) ? { service: u.hostname, protocol: u.protocol } : NOT_A_SERVICE;
      if (origins.size > 10_000) origins.clear();
      origins.set(key, p);
    }
    return p;
  };

  return (dispatch) =>
    function beaconDispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const pinned = (opts as { beacon?: PinnedAttempt }).beacon;
      if (pinned) {
        const { beacon: _, ...rest } = opts as Dispatcher.DispatchOptions & { beacon?: PinnedAttempt };
        const protocol = typeof opts.origin === 'string' ? (opts.origin.startsWith('https:') ? 'https:' : 'http:') : (opts.origin?.protocol ?? 'http:');
        new BeaconHandler(pinned.upstream, handler, dispatch, rest, protocol, undefined, false, source.clock).start(pinned.endpoint);
        return true;
      }
      const target = parse(opts.origin);
      if (!target) return dispatch(opts, handler);
      let up: Upstream;
      try {
        up = source.upstream(target.service);
      } catch (err) {
        handler.onResponseError?.(null as unknown as Dispatcher.DispatchController, err as Error);
        return true;
      }
      const key = up.policy.hashHeader ? headerValue(opts.headers, up.policy.hashHeader.toLowerCase()) : undefined;
      const h = new BeaconHandler(up, handler, dispatch, opts, target.protocol, key, true, source.clock);
      up.budget.recordRequest();
      const go = () => {
        if (!up.bulkhead) return h.start();
        up.bulkhead
          .execute(() => new Promise<void>((resolve) => ((h.onDone = resolve), h.start())))
          .catch((err) => {
            h.onDone = undefined;
            handler.onResponseError?.(
              null as unknown as Dispatcher.DispatchController,
              isBulkheadRejectedError(err) ? new BeaconError('too_many_requests', `${up.service}: bulkhead full`, { reason: 'bulkhead', service: up.service }) : (err as Error),
            );
          });
      };
      if (up.view.isSynced) go();
      else
        up.whenReady().then(go, (err: Error) => {
          handler.onResponseError?.(null as unknown as Dispatcher.DispatchController, err);
        });
      return true;
    };
}
