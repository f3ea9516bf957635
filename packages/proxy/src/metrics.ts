import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Upstream } from '@beacon/client';

/** What a finished exchange was, for the code-class label. */
export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

/** Why the proxy answered itself instead of an instance. */
export type LocalReply = 'bad_request' | 'no_route' | 'no_instance' | 'connect' | 'reset' | 'timeout' | 'overloaded';

const CODE_CLASSES: readonly CodeClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export function codeClass(status: number): CodeClass {
  return CODE_CLASSES[classIndex(status)]!;
}

function classIndex(status: number): number {
  return status < 200 ? 0 : status < 300 ? 1 : status < 400 ? 2 : status < 500 ? 3 : 4;
}

/** Latency buckets of `beacon_proxy_request_duration_seconds`, in seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BUCKETS_MS = BUCKETS.map((s) => s * 1000);

/**
 * One route's requests as plain numbers: answers by instance and code class, and the latency
 * histogram. prom-client hashes a label set on every increment, even through `labels()`, which
 * cost ~4 % of the proxy's CPU; these are read into the metrics when scraped.
 *
 * @example
 * metrics.route('payments', 'payments').add('payments-1', 200, 3.2);
 */
export class RouteCounts {
  /** Per instance ('' when the proxy answered itself), counts by code class (1xx … 5xx). */
  readonly byInstance = new Map<string, number[]>();
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly buckets: number[] = new Array<number>(BUCKETS.length + 1).fill(0);
  sumSeconds = 0;
  total = 0;

  constructor(
    readonly route: string,
    readonly service: string,
  ) {}

  /** One exchange finished after `ms` (from the request's arrival). */
  add(instance: string, status: number, ms: number): void {
    let counts = this.byInstance.get(instance);
    if (!counts) this.byInstance.set(instance, (counts = [0, 0, 0, 0, 0]));
    counts[classIndex(status)]!++;
    let b = 0;
    while (b < BUCKETS_MS.length && ms > BUCKETS_MS[b]!) b++;
    this.buckets[b]!++;
    this.sumSeconds += ms / 1000;
    this.total++;
  }
}

const LATENCY = 'beacon_proxy_request_duration_seconds';
const LATENCY_HELP = 'Time from request to the end of the answer, retries included, by route';

/** The latency histogram, filled from {@link RouteCounts} when scraped rather than per observation. */
class RouteLatency extends Histogram<'route' | 'le'> {
  constructor(
    private readonly routes: ReadonlyMap<string, RouteCounts>,
    registry: Registry,
  ) {
    super({ name: LATENCY, help: LATENCY_HELP, labelNames: ['route'], buckets: BUCKETS, registers: [registry] });
  }

  /** prom-client's own shape: `labels` the bucket's, `sharedLabels` the series' (get() merges them). */
  private values() {
    const out: { value: number; labels: { le?: string | number }; sharedLabels: { route: string }; metricName: string }[] = [];
    for (const r of this.routes.values()) {
      const sharedLabels = { route: r.route };
      let acc = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        acc += r.buckets[i]!;
        out.push({ value: acc, labels: { le: BUCKETS[i]! }, sharedLabels, metricName: `${LATENCY}_bucket` });
      }
      out.push({ value: r.total, labels: { le: '+Inf' }, sharedLabels, metricName: `${LATENCY}_bucket` });
      out.push({ value: r.sumSeconds, labels: {}, sharedLabels, metricName: `${LATENCY}_sum` });
      out.push({ value: r.total, labels: {}, sharedLabels, metricName: `${LATENCY}_count` });
    }
    return out;
  }

  /** What the registry reads for the text format, and what `get()` builds on: the counts as they are now. */
  async getForPromString() {
    return { name: LATENCY, help: LATENCY_HELP, type: 'histogram', values: this.values(), aggregator: 'sum' };
  }
}

interface Watched {
  route: string;
  service: string;
  subset: string;
  upstream: Upstream;
}

/**
 * The proxy's Prometheus metrics, per route and upstream instance. Requests are counted in plain
 * numbers per route ({@link RouteCounts}) and in-flight counts live on the SDK's endpoints; both
 * are read when scraped, so a request pays no label hashing.
 *
 * @example
 * const m = new ProxyMetrics();
 * m.route('payments', 'payments').add('payments-1', 200, 3.2);
 */
export class ProxyMetrics {
  readonly registry = new Registry();
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
  private readonly routes = new Map<string, RouteCounts>();

  constructor() {
    const watched = this.watched;
    const routes = this.routes;
    new Counter({
      name: 'beacon_proxy_requests_total',
      help: 'Requests (HTTP) and connections (TCP) by route, instance and answer class; instance="" when the proxy answered itself',
      labelNames: ['route', 'service', 'instance', 'code_class'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of routes.values()) {
          for (const [instance, counts] of r.byInstance) {
            for (let k = 0; k < counts.length; k++) if (counts[k]) this.inc({ route: r.route, service: r.service, instance, code_class: CODE_CLASSES[k]! }, counts[k]);
          }
        }
      },
    });
    new RouteLatency(routes, this.registry);
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

  /** The counts of route `name` (routes sharing a name share their series), to hold and add to per request. */
  route(name: string, service: string): RouteCounts {
    let r = this.routes.get(name);
    if (!r) this.routes.set(name, (r = new RouteCounts(name, service)));
    return r;
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
