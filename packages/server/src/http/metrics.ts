import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { CHECK_STATUSES, DEREGISTER_CAUSES } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';

/** What holds a watcher open: an SSE stream, a native blocking query, a Consul blocking query. */
export type WatcherKind = 'sse' | 'blocking' | 'consul';
const WATCHER_KINDS: readonly WatcherKind[] = ['sse', 'blocking', 'consul'];

/**
 * prom-client's default collectors export these gauges besides the same numbers split by `type`
 * (the unsuffixed names); a gauge may not end in `_total` (`promtool check metrics`), and the
 * totals are `sum()` of the split series, so they are dropped rather than renamed.
 */
const REDUNDANT_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** One Prometheus registry per server (not the global one), so several servers can live in one process. */
export class ServerMetrics {
  readonly registry = new PromRegistry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly deregistrations: Counter<'cause'>;
  readonly leaseExpiries: Counter;
  private readonly watchers: Gauge<'kind'>;

  constructor(catalog: CatalogReader, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'beacon_' });
      for (const name of REDUNDANT_DEFAULTS) this.registry.removeSingleMetric(`beacon_${name}`);
    }
    this.httpDuration = new Histogram({
      name: 'beacon_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300],
      registers,
    });
    this.deregistrations = new Counter({ name: 'beacon_deregistrations_total', help: 'Instances removed, by cause', labelNames: ['cause'], registers });
    this.leaseExpiries = new Counter({ name: 'beacon_lease_expiries_total', help: 'Instances removed because their lease expired', registers });
    this.watchers = new Gauge({ name: 'beacon_watchers', help: 'Open watches by kind (sse, blocking, consul)', labelNames: ['kind'], registers });
    // Every label set exists from the start: a series that appears only on first use breaks
    // rate() and alerts written against it, and dashboards show "no data" instead of 0.
    for (const cause of DEREGISTER_CAUSES) this.deregistrations.inc({ cause }, 0);
    for (const kind of WATCHER_KINDS) this.watchers.set({ kind }, 0);
    new Gauge({
      name: 'beacon_instances',
      help: 'Registered instances by aggregate status',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = { passing: 0, warning: 0, critical: 0 };
        for (const s of catalog.services()) for (const st of CHECK_STATUSES) counts[st] += s.status[st];
        for (const st of CHECK_STATUSES) this.set({ status: st }, counts[st]);
      },
    });
    new Gauge({
      name: 'beacon_instances_ready',
      help: 'Instances that take new traffic',
      registers,
      collect() {
        this.set(catalog.services().reduce((n, s) => n + s.ready, 0));
      },
    });
    new Gauge({ name: 'beacon_services', help: 'Services with at least one instance', registers, collect() { this.set(catalog.services().length); } });
    new Gauge({ name: 'beacon_catalog_index', help: 'Last store revision applied to the catalog', registers, collect() { this.set(catalog.index); } });
    new Gauge({
      name: 'beacon_catalog_stale',
      help: '1 while reads may be behind the store (its feed is broken or not confirmed current), else 0',
      registers,
      collect() {
        this.set(catalog.stale ? 1 : 0);
      },
    });
    catalog.onChange((c) => {
      for (const e of c.events) {
        if (e.kind !== 'deregistered') continue;
        this.deregistrations.inc({ cause: e.cause ?? 'api' });
        if (e.cause === 'lease_expired') this.leaseExpiries.inc();
      }
    });
  }

  /** A watcher of `kind` opened; call {@link watcherClosed} with the same kind when it ends. */
  watcherOpened(kind: WatcherKind): void {
    this.watchers.inc({ kind });
  }

  watcherClosed(kind: WatcherKind): void {
    this.watchers.dec({ kind });
  }
}
