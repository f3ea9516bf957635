import { connect as netConnect, type Socket } from 'node:net';
import { isBulkheadRejectedError } from 'cockatiel';
import { classifyError, DEADLINE_HEADER, isIdempotent, readDeadline, type EndpointState, type RetryClass, type Upstream } from '@beacon/client';
import { BeaconError, isBeaconError, type Clock, type Timer } from '@beacon/core';
import type { AccessLog } from './access-log.js';
import type { DownstreamHandler, ProxyRequest, ProxyResponse } from './downstream.js';
import type { Pools } from './pools.js';
import type { LocalReply, ProxyMetrics, RouteCounts } from './metrics.js';
import { hostOf, matchRoute, upstreamPath, type Route } from './routes.js';
import { HOP_BY_HOP } from './upstream-http.js';

export interface HttpForwarderDeps {
  listener: string;
  routes: readonly Route[];
  clock: Clock;
  metrics: ProxyMetrics;
  log: AccessLog;
  /** Keep-alive connection pools, one per instance address. */
  pools: Pools;
}

/** One answer from an instance: its head, with the body held back until {@link Answer.pipeTo}. */
interface Answer {
  ep: EndpointState;
  status: number;
  statusText: string;
  /** Response headers as a flat [name, value, …] list, hop-by-hop ones removed. */
  headers: string[];
  /** Streams the body into the client's response; `onEnd` once it is all handed to it. */
  pipeTo(res: ProxyResponse, onError: () => void, onEnd: () => void): void;
  /** The retry policy throws away an answer it retries through this. */
  body: { cancel(): Promise<void> };
}

/**
 * L7 forwarding: {@link Downstream} parses what clients send; each request goes to an instance
 * picked through the SDK's upstream (balancer, breaker, ejection, per-instance cap) over a
 * keep-alive pool of plain sockets ({@link HttpPool}), the outcome is reported back, and retries go
 * through the upstream's own retry policy (budget, jittered backoff, idempotent only). A body is
 * retried only when it was small enough to be buffered whole.
 */
export class HttpForwarder implements DownstreamHandler {
  /** Requests and upgraded connections under way, which a drain waits for. */
  active = 0;

  /** The last Host header seen and its routing name: clients of one listener mostly send one Host. */
  private lastHost: string | undefined;
  private lastHostName = '';
  /** Each route's counters, held here so a request adds to plain numbers (read when scraped). */
  private readonly counts = new Map<Route, RouteCounts>();

  constructor(private readonly deps: HttpForwarderDeps) {
    for (const r of deps.routes) this.counts.set(r, deps.metrics.route(r.name, r.service));
  }

  request(req: ProxyRequest, res: ProxyResponse): void {
    void this.forward(req, res);
  }

  refused(err: BeaconError, client: string): void {
    this.deps.metrics.localReply(this.deps.listener, '', 'bad_request');
    this.deps.log.connection(this.deps.listener, client, '', '', 0, 0, 0, `bad_request: ${err.message}`);
  }

