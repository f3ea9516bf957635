import { connect as netConnect, type Socket } from 'node:net';
import { isBulkheadRejectedError, type FailureReason } from 'cockatiel';
import { classifyError, DEADLINE_HEADER, isIdempotent, readDeadline, type EndpointState, type RetryClass, type RetryPolicy, type Upstream } from '@beacon/client';
import { BeaconError, isBeaconError, type Clock, type Timer } from '@beacon/core';
import type { AccessLog } from './access-log.js';
import { closeWithError, type DownstreamHandler, type ProxyRequest, type ProxyResponse } from './downstream.js';
import type { Pools } from './pools.js';
import type { LocalReply, ProxyMetrics, RouteCounts } from './metrics.js';
import { hostOf, matchRoute, upstreamPath, type Route } from './routes.js';
import { HOP_BY_HOP, type Exchange, type ExchangeHandler, type HttpPool, type UpstreamRequest } from './upstream-http.js';

export interface HttpForwarderDeps {
  listener: string;
  routes: readonly Route[];
  clock: Clock;
  metrics: ProxyMetrics;
  log: AccessLog;
  /** Keep-alive connection pools, one per instance address. */
  pools: Pools;
}

/**
 * L7 forwarding: {@link Downstream} parses what clients send; each request goes to an instance
 * picked through the SDK's upstream (balancer, breaker, ejection, per-instance cap) over a
 * keep-alive pool of plain sockets ({@link HttpPool}), the outcome is reported back, and retries go
 * through the upstream's own retry policy (budget, jittered backoff, idempotent only). A body is
 * retried only when it was small enough to be buffered whole.
 *
 * A request whose first try is answered and needs no retry — nearly all of them — runs on
 * callbacks from the client's bytes to the answer's last write: no promise, no async frame (a
 * profile had the promise chain around each request among the largest items of the proxy's own
 * code). A try to retry goes on through {@link RetryPolicy.resume}; a route with a bulkhead, and
 * requests arriving before discovery's first answer, take the promise path from the start.
 */
export class HttpForwarder implements DownstreamHandler {
  /** Requests and upgraded connections under way, which a drain waits for. */
  active = 0;

  /** The last Host header seen and its routing name: clients of one listener mostly send one Host. */
  private lastHost: string | undefined;
  private lastHostName = '';
  /** Each route's counters, held here so a request adds to plain numbers (read when scraped). */
  private readonly counts = new Map<Route, RouteCounts>();

  constructor(readonly deps: HttpForwarderDeps) {
    for (const r of deps.routes) this.counts.set(r, deps.metrics.route(r.name, r.service));
  }

  request(req: ProxyRequest, res: ProxyResponse): void {
    const t0 = this.deps.clock.now();
    this.active++;
    const head = req.head;
    if (head.host !== this.lastHost) {
      this.lastHost = head.host;
      this.lastHostName = hostOf(head.host);
    }
    const host = this.lastHostName;
    const path = head.target;
    const route = matchRoute(this.deps.routes, host, path, (name) => req.header(name));
    if (!route) {
      res.onClose(() => this.active--);
      this.reply(res, req, undefined, undefined, 'no_route', new BeaconError('not_found', `no route for host ${JSON.stringify(host)} and path ${JSON.stringify(path.split('?')[0])}`, { reason: 'no_route', host }), t0);
      return;
    }
    const call = new Call(this, req, res, route, route.choose(), t0);
    res.onClose((finished) => call.closed(finished));
    call.run();
  }

  refused(err: BeaconError, client: string): void {
    this.deps.metrics.localReply(this.deps.listener, '', 'bad_request');
    this.deps.log.connection(this.deps.listener, client, '', '', 0, 0, 0, `bad_request: ${err.message}`);
  }

  /** @internal An instance's answer was relayed whole. */
  relayed(call: Call, t: Try): void {
    const { clock, log } = this.deps;
    const ms = clock.now() - call.t0;
    this.counts.get(call.route)!.add(t.ep.id, t.status, ms);
    log.request(call.req, t.status, ms, call.route.name, t.ep.id, call.tries, call.up.view.datacenter);
  }

  /** The proxy's own answer: Beacon's error body, counted and logged. */
  reply(res: ProxyResponse, req: ProxyRequest, route: Route | undefined, up: Upstream | undefined, reason: LocalReply, err: BeaconError, t0: number): void {
    const { clock, metrics, log, listener } = this.deps;
    const status = STATUS[reason];
    if (!res.headersSent) res.send(status, 'application/json', JSON.stringify(err.toJSON()));
    else res.destroy();
    const ms = clock.now() - t0;
    metrics.localReply(listener, route?.name ?? '', reason);
    if (route) this.counts.get(route)!.add('', status, ms);
    log.request(req, status, ms, route?.name ?? '', '', 0, up?.view.datacenter, reason);
  }

