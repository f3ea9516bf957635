import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { Dispatcher } from 'undici';
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

/**
 * Default rule: a bare DNS label (no dots, not `localhost`) is a service name.
 *
 * @example
 * defaultIsService('payments'); // true — defaultIsService('api.example.com'); // false
 */
export function defaultIsService(host: string): boolean {
  return host !== 'localhost' && isServiceName(host);
}

interface ParsedOrigin {
  service: string;
  protocol: string;
}

const NOT_A_SERVICE = null;

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
 * The two handler front ends below only translate undici's handler APIs.
 */
abstract class Attempt {
  protected responseForwarded = false;
  protected discarding = false;
  protected ep!: EndpointState;
  private t0 = 0;
  private retriesLeft: number;
  private tried: Set<string> | undefined;
  protected finished = false;
  private idempotent: boolean | undefined;
  onDone: (() => void) | undefined;

  constructor(
    protected readonly up: Upstream,
    private readonly dispatchNext: Dispatcher['dispatch'],
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly protocol: string,
    private readonly key: string | undefined,
    transparentRetries: boolean,
    private readonly clock: Clock,
  ) {
    const r = up.policy.retry;
    this.retriesLeft = transparentRetries && r !== false ? (r?.maxRetries ?? 2) : 0;
  }

  /** Delivers a final error to the caller's handler. */
  protected abstract deliverError(err: Error): void;
  /** Whether the caller has aborted. */
  protected abstract get aborted(): boolean;

  /** First attempt: pick (or use the endpoint the caller pinned), then send. */
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
      this.dispatchNext({ ...this.opts, origin: ep.origin(this.protocol) }, this as unknown as Dispatcher.DispatchHandler);
    } catch (err) {
      this.up.failed(ep, err, 0);
      this.up.finished(ep);
      this.fail(err as Error);
    }
  }

  /** Idempotent method, Idempotency-Key, or the service says retry anyway — worked out only when needed. */
  private isIdempotent(): boolean {
    if (this.idempotent === undefined) {
      const r = this.up.policy.retry;
      this.idempotent = isIdempotent(this.opts.method ?? 'GET', headerValue(this.opts.headers, 'idempotency-key') !== undefined) || (r !== false && !!r?.nonIdempotent);
    }
    return this.idempotent;
  }

  /** The answer has arrived: report it; true when it is to be dropped and retried elsewhere. */
  protected answered(statusCode: number): boolean {
    this.up.responded(this.ep, statusCode, this.clock.now() - this.t0);
    if (this.retriesLeft > 0 && this.up.retryStatuses.has(statusCode) && !this.aborted && this.isIdempotent() && replayable(this.opts.body)) {
      this.discarding = true;
      return true;
    }
    this.responseForwarded = true;
    return false;
  }

  /** The dropped answer has been read: retry, or fail if that is not possible. Returns true when handled. */
  protected endDiscarded(err?: Error): void {
    this.discarding = false;
    this.up.finished(this.ep);
    if (this.retry()) return;
    this.fail(err ?? new BeaconError('unavailable', `${this.up.service}: instance ${this.ep.id} answered an error and no retry was possible`, { reason: 'retries_exhausted' }));
  }

  /** The exchange ended normally; false if the caller was already told it ended. */
  protected completed(): boolean {
    this.up.finished(this.ep);
    if (this.finished) return false;
    this.finished = true;
    return true;
  }

  /** The exchange failed; true when a retry took over (the caller hears nothing). */
  protected errored(err: Error): boolean {
    if (this.discarding) {
      this.endDiscarded(err);
      return true;
    }
    if (!this.responseForwarded) {
      const outcome = this.up.failed(this.ep, err, this.clock.now() - this.t0);
      this.up.finished(this.ep);
      const safe = outcome === 'connect' || ((outcome === 'reset' || outcome === 'timeout') && this.isIdempotent() && replayable(this.opts.body));
      if (safe && this.retry()) return true;
    } else this.up.finished(this.ep);
    return false;
  }

  private retry(): boolean {
    if (this.retriesLeft <= 0 || this.aborted) return false;
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

  protected fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.deliverError(err);
    this.onDone?.();
  }

  protected done(): void {
    this.onDone?.();
  }
}

