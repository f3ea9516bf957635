import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Upstream } from '@beacon/client';

/** What a finished exchange was, for the code-class label. */
export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** Why the proxy answered itself instead of an instance. */
export type LocalReply = 'no_route' | 'no_instance' | 'connect' | 'reset' | 'timeout' | 'overloaded';

export function codeClass(status: number): CodeClass {
  if (status < 200) return '1xx';
  if (status < 300) return '2xx';
  if (status < 400) return '3xx';
  if (status < 500) return '4xx';
  return '5xx';
}

interface Watched {
  route: string;
  service: string;
  subset: string;
  upstream: Upstream;
}

/**
 * The proxy's Prometheus metrics, per route and upstream instance. Counters on the hot path are
 * bound once per label set and cached; in-flight and open-connection counts are read from the
 * SDK's endpoints at scrape time, so requests pay nothing for them.
 *
 * @example
 * const m = new ProxyMetrics();
 * m.request('payments', 'payments', 'payments-1', 200, 0.003);
 */
export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'beacon_proxy_requests_total',
    help: 'Requests (HTTP) and connections (TCP) by route, instance and answer class; instance="" when the proxy answered itself',
    labelNames: ['route', 'service', 'instance', 'code_class'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'beacon_proxy_request_duration_seconds',
    help: 'Time from request to the end of the answer, retries included, by route',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly local = new Counter({
    name: 'beacon_proxy_local_replies_total',
    help: 'Answers the proxy gave itself: no route (404), no instance (503), connect failure (503), reset (502), timeout (504), overloaded (429)',
    labelNames: ['listener', 'route', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: 'beacon_proxy_retries_total',
    help: 'Retries on another instance, by route',
    labelNames: ['route', 'service'] as const,
    registers: [this.registry],
  });
  private readonly ejections = new Counter({
    name: 'beacon_proxy_ejections_total',
    help: 'Outlier ejections, by route and instance',
    labelNames: ['route', 'service', 'instance'] as const,
    registers: [this.registry],
  });
  private readonly downstream = new Gauge({
    name: 'beacon_proxy_open_connections',
    help: 'Open client connections, by listener',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  private readonly watched: Watched[] = [];
  private readonly bound = new Map<string, Counter.Internal>();
  private readonly boundLatency = new Map<string, Histogram.Internal<'route'>>();

  constructor() {
    const watched = this.watched;
    new Gauge({
      name: 'beacon_proxy_upstream_inflight',
      help: 'Requests or connections in flight to each upstream instance',
      labelNames: ['route', 'service', 'subset', 'instance'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const w of watched) for (const e of w.upstream.endpoints()) this.set({ route: w.route, service: w.service, subset: w.subset, instance: e.id }, e.inflight);
      },
    });
  }

  /** Follows an upstream: its retries and ejections are counted, its in-flight counts scraped. */
  watch(route: string, subset: string, upstream: Upstream): void {
    this.watched.push({ route, service: upstream.service, subset, upstream });
    upstream.retryFor('idempotent')?.onRetry(() => this.retries.inc({ route, service: upstream.service }));
    const connectOnly = upstream.retryFor('connect-only');
    if (connectOnly && connectOnly !== upstream.retryFor('idempotent')) connectOnly.onRetry(() => this.retries.inc({ route, service: upstream.service }));
    upstream.onEject((e) => this.ejections.inc({ route, service: upstream.service, instance: e.endpoint.id }));
  }

  /** One exchange finished (`seconds` from the request's arrival). */
  request(route: string, service: string, instance: string, status: number, seconds: number): void {
    const cls = codeClass(status);
    const key = `${route}\0${instance}\0${cls}`;
    let c = this.bound.get(key);
    if (!c) this.bound.set(key, (c = this.requests.labels({ route, service, instance, code_class: cls })));
    c.inc();
    let h = this.boundLatency.get(route);
    if (!h) this.boundLatency.set(route, (h = this.latency.labels({ route })));
    h.observe(seconds);
  }

  /** The proxy answered itself. */
  localReply(listener: string, route: string, reason: LocalReply): void {
    this.local.inc({ listener, route, reason });
  }

  connectionOpened(listener: string): void {
    this.downstream.inc({ listener });
  }

  connectionClosed(listener: string): void {
    this.downstream.dec({ listener });
  }
}