  /** An Upgrade request (WebSocket and any other) passes through as bytes once routed. */
  upgrade(req: ProxyRequest, socket: Socket, rest: Buffer): void {
    const { clock, metrics, log } = this.deps;
    const t0 = clock.now();
    // An upgraded connection (WebSocket) counts as under way until it closes, so drains wait for it.
    this.active++;
    socket.once('close', () => this.active--);
    const host = hostOf(req.head.host);
    const route = matchRoute(this.deps.routes, host, req.head.target, (name) => req.header(name));
    const refuse = (status: number, reason: LocalReply, message: string) => {
      closeWithError(socket, status, new BeaconError(status === 404 ? 'not_found' : 'unavailable', message, { reason }));
      metrics.localReply(this.deps.listener, route?.name ?? '', reason);
      log.request(req, status, clock.now() - t0, route?.name ?? '', '', 0, undefined, reason);
    };
    if (!route) return refuse(404, 'no_route', `no route for host ${JSON.stringify(host)}`);
    const up = route.choose();
    let ep: EndpointState;
    try {
      ep = up.pick(hashKey(route, req));
    } catch (err) {
      return refuse(503, 'no_instance', (err as Error).message);
    }
    up.started(ep);
    const upstream: Socket = netConnect({ host: ep.target.host, port: ep.target.port, noDelay: true });
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      up.responded(ep, 101, clock.now() - t0);
      upstream.write(requestHead(req, upstreamPath(route, req.head.target)));
      if (rest.length) upstream.write(rest);
      upstream.pipe(socket).pipe(upstream);
      log.request(req, 101, clock.now() - t0, route.name, ep.id, 1, up.view.datacenter);
    });
    upstream.once('error', (err) => {
      if (!connected) {
        up.failed(ep, err, clock.now() - t0);
        refuse(503, 'connect', `${ep.id} refused the connection: ${err.message}`);
      } else socket.destroy();
    });
    socket.once('error', () => upstream.destroy());
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      up.finished(ep);
      socket.destroy();
    });
  }
}

const clientGoneError = () => Object.assign(new Error('the client went away'), { code: 'ABORT_ERR' });
const RESOLVED = Promise.resolve();

/** One request from routing to the end of its answer: its tries, timeouts and the client's side. */
class Call {
  /** Instances tried so far (the retry policy avoids them). */
  readonly tried = new Set<string>();
  /** Where the current try's outcome goes on the promise path; unset on the first try's callback path. */
  private waiter: { resolve(t: Try): void; reject(err: unknown): void } | undefined;
  private current: Try | undefined;
  private retry: RetryPolicy | undefined;
  private started = 0;
  private overallTimer: Timer | undefined;
  private timedOut: BeaconError | undefined;
  private clientGone = false;
  private readonly cls: RetryClass;
  private readonly key: string | undefined;
  private readonly method: string;
  private readonly target: string;
  private readonly headers: string[];
  private readonly overallMs: number;
  private readonly endAt: number;

  constructor(
    private readonly fwd: HttpForwarder,
    readonly req: ProxyRequest,
    readonly res: ProxyResponse,
    readonly route: Route,
    readonly up: Upstream,
    readonly t0: number,
  ) {
    const head = req.head;
    const body = req.body;
    this.method = head.method;
    // A streamed body cannot be sent twice: only requests without one, or with a buffered one, retry.
    this.cls = body !== null && !Buffer.isBuffer(body) ? 'none' : isIdempotent(head.method) || req.header('idempotency-key') !== undefined ? 'idempotent' : 'connect-only';
    this.key = hashKey(route, req);
    this.headers = forwardHeaders(req, route.service);
    this.target = upstreamPath(route, head.target);
    // The whole exchange is bounded by the route's timeout and the caller's own deadline header.
    const clock = fwd.deps.clock;
    const deadlineHeader = req.header(DEADLINE_HEADER);
    const callerDeadline = deadlineHeader === undefined ? undefined : readDeadline({ [DEADLINE_HEADER]: deadlineHeader }, { clock });
    let overallMs = route.timeoutMs ?? Infinity;
    if (callerDeadline) overallMs = Math.min(overallMs, callerDeadline.remainingMs());
    this.overallMs = overallMs;
    this.endAt = t0 + overallMs;
  }

  get clock(): Clock {
    return this.fwd.deps.clock;
  }

  get tries(): number {
    return this.tried.size;
  }

