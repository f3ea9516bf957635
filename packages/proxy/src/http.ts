import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isBulkheadRejectedError } from 'cockatiel';
import { classifyError, DEADLINE_HEADER, isIdempotent, readDeadline, type EndpointState, type RetryClass, type Upstream } from '@beacon/client';
import { BeaconError, isBeaconError, type Clock, type Timer } from '@beacon/core';
import type { AccessLog } from './access-log.js';
import type { Pools } from './pools.js';
import type { LocalReply, ProxyMetrics } from './metrics.js';
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
  /** True once the proxy drains: answers close their connection. */
  draining(): boolean;
}

/** One answer from an instance: its head, with the body held back until {@link Answer.pipeTo}. */
interface Answer {
  ep: EndpointState;
  status: number;
  statusText: string;
  /** Response headers as a flat [name, value, …] list, hop-by-hop ones removed. */
  headers: string[];
  /** Streams the body into the client's response; `onEnd` once it is all handed to it. */
  pipeTo(res: ServerResponse, onError: () => void, onEnd: () => void): void;
  /** The retry policy throws away an answer it retries through this. */
  body: { cancel(): Promise<void> };
}

/**
 * L7 forwarding: node:http parses what clients send; each request goes to an instance picked
 * through the SDK's upstream (balancer, breaker, ejection, per-instance cap) over a keep-alive
 * pool of plain sockets ({@link HttpPool}), the outcome is reported back, and retries go through
 * the upstream's own retry policy (budget, jittered backoff, idempotent only).
 */
export class HttpForwarder {
  /** Requests and upgraded connections under way, which a drain waits for. */
  active = 0;

  constructor(private readonly deps: HttpForwarderDeps) {}

  /** The `request` handler of the listener's http.Server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    void this.forward(req, res);
  };

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { clock } = this.deps;
    const t0 = clock.now();
    this.active++;
    // The one close listener of a request: counts it done and, if the client left early, aborts the attempt.
    let onGone: (() => void) | undefined;
    res.on('close', () => {
      this.active--;
      if (!res.writableFinished) onGone?.();
    });
    if (this.deps.draining()) res.setHeader('connection', 'close');
    const host = hostOf(req.headers.host);
    const path = req.url ?? '/';
    const route = matchRoute(this.deps.routes, host, path, req.headers);
    if (!route) {
      this.reply(res, req, undefined, 'no_route', new BeaconError('not_found', `no route for host ${JSON.stringify(host)} and path ${JSON.stringify(path.split('?')[0])}`, { reason: 'no_route', host }), t0);
      return;
    }
    const up = route.choose();
    const method = req.method ?? 'GET';
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const chunked = hasBody && req.headers['content-length'] === undefined;
    // A body is streamed, not buffered, so it cannot be sent twice: only body-less requests retry.
    const cls: RetryClass = hasBody ? 'none' : isIdempotent(method, req.headers['idempotency-key'] !== undefined) ? 'idempotent' : 'connect-only';
    const key = hashKey(route, req);
    const headers = forwardHeaders(req);
    const target = upstreamPath(route, path);

    // The whole exchange is bounded by the route's timeout and the caller's own deadline header.
    const callerDeadline = readDeadline(req.headers, { clock });
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
        let sink: ServerResponse | undefined;
        let discard = false;
        let sinkError: () => void = () => {};
        let sinkEnd: () => void = () => {};
        let answered = false;
        const exchange = this.deps.pools.get(ep.target.host, ep.target.port).request(
          { method, path: target, headers: sent, body: hasBody ? req : null, chunked },
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
              sink.once('drain', () => exchange.resume());
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
      this.relay(req, res, route, answer, t0, tried.size);
    } catch (err) {
      overallTimer?.cancel();
      if (clientGone) return;
      const [reason, e] = failure(timedOut ?? err, route, up);
      this.reply(res, req, route, reason, e, t0);
    }
  }

  /** Streams an instance's answer to the client. */
  private relay(req: IncomingMessage, res: ServerResponse, route: Route, a: Answer, t0: number, tries: number): void {
    res.writeHead(a.status, a.statusText, a.headers);
    // An instance that breaks off mid-body: the client's connection is cut, as the status is sent.
    a.pipeTo(
      res,
      () => res.destroy(),
      () => {
        const { clock, metrics, log } = this.deps;
        const ms = clock.now() - t0;
        metrics.request(route.name, route.service, a.ep.id, a.status, ms / 1000);
        log.request(req, a.status, ms, route.name, a.ep.id, tries);
      },
    );
  }

  /** The proxy's own answer: Beacon's error body, counted and logged. */
  private reply(res: ServerResponse, req: IncomingMessage, route: Route | undefined, reason: LocalReply, err: BeaconError, t0: number): void {
    const { clock, metrics, log, listener } = this.deps;
    const status = STATUS[reason];
    const body = JSON.stringify(err.toJSON());
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    else res.destroy();
    const ms = clock.now() - t0;
    metrics.localReply(listener, route?.name ?? '', reason);
    if (route) metrics.request(route.name, route.service, '', status, ms / 1000);
    log.request(req, status, ms, route?.name ?? '', '', 0, reason);
  }

  /** The `upgrade` handler: WebSocket (and any Upgrade) passes through as bytes once routed. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { clock, metrics, log } = this.deps;
    const t0 = clock.now();
    // An upgraded connection (WebSocket) counts as under way until it closes, so drains wait for it.
    this.active++;
    socket.once('close', () => this.active--);
    const host = hostOf(req.headers.host);
    const route = matchRoute(this.deps.routes, host, req.url ?? '/', req.headers);
    const refuse = (status: number, reason: LocalReply, message: string) => {
      const body = JSON.stringify(new BeaconError(status === 404 ? 'not_found' : 'unavailable', message, { reason }).toJSON());
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      metrics.localReply(this.deps.listener, route?.name ?? '', reason);
      log.request(req, status, clock.now() - t0, route?.name ?? '', '', 0, reason);
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
      upstream.write(requestHead(req, upstreamPath(route, req.url ?? '/')));
      if (head.length) upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
      log.request(req, 101, clock.now() - t0, route.name, ep.id, 1);
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
  };
}

const STATUS: Record<LocalReply, number> = { no_route: 404, no_instance: 503, connect: 503, reset: 502, timeout: 504, overloaded: 429 };

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

function hashKey(route: Route, req: IncomingMessage): string | undefined {
  const on = route.hashOn;
  if (on === undefined) return undefined;
  if (on === 'client-ip') return req.socket.remoteAddress;
  const v = req.headers[on.header.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The request's headers for the instance as a flat list: hop-by-hop ones dropped, X-Forwarded-* added. */
function forwardHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const conn = req.headers.connection;
  // Headers the client named in Connection are for this hop only, too.
  const named = conn && conn !== 'keep-alive' && conn !== 'close' ? new Set(conn.split(',').map((n) => n.trim().toLowerCase())) : undefined;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let proto = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (lower === 'x-forwarded-proto') proto = true;
    out.push(name, raw[i + 1]!);
  }
  const ip = req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${ip}` : ip);
  if (!proto) out.push('x-forwarded-proto', 'http');
  return out;
}

/** The raw head of an Upgrade request, as the client sent it (Connection/Upgrade kept). */
function requestHead(req: IncomingMessage, path: string): string {
  let s = `${req.method} ${path} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return s + `X-Forwarded-For: ${req.socket.remoteAddress ?? ''}\r\n\r\n`;
}
