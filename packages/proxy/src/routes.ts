import type { BalancerSpec, ServicePolicy, Upstream } from '@beacon/client';
import type { Random } from '@beacon/core';
import type { ListenerConfig, Policy, RouteConfig } from './config.js';

/** Where the proxy gets routing state from: the SDK client (`client.upstream(service, route)`). */
export interface UpstreamSource {
  upstream(service: string, route: { key: string; policy: ServicePolicy }): Upstream;
}

/** One weighted subset of a route's service (the whole service when the route has no split). */
export interface Subset {
  readonly name: string;
  readonly weight: number;
  readonly upstream: Upstream;
}

/** A route as the proxy runs it: its match, where it sends traffic, and how it picks the hash key. */
export interface Route {
  readonly name: string;
  readonly service: string;
  readonly hosts: ReadonlySet<string> | undefined;
  readonly pathPrefix: string | undefined;
  readonly strip: boolean;
  readonly headers: readonly (readonly [string, string])[];
  readonly subsets: readonly Subset[];
  /** Where a request's consistent-hashing key comes from. */
  readonly hashOn: 'client-ip' | { header: string } | undefined;
  readonly timeoutMs: number | undefined;
  readonly tryTimeoutMs: number | undefined;
  /** Picks a subset by weight (canary splits). */
  choose(): Upstream;
}

/**
 * Translates a route's policy (the config's words) into the SDK's {@link ServicePolicy}: the
 * proxy runs the client's own balancers, retries, breakers, ejection and bulkheads.
 *
 * @example
 * toServicePolicy({ balancer: 'ewma', retries: { max: 1 } }, { tags: ['v2'] });
 */
export function toServicePolicy(p: Policy, filter: ServicePolicy['filter']): ServicePolicy {
  const out: ServicePolicy = {};
  const name = p.balancer ?? 'least-request';
  const balancer: BalancerSpec = p.zoneAware ? { zoneAware: name, ...(typeof p.zoneAware === 'object' ? { minHealthyShare: p.zoneAware.minHealthyShare } : {}) } : name;
  out.balancer = balancer;
  if (filter) out.filter = filter;
  if (p.port !== undefined) out.port = p.port;
  if (p.retries === false) out.retry = false;
  else if (p.retries) {
    const r = p.retries;
    out.retry = {
      ...(r.max !== undefined ? { maxRetries: r.max } : {}),
      ...(r.baseMs !== undefined ? { baseMs: r.baseMs } : {}),
      ...(r.maxMs !== undefined ? { maxMs: r.maxMs } : {}),
      ...(r.statuses ? { statuses: r.statuses } : {}),
      budget: { ...(r.budgetRatio !== undefined ? { ratio: r.budgetRatio } : {}), ...(r.budgetMinPerSecond !== undefined ? { minPerSecond: r.budgetMinPerSecond } : {}) },
    };
  }
  if (p.outlier !== undefined) out.outlier = p.outlier;
  if (p.breaker !== undefined) out.breaker = p.breaker;
  if (p.maxConcurrent !== undefined) out.bulkhead = { maxConcurrent: p.maxConcurrent, maxQueue: p.maxQueue ?? 0 };
  if (p.maxPerInstance !== undefined) out.maxInflightPerInstance = p.maxPerInstance;
  if (p.slowStartMs) out.slowStart = { windowMs: p.slowStartMs };
  if (p.timeoutMs !== undefined) out.timeoutMs = p.timeoutMs;
  if (p.tryTimeoutMs !== undefined) out.attemptTimeoutMs = p.tryTimeoutMs;
  return out;
}

/** The routes of one listener (a `service:` listener is one route that matches everything). */
export function compileRoutes(listener: ListenerConfig, index: number, defaults: Policy, source: UpstreamSource, random: Random): Route[] {
  const l = listener;
  const configs: RouteConfig[] = l.routes ?? [{ service: l.service!, ...(l.policy ? { policy: l.policy } : {}), ...(l.dc ? { dc: l.dc } : {}), ...(l.failover ? { failover: l.failover } : {}) }];
  return configs.map((rc, j) => compileRoute(rc, `${index}/${j}`, defaults, source, random));
}