  run(): void {
    const { up, overallMs } = this;
    if (overallMs !== Infinity) {
      this.overallTimer = this.fwd.deps.clock.setTimeout(() => {
        this.timedOut = new BeaconError('timeout', `${this.route.service} did not answer within ${Math.round(overallMs)} ms (the route's timeout or the caller's deadline)`, { reason: 'timeout', service: this.route.service });
        this.current?.abort(this.timedOut);
      }, overallMs);
    }
    this.retry = up.retryFor(this.cls);
    if (!up.view.isSynced || up.bulkhead) return void this.viaPromises();
    // The callback path: the first try's outcome comes back to settled() with no waiter set.
    if (this.retry) this.started = this.retry.begin();
    try {
      this.attempt();
    } catch (err) {
      this.settled(undefined, err);
    }
  }

  /** The client's side closed: the answer completed (true), or the client left before it did. */
  closed(finished: boolean): void {
    this.fwd.active--;
    if (finished) return;
    this.clientGone = true;
    this.current?.abort(clientGoneError());
  }

  /** The promise path: waits for discovery, goes through the bulkhead, and every try is a promise. */
  private async viaPromises(): Promise<void> {
    const { up } = this;
    try {
      if (!up.view.isSynced) await up.whenReady(undefined, this.overallMs);
      const run = () => (this.retry ? this.retry.execute(() => this.tryAsPromise()) : this.tryAsPromise());
      this.answered(up.bulkhead ? await up.bulkhead.execute(run) : await run());
    } catch (err) {
      this.failed(err);
    }
  }

  private tryAsPromise(): Promise<Try> {
    return new Promise<Try>((resolve, reject) => {
      this.waiter = { resolve, reject };
      try {
        this.attempt();
      } catch (err) {
        this.waiter = undefined;
        reject(err);
      }
    });
  }

  /** Starts a try on a picked instance; its outcome comes to {@link settled}. Throws when there is nothing to pick. */
  private attempt(): void {
    if (this.timedOut) throw this.timedOut;
    if (this.clientGone) throw clientGoneError();
    const { up, route, fwd } = this;
    const clock = fwd.deps.clock;
    const ep = up.pick(this.key, this.tried);
    this.tried.add(ep.id);
    up.started(ep);
    const start = clock.now();
    let budget = route.tryTimeoutMs ?? Infinity;
    if (this.overallMs !== Infinity) budget = Math.min(budget, this.endAt - start);
    const headers = budget === Infinity ? this.headers : [...this.headers, DEADLINE_HEADER, String(Math.max(0, Math.floor(budget)))];
    const t = new Try(this, ep, start);
    this.current = t;
    t.send(fwd.deps.pools.get(ep), { method: this.method, path: this.target, headers, body: this.req.body, chunked: this.req.head.chunked });
    if (route.tryTimeoutMs !== undefined) t.limit(clock, route.tryTimeoutMs);
  }

  /** @internal A try's outcome: an answer's head, or an error before one. */
  settled(t: Try | undefined, err?: unknown): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (t) w.resolve(t);
      else w.reject(err);
      return;
    }
    // The first try, on the callback path.
    const retry = this.retry;
    if (!retry) return t ? this.answered(t) : this.failed(err);
    const first: FailureReason<Try> = t ? { value: t } : { error: err as Error };
    if (retry.accepts(first, this.started)) return this.answered(t!);
    retry.resume(first, () => this.tryAsPromise(), this.started).then(
      (answer) => this.answered(answer),
      (e: unknown) => this.failed(e),
    );
  }

  /** Streams an instance's answer to the client. */
  private answered(t: Try): void {
    this.overallTimer?.cancel();
    this.res.start(t.status, t.statusText, t.headers);
    t.pipeTo(this.res);
  }

  private failed(err: unknown): void {
    this.overallTimer?.cancel();
    if (this.clientGone) return;
    const [reason, e] = failure(this.timedOut ?? err, this.route, this.up);
    this.fwd.reply(this.res, this.req, this.route, this.up, reason, e, this.t0);
  }

  /** @internal The answer went to the client whole. */
  relayed(t: Try): void {
    this.fwd.relayed(this, t);
  }
}

/**
 * One try of a request on one instance: the exchange's handler, then the answer it yields, whose
 * body is held back until it is piped to the client (or thrown away for a retry, through `body`).
 */
class Try implements ExchangeHandler {
  status = 0;
  statusText = '';
  /** Response headers as a flat [name, value, …] list, hop-by-hop ones removed. */
  headers: string[] = [];
  /** What the retry policy cancels when it throws this answer away for another try. */
  readonly body = this;
  private exchange: Exchange | undefined;
  private sink: ProxyResponse | undefined;
  private discard = false;
  private answeredHead = false;
  private timer: Timer | undefined;
  private resumeOnDrain: (() => void) | undefined;

  constructor(
    private readonly call: Call,
    readonly ep: EndpointState,
    private readonly start: number,
  ) {}

  send(pool: HttpPool, req: UpstreamRequest): void {
    this.exchange = pool.request(req, this);
  }