/** Front end for undici's handler API (interceptors composed with `Dispatcher.compose`). */
class BeaconHandler extends Attempt implements Dispatcher.DispatchHandler {
  private readonly controller = new ControllerProxy();
  private userStarted = false;

  constructor(
    up: Upstream,
    private readonly user: Dispatcher.DispatchHandler,
    dispatchNext: Dispatcher['dispatch'],
    opts: Dispatcher.DispatchOptions,
    protocol: string,
    key: string | undefined,
    transparentRetries: boolean,
    clock: Clock,
  ) {
    super(up, dispatchNext, opts, protocol, key, transparentRetries, clock);
  }

  protected get aborted(): boolean {
    return this.controller.aborted;
  }

  protected deliverError(err: Error): void {
    this.user.onResponseError?.(this.controller, err);
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
    this.up.responded(this.ep, statusCode, 0);
    this.responseForwarded = true;
    this.user.onRequestUpgrade?.(this.controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.controller.target = controller;
    if (this.answered(statusCode)) return;
    this.controller.rawHeaders = controller.rawHeaders ?? null;
    this.user.onResponseStart?.(this.controller, statusCode, headers, statusMessage);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discarding) return;
    this.user.onResponseData?.(this.controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.discarding) return this.endDiscarded();
    if (!this.completed()) return;
    this.controller.rawTrailers = controller.rawTrailers ?? null;
    this.user.onResponseEnd?.(this.controller, trailers);
    this.done();
  }

  onResponseError(controller: Dispatcher.DispatchController | null, err: Error): void {
    if (controller) this.controller.target = controller;
    if (this.errored(err)) return;
    this.fail(err);
  }
}

/** undici's legacy handler interface (what `request()`, `fetch()` and Node's fetch hand a dispatcher). */
interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onUpgrade?(statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | null): void;
  onError?(err: Error): void;
  onBodySent?(chunkSize: number, totalBytesSent: number): void;
  onRequestSent?(): void;
}

/**
 * Front end for undici's legacy handler API, which `request()` and `fetch()` still use: passing
 * their handler straight through saves the wrap/unwrap round trip (headers parsed, re-serialised,
 * parsed again) that an interceptor costs on every request.
 */
class LegacyBeaconHandler extends Attempt implements LegacyHandler {
  private userConnected = false;
  private abortReason: Error | undefined;
  private currentAbort: ((err?: Error) => void) | undefined;

  constructor(
    up: Upstream,
    private readonly user: LegacyHandler,
    dispatchNext: Dispatcher['dispatch'],
    opts: Dispatcher.DispatchOptions,
    protocol: string,
    key: string | undefined,
    transparentRetries: boolean,
    clock: Clock,
  ) {
    super(up, dispatchNext, opts, protocol, key, transparentRetries, clock);
  }

  protected get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  protected deliverError(err: Error): void {
    this.user.onError?.(err);
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.currentAbort = abort;
    if (this.abortReason) return abort(this.abortReason);
    if (!this.userConnected) {
      this.userConnected = true;
      this.user.onConnect?.((err) => {
        this.abortReason ??= err ?? new Error('aborted');
        this.currentAbort?.(this.abortReason);
      }, context);
    }
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.up.responded(this.ep, statusCode, 0);
    this.responseForwarded = true;
    this.user.onUpgrade?.(statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.user.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational answers come before the real one.
    if (statusCode < 200) return this.user.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
    if (this.answered(statusCode)) return true;
    return this.user.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding) return true;
    return this.user.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    if (this.discarding) return this.endDiscarded();
    if (!this.completed()) return;
    this.user.onComplete?.(trailers);
    this.done();
  }

  onError(err: Error): void {
    if (this.errored(err)) return;
    this.fail(err);
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.user.onBodySent?.(chunkSize, totalBytesSent);
  }

  onRequestSent(): void {
    this.user.onRequestSent?.();
  }
}

type AnyHandler = Dispatcher.DispatchHandler & LegacyHandler;

/** The handler front end that matches the caller's handler API. */
function attemptFor(
  up: Upstream,
  handler: AnyHandler,
  next: Dispatcher['dispatch'],
  opts: Dispatcher.DispatchOptions,
  protocol: string,
  key: string | undefined,
  transparent: boolean,
  clock: Clock,
): Attempt {
  return typeof handler.onRequestStart === 'function'
    ? new BeaconHandler(up, handler, next, opts, protocol, key, transparent, clock)
    : new LegacyBeaconHandler(up, handler, next, opts, protocol, key, transparent, clock);
}

