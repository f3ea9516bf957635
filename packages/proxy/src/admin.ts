import { createServer, type Server } from 'node:http';
import { inAnswers, type Clock } from '@beacon/core';
import type { ProxyMetrics } from './metrics.js';
import type { Route } from './routes.js';

/** What `GET /routes` on the admin port answers. */
export interface RoutesSnapshot {
  draining: boolean;
  listeners: {
    listen: string;
    address: string;
    protocol: 'http' | 'tcp';
    routes: {
      name: string;
      service: string;
      match: { hosts?: string[]; pathPrefix?: string; stripPrefix?: boolean; headers?: Record<string, string> };
      /** Another datacenter the route reads (`dc`), or its failover policy in the server's form (`nearest:1,ap-south`). */
      dc?: string;
      failover?: string;
      subsets: {
        name: string;
        weight: number;
        balancer: string;
        stale: boolean;
        /** The datacenter the instances came from, when the server says (routes with `dc` or `failover`). */
        datacenter?: string;
        instances: InstanceState[];
      }[];
    }[];
  }[];
}

export interface InstanceState {
  id: string;
  address: string;
  port: number;
  zone: string;
  weight: number;
  /** ready: takes new traffic; draining: terminating, finishing what it has; not-ready: failing or in maintenance; ejected / circuit-open: passed over by this proxy. */
  state: 'ready' | 'draining' | 'not-ready' | 'ejected' | 'circuit-open';
  ejectedUntil?: string;
  inflight: number;
  latencyMs: number;
}

export interface ListenerView {
  listen: string;
  address: string;
  protocol: 'http' | 'tcp';
  routes: readonly Route[];
}

/**
 * The routing table as it is now: listeners, routes, and each upstream instance with its state.
 *
 * @example
 * routesSnapshot(listeners, clock, false).listeners[0].routes[0].subsets[0].instances;
 */
export function routesSnapshot(listeners: readonly ListenerView[], clock: Clock, draining: boolean): RoutesSnapshot {
  const now = clock.now();
  return {
    draining,
    listeners: listeners.map((l) => ({
      listen: l.listen,
      address: l.address,
      protocol: l.protocol,
      routes: l.routes.map((r) => ({
        name: r.name,
        service: r.service,
        ...scopeOf(r),
        match: {
          ...(r.hosts ? { hosts: [...r.hosts] } : {}),
          ...(r.pathPrefix !== undefined ? { pathPrefix: r.pathPrefix, stripPrefix: r.strip } : {}),
          ...(r.headers.length ? { headers: Object.fromEntries(r.headers) } : {}),
        },
        subsets: r.subsets.map((s) => ({
          name: s.name,
          weight: s.weight,
          balancer: s.upstream.balancer.name,
          stale: s.upstream.view.stale,
          ...(s.upstream.view.datacenter !== undefined ? { datacenter: s.upstream.view.datacenter } : {}),
          instances: s.upstream.endpoints().map((e): InstanceState => {
            const i = e.instance;
            const state: InstanceState['state'] = i.conditions.terminating
              ? 'draining'
              : !inAnswers(i, true)
                ? 'not-ready'
                : e.outlier.isEjected(now)
                  ? 'ejected'
                  : e.breaker && !e.breaker.isAvailable()
                    ? 'circuit-open'
                    : 'ready';
            return {
              id: e.id,
              address: e.target.host,
              port: e.target.port,
              zone: e.zone,
              weight: e.weight,
              state,
              ...(state === 'ejected' ? { ejectedUntil: new Date(e.outlier.ejectedUntil).toISOString() } : {}),
              inflight: e.inflight,
              latencyMs: Math.round(e.latencyMs(now) * 1000) / 1000,
            };
          }),
        })),
      })),
    })),
  };
}

/** Every subset of a route reads the same DCs: the first one's filter says which. */
function scopeOf(r: Route): { dc?: string; failover?: string } {
  const f = r.subsets[0]!.upstream.view.filter;
  return { ...(f.dc !== undefined ? { dc: f.dc } : {}), ...(f.failover !== undefined ? { failover: f.failover } : {}) };
}

/**
 * The admin port: `GET /metrics` (Prometheus), `GET /routes` (the routing table with instance
 * states), `GET /healthz` (200 while serving, 503 while draining, for the load balancer in front).
 *
 * @example
 * const admin = adminServer(metrics, () => routesSnapshot(listeners, clock, false));
 */
export function adminServer(metrics: ProxyMetrics, snapshot: () => RoutesSnapshot): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: { code: 'invalid_argument', message: 'the admin port answers GET only' } });
    switch (path) {
      case '/metrics':
        void metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
          (err: Error) => json(500, { error: { code: 'internal', message: err.message } }),
        );
        return;
      case '/routes':
        return json(200, snapshot());
      case '/healthz': {
        const s = snapshot();
        return json(s.draining ? 503 : 200, { status: s.draining ? 'draining' : 'serving' });
      }
      default:
        return json(404, { error: { code: 'not_found', message: `no ${path} here: try /routes, /metrics or /healthz` } });
    }
  });
}