  limit(clock: Clock, ms: number): void {
    this.timer = clock.setTimeout(() => this.abort(new BeaconError('timeout', `${this.ep.id} did not answer within ${ms} ms (tryTimeoutMs)`, { reason: 'timeout', instance: this.ep.id })), ms);
  }

  abort(err: Error): void {
    this.exchange?.abort(err);
  }

  /** Streams the body into the client's answer. */
  pipeTo(res: ProxyResponse): void {
    this.sink = res;
    this.exchange!.resume();
  }

  cancel(): Promise<void> {
    this.discard = true;
    this.exchange!.resume();
    return RESOLVED;
  }

  onHeaders(status: number, statusText: string, headers: string[]): void {
    this.timer?.cancel();
    this.answeredHead = true;
    const { up } = this.call;
    up.responded(this.ep, status, this.elapsed());
    this.status = status;
    this.statusText = statusText;
    this.headers = headers;
    this.call.settled(this);
  }

  onData(chunk: Buffer): boolean {
    if (this.discard) return true;
    const sink = this.sink;
    if (!sink) return false;
    if (sink.write(chunk)) return true;
    // Paused until the client's side drains (at most one listener: nothing flows meanwhile).
    sink.onDrain((this.resumeOnDrain ??= () => this.exchange!.resume()));
    return false;
  }

  onComplete(): void {
    this.call.up.finished(this.ep);
    const sink = this.sink;
    if (!sink) return;
    sink.end();
    this.call.relayed(this);
  }

  onError(err: Error): void {
    this.timer?.cancel();
    const { up } = this.call;
    if (!this.answeredHead) up.failed(this.ep, err, this.elapsed());
    up.finished(this.ep);
    // An instance that breaks off mid-body: the client's connection is cut, as the status is sent.
    if (this.answeredHead) this.sink?.destroy();
    else this.call.settled(undefined, err);
  }

  private elapsed(): number {
    return this.call.clock.now() - this.start;
  }
}

const STATUS: Record<LocalReply, number> = { bad_request: 400, no_route: 404, no_instance: 503, connect: 503, reset: 502, timeout: 504, overloaded: 429 };

/** Why an exchange failed, as the proxy's reason and the error it answers with. */
function failure(err: unknown, route: Route, up: Upstream): [LocalReply, BeaconError] {
  if (isBulkheadRejectedError(err)) {
    return ['overloaded', new BeaconError('too_many_requests', `route ${route.name} has reached its maxConcurrent`, { reason: 'bulkhead', service: route.service })];
  }
  if (isBeaconError(err)) {
    if (err.code === 'too_many_requests') return ['overloaded', err];
    if (err.code === 'timeout') return ['timeout', err];
    if (err.code === 'not_found' || err.code === 'unavailable') {
      // Not a 404: the route exists, the service has nothing to take the request now.
      const details = { ...(err.details as object), service: up.service };
      return ['no_instance', new BeaconError('unavailable', err.message, details)];
    }
  }
  const kind = classifyError(err);
  const message = (err as Error).message;
  switch (kind) {
    case 'connect':
      return ['connect', new BeaconError('unavailable', `could not connect to an instance of ${route.service}: ${message}`, { reason: 'connect', service: route.service })];
    case 'timeout':
      return ['timeout', new BeaconError('timeout', `${route.service} did not answer in time: ${message}`, { reason: 'timeout', service: route.service })];
    case 'cancelled':
    case 'reset':
      return ['reset', new BeaconError('unavailable', `an instance of ${route.service} closed the connection before answering: ${message}`, { reason: 'reset', service: route.service })];
  }
}

function hashKey(route: Route, req: ProxyRequest): string | undefined {
  const on = route.hashOn;
  if (on === undefined) return undefined;
  if (on === 'client-ip') return req.remoteAddress;
  return req.header(on.header);
}

/**
 * The request's headers for the instance as a flat list: hop-by-hop ones dropped, X-Forwarded-*
 * added, and a Host (the service's name) for an HTTP/1.0 client that sent none, since the
 * request goes on as HTTP/1.1.
 */
function forwardHeaders(req: ProxyRequest, service: string): string[] {
  const raw = req.head.headers;
  // Headers the client named in Connection are for this hop only, too.
  const named = req.head.hopNames;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let proto = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.includes(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (lower === 'x-forwarded-proto') proto = true;
    out.push(name, raw[i + 1]!);
  }
  const ip = req.remoteAddress;
  if (req.head.host === undefined) out.push('host', service);
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${ip}` : ip);
  if (!proto) out.push('x-forwarded-proto', 'http');
  return out;
}

/** The raw head of an Upgrade request, as the client sent it (Connection/Upgrade kept). */
function requestHead(req: ProxyRequest, path: string): string {
  let s = `${req.head.method} ${path} HTTP/1.1\r\n`;
  const raw = req.head.headers;
  for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return s + `X-Forwarded-For: ${req.remoteAddress}\r\n\r\n`;
}