function compileRoute(rc: RouteConfig, key: string, defaults: Policy, source: UpstreamSource, random: Random): Route {
  const policy: Policy = { ...defaults, ...rc.policy };
  // Routes to one service share their metric series unless named apart.
  const name = rc.name ?? rc.service;
  const parts = rc.split ?? [{ weight: 1, ...(rc.subset?.tags ? { tags: rc.subset.tags } : {}), ...(rc.subset?.meta ? { meta: rc.subset.meta } : {}) }];
  const subsets: Subset[] = parts.map((s, k) => {
    const filter = {
      ...(s.tags ? { tags: s.tags } : {}),
      ...(s.meta ? { meta: s.meta } : {}),
      ...(rc.subset?.zone ? { zone: rc.subset.zone } : {}),
      // Which DC's instances: the SDK's view follows the server's failover stream, so traffic moves
      // to the nearest DC with a ready instance and back home as soon as the local DC has one.
      ...(rc.dc ? { dc: rc.dc } : {}),
      ...(rc.failover ? { failover: rc.failover } : {}),
    };
    const subsetName = s.name ?? (rc.split ? describeSubset(s) : 'all');
    return { name: subsetName, weight: s.weight, upstream: source.upstream(rc.service, { key: `${key}/${k}`, policy: toServicePolicy(policy, filter) }) };
  });
  const total = subsets.reduce((n, s) => n + s.weight, 0);
  const hosts = rc.match?.host === undefined ? undefined : new Set((Array.isArray(rc.match.host) ? rc.match.host : [rc.match.host]).map((h) => h.toLowerCase()));
  const only = subsets.length === 1 ? subsets[0]!.upstream : undefined;
  return {
    name,
    service: rc.service,
    hosts,
    pathPrefix: rc.match?.pathPrefix,
    strip: rc.stripPrefix ?? false,
    headers: Object.entries(rc.match?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    subsets,
    hashOn: policy.hashOn,
    timeoutMs: policy.timeoutMs,
    tryTimeoutMs: policy.tryTimeoutMs,
    choose(): Upstream {
      if (only) return only;
      let r = random.next() * total;
      for (const s of subsets) {
        if (s.weight <= 0) continue;
        r -= s.weight;
        if (r < 0) return s.upstream;
      }
      return subsets.findLast((s) => s.weight > 0)!.upstream;
    },
  };
}

function describeSubset(s: { tags?: string[]; meta?: Record<string, string> }): string {
  const parts = [...(s.tags ?? []), ...Object.entries(s.meta ?? {}).map(([k, v]) => `${k}=${v}`)];
  return parts.join(',') || 'all';
}

/**
 * The host a request names, without port and without the `.service.<domain>` suffix that DNS
 * style names carry (`payments.service.consul:15001` → `payments`), lower-cased.
 *
 * @example
 * hostOf('Payments.service.consul:8080'); // 'payments'
 */
export function hostOf(host: string | undefined): string {
  if (!host) return '';
  let h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  const svc = h.indexOf('.service.');
  return svc > 0 ? h.slice(0, svc) : h;
}

/**
 * First match wins, in the order written: host (if the route names hosts), path prefix (on a
 * segment boundary), then every header match.
 *
 * @example
 * matchRoute(routes, 'payments', '/v1/charge', (name) => req.header(name));
 */
export function matchRoute(routes: readonly Route[], host: string, path: string, header: (lowerName: string) => string | undefined): Route | undefined {
  for (const r of routes) {
    if (r.hosts && !r.hosts.has(host)) continue;
    if (r.pathPrefix !== undefined && !prefixMatches(path, r.pathPrefix)) continue;
    let ok = true;
    for (const [k, v] of r.headers) {
      if (header(k) !== v) {
        ok = false;
        break;
      }
    }
    if (ok) return r;
  }
  return undefined;
}

function prefixMatches(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (prefix.endsWith('/') || path.length === prefix.length) return true;
  const next = path.charCodeAt(prefix.length);
  return next === 0x2f /* / */ || next === 0x3f /* ? */;
}

/**
 * The path sent upstream: the prefix removed when the route strips it (never leaving it empty).
 *
 * @example
 * upstreamPath(route, '/payments/charge?x=1'); // '/charge?x=1' with pathPrefix /payments and stripPrefix
 */
export function upstreamPath(r: Route, path: string): string {
  if (!r.strip || r.pathPrefix === undefined) return path;
  const rest = path.slice(r.pathPrefix.endsWith('/') ? r.pathPrefix.length - 1 : r.pathPrefix.length);
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest;
}