  private async forward(req: ProxyRequest, res: ProxyResponse): Promise<void> {
    const { clock } = this.deps;
    const t0 = clock.now();
    this.active++;
    // The one close callback of a request: counts it done and, if the client left early, aborts the attempt.
    let onGone: (() => void) | undefined;
    res.onClose((finished) => {
      this.active--;
      if (!finished) onGone?.();
    });
    const head = req.head;
    if (head.host !== this.lastHost) {
      this.lastHost = head.host;
      this.lastHostName = hostOf(head.host);
    }
    const host = this.lastHostName;
    const path = head.target;
    const route = matchRoute(this.deps.routes, host, path, (name) => req.header(name));
    if (!route) {
      this.reply(res, req, undefined, undefined, 'no_route', new BeaconError('not_found', `no route for host ${JSON.stringify(host)} and path ${JSON.stringify(path.split('?')[0])}`, { reason: 'no_route', host }), t0);
      return;
    }
    const up = route.choose();
    const method = head.method;
    const body = req.body;
    // A streamed body cannot be sent twice: only requests without one, or with a buffered one, retry.
    const cls: RetryClass = body !== null && !Buffer.isBuffer(body) ? 'none' : isIdempotent(method, req.header('idempotency-key') !== undefined) ? 'idempotent' : 'connect-only';
    const key = hashKey(route, req);
    const headers = forwardHeaders(req, route.service);
    const target = upstreamPath(route, path);

    // The whole exchange is bounded by the route's timeout and the caller's own deadline header.
    const deadlineHeader = req.header(DEADLINE_HEADER);
    const callerDeadline = deadlineHeader === undefined ? undefined : readDeadline({ [DEADLINE_HEADER]: deadlineHeader }, { clock });
    let overallMs = route.timeoutMs ?? Infinity;
    if (callerDeadline) overallMs = Math.min(overallMs, callerDeadline.remainingMs());
    const endAt = t0 + overallMs;
    let abortCurrent: ((err: Error) => void) | undefined;
    let overallTimer: Timer | undefined;
    let timedOut: BeaconError | undefined;
    if (overallMs !== Infinity) {
      overallTimer = clock.setTimeout(() => {
        timedOut = new BeaconError('timeout', `${route.service} did not answer within ${Math.round(overallMs)} ms (the route's timeout or the caller's deadline)`, { reason: 'timeout', service: route.service });
        abortCurrent?.(timedOut);
      }, overallMs);
    }
    let clientGone = false;
    onGone = () => {
      clientGone = true;
      abortCurrent?.(Object.assign(new Error('the client went away'), { code: 'ABORT_ERR' }));
    };

    const attempt = (tried: Set<string>): Promise<Answer> => {
      if (timedOut) return Promise.reject(timedOut);
      if (clientGone) return Promise.reject(Object.assign(new Error('the client went away'), { code: 'ABORT_ERR' }));
      const ep = up.pick(key, tried);
      tried.add(ep.id);
      up.started(ep);
      const start = clock.now();
      let budget = route.tryTimeoutMs ?? Infinity;
      if (overallMs !== Infinity) budget = Math.min(budget, endAt - start);
      const sent = budget === Infinity ? headers : [...headers, DEADLINE_HEADER, String(Math.max(0, Math.floor(budget)))];
      return new Promise<Answer>((resolve, reject) => {
        let tryTimer: Timer | undefined;
        let sink: ProxyResponse | undefined;
        let discard = false;
        let sinkError: () => void = () => {};
        let sinkEnd: () => void = () => {};
        let answered = false;
        const exchange = this.deps.pools.get(ep).request(
          { method, path: target, headers: sent, body, chunked: head.chunked },
          {
            onHeaders: (status, statusText, answerHeaders) => {
              tryTimer?.cancel();
              answered = true;
              up.responded(ep, status, clock.now() - start);
              resolve({
                ep,
                status,
                statusText,
                headers: answerHeaders,
                pipeTo: (out, onError, onEnd) => {
                  sink = out;
                  sinkError = onError;
                  sinkEnd = onEnd;
                  exchange.resume();
                },
                body: {
                  cancel: () => {
                    discard = true;
                    exchange.resume();
                    return Promise.resolve();
                  },
                },
              });
            },
            onData: (chunk) => {
              if (discard) return true;
              if (!sink) return false;
              if (sink.write(chunk)) return true;
              // Paused until the client's side drains (at most one listener: nothing flows meanwhile).
              sink.onDrain(() => exchange.resume());
              return false;
            },
            onComplete: () => {
              up.finished(ep);
              if (!sink) return;
              sink.end();
              sinkEnd();
            },
            onError: (err) => {
              tryTimer?.cancel();
              if (!answered) up.failed(ep, err, clock.now() - start);
              up.finished(ep);
              if (answered) sinkError();
              else reject(err);
            },
          },
        );
        abortCurrent = (err) => exchange.abort(err);
        if (route.tryTimeoutMs !== undefined) {
          const ms = route.tryTimeoutMs;
          tryTimer = clock.setTimeout(() => exchange.abort(new BeaconError('timeout', `${ep.id} did not answer within ${ms} ms (tryTimeoutMs)`, { reason: 'timeout', instance: ep.id })), ms);
        }
      });
    };

    try {
      if (!up.view.isSynced) await up.whenReady(undefined, overallMs);
      const tried = new Set<string>();
      const retry = up.retryFor(cls);
      const run = () => (retry ? retry.execute(() => attempt(tried)) : attempt(tried));
      const answer = up.bulkhead ? await up.bulkhead.execute(run) : await run();
      overallTimer?.cancel();
      this.relay(req, res, route, up, answer, t0, tried.size);
    } catch (err) {
      overallTimer?.cancel();
      if (clientGone) return;
      const [reason, e] = failure(timedOut ?? err, route, up);
      this.reply(res, req, route, up, reason, e, t0);
    }
  }

  /** Streams an instance's answer to the client. */
  private relay(req: ProxyRequest, res: ProxyResponse, route: Route, up: Upstream, a: Answer, t0: number, tries: number): void {
    res.start(a.status, a.statusText, a.headers);
    // An instance that breaks off mid-body: the client's connection is cut, as the status is sent.
    a.pipeTo(
      res,
      () => res.destroy(),
      () => {
        const { clock, log } = this.deps;
        const ms = clock.now() - t0;
        this.counts.get(route)!.add(a.ep.id, a.status, ms);
        log.request(req, a.status, ms, route.name, a.ep.id, tries, up.view.datacenter);
      },
    );
  }

  /** The proxy's own answer: Beacon's error body, counted and logged. */
  private reply(res: ProxyResponse, req: ProxyRequest, route: Route | undefined, up: Upstream | undefined, reason: LocalReply, err: BeaconError, t0: number): void {
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
      const body = JSON.stringify(new BeaconError(status === 404 ? 'not_found' : 'unavailable', message, { reason }).toJSON());
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
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