/** The routing shared by the interceptor and {@link BeaconDispatcher}: which handler front end, which upstream. */
function makeRouter(source: UpstreamSource): (next: Dispatcher['dispatch'], opts: Dispatcher.DispatchOptions, handler: AnyHandler) => boolean {
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

  return function route(next, opts, handler) {
    const fail = (err: Error) => {
      if (typeof handler.onRequestStart === 'function') handler.onResponseError?.(null as unknown as Dispatcher.DispatchController, err);
      else handler.onError?.(err);
    };
    const target = parse(opts.origin);
    if (!target) return next(opts, handler);
    let up: Upstream;
    try {
      up = source.upstream(target.service);
    } catch (err) {
      fail(err as Error);
      return true;
    }
    const key = up.policy.hashHeader ? headerValue(opts.headers, up.policy.hashHeader.toLowerCase()) : undefined;
    const h = attemptFor(up, handler, next, opts, target.protocol, key, true, source.clock);
    up.budget.recordRequest();
    const go = () => {
      if (!up.bulkhead) return h.start();
      up.bulkhead
        .execute(() => new Promise<void>((resolve) => ((h.onDone = resolve), h.start())))
        .catch((err) => {
          h.onDone = undefined;
          fail(isBulkheadRejectedError(err) ? new BeaconError('too_many_requests', `${up.service}: bulkhead full`, { reason: 'bulkhead', service: up.service }) : (err as Error));
        });
    };
    if (up.view.isSynced) go();
    else up.whenReady().then(go, fail);
    return true;
  };
}

/**
 * The undici interceptor form of the SDK's routing, for composing with other interceptors:
 * requests to `http://<service>/…` go to an instance picked by the service's balancer; every
 * outcome is reported back; connection failures (and, for idempotent requests, resets and
 * 502/503/504) are retried on another instance within the retry budget. Other hosts pass through.
 * `client.dispatcher` does the same without the interceptor API's per-request handler wrapping.
 *
 * @example
 * import { Agent, fetch, interceptors } from 'undici';
 * const dispatcher = new Agent().compose(beaconInterceptor(client), interceptors.dump());
 * const res = await fetch('http://payments/charge', { method: 'POST', body, dispatcher });
 */
export function beaconInterceptor(source: UpstreamSource): Dispatcher.DispatcherComposeInterceptor {
  const route = makeRouter(source);
  return (dispatch) =>
    function beaconDispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      return route(dispatch, opts, handler as AnyHandler);
    };
}

/**
 * An undici Dispatcher that routes service URLs through Beacon and everything else through the
 * agent it wraps. `client.dispatcher` is one.
 *
 * @example
 * const dispatcher = new BeaconDispatcher(new Agent({ connections: 64 }), client);
 * await request('http://payments/health', { dispatcher });
 */
export class BeaconDispatcher extends Dispatcher {
  private readonly route: ReturnType<typeof makeRouter>;
  private readonly next: Dispatcher['dispatch'];
  private readonly clock: Clock;

  constructor(
    private readonly agent: Dispatcher,
    source: UpstreamSource,
  ) {
    super();
    this.clock = source.clock;
    this.route = makeRouter(source);
    this.next = agent.dispatch.bind(agent);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.route(this.next, opts, handler as AnyHandler);
  }

  /**
   * Sends one attempt to an endpoint already picked (and admitted by its breaker), reporting the
   * outcome but never retrying: `client.fetch` does its own retries.
   *
   * @example
   * dispatcher.dispatchTo(up, up.pick(), opts, handler);
   */
  dispatchTo(up: Upstream, ep: EndpointState, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const protocol = typeof opts.origin === 'string' ? (opts.origin.startsWith('https:') ? 'https:' : 'http:') : (opts.origin?.protocol ?? 'http:');
    attemptFor(up, handler as AnyHandler, this.next, opts, protocol, undefined, false, this.clock).start(ep);
    return true;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const p = this.agent.close();
    if (!callback) return p;
    p.then(callback, callback);
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const p = this.agent.destroy(err);
    if (!callback) return p;
    p.then(callback, callback);
  }
}
