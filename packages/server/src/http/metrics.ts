import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { CHECK_STATUSES, DEREGISTER_CAUSES, type CheckStatus } from '@beacon/core';
import type { CatalogReader } from '../catalog/types.js';
import { ACTIVE_CHECK_KINDS, type ActiveCheckKind } from '../health/types.js';
import { RequestDurations } from './request-durations.js';
import { registerDnsMetrics, type DnsCountsSource } from './dns-metrics.js';

/** What `beacon_build_info` says about the running build. */
export interface BuildInfo {
  version: string;
  /** The source commit, `unknown` when the build was not told. */
  commit: string;
}

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
  /** `beacon_http_request_duration_seconds`: each route's `onResponse` hook comes from here. */
  readonly http: RequestDurations;
  readonly deregistrations: Counter<'cause'>;
  readonly leaseExpiries: Counter;
  /** Time from a write handed to the store to its commit acknowledged (group commit included). */
  readonly storeCommit: Histogram;
  /** Open watchers by kind: counted here, read into `beacon_watchers` when scraped. */
  private readonly openWatchers: Record<WatcherKind, number> = { sse: 0, blocking: 0, consul: 0 };
  private readonly checkRuns: Counter<'kind' | 'result'>;
  private readonly checkDuration: Histogram<'kind'>;
  private dnsSource: DnsCountsSource | undefined;
  private storeSizeSource: (() => Promise<number | undefined>) | undefined;

  constructor(catalog: CatalogReader, opts: { defaultMetrics?: boolean; build?: BuildInfo } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'beacon_' });
      for (const name of REDUNDANT_DEFAULTS) this.registry.removeSingleMetric(`beacon_${name}`);
    }
    this.http = new RequestDurations(this.registry);
    this.deregistrations = new Counter({ name: 'beacon_deregistrations_total', help: 'Instances removed, by cause', labelNames: ['cause'], registers });
    this.leaseExpiries = new Counter({ name: 'beacon_lease_expiries_total', help: 'Instances removed because their lease expired', registers });
    // A labelled gauge hashes its labels on every inc/dec, twice per parked query; a plain count per
    // kind, read when scraped, costs nothing on that path.
    const open = this.openWatchers;
    new Gauge({
      name: 'beacon_watchers',
      help: 'Open watches by kind (sse, blocking, consul)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of WATCHER_KINDS) this.set({ kind }, open[kind]);
      },
    });
    // Every label set exists from the start: a series that appears only on first use breaks
    // rate() and alerts written against it, and dashboards show "no data" instead of 0.
    for (const cause of DEREGISTER_CAUSES) this.deregistrations.inc({ cause }, 0);
    this.checkRuns = new Counter({ name: 'beacon_check_runs_total', help: 'Active check runs by kind and result', labelNames: ['kind', 'result'], registers });
    this.checkDuration = new Histogram({
      name: 'beacon_check_duration_seconds',
      help: 'Active check run time by kind',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    for (const kind of ACTIVE_CHECK_KINDS) {
      for (const result of CHECK_STATUSES) this.checkRuns.inc({ kind, result }, 0);
      this.checkDuration.zero({ kind });
    }
    this.storeCommit = new Histogram({
      name: 'beacon_store_commit_duration_seconds',
      help: 'Time from a write handed to the store to its commit acknowledged',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'beacon_store_size_bytes',
      help: 'Size of the store on disk (embedded: the SQLite database; etcd: dbSize of the member asked)',
      registers,
      async collect() {
        // A store that does not answer keeps the last size: the scrape still answers (and
        // beacon_catalog_stale says what is wrong).
        const size = await self.storeSizeSource?.().catch(() => undefined);
        if (size !== undefined) this.set(size);
      },
    });
    const build = opts.build ?? { version: 'unknown', commit: 'unknown' };
    new Gauge({ name: 'beacon_build_info', help: 'Always 1; the labels say which build runs', labelNames: ['version', 'node_version', 'commit'], registers }).set(
      { version: build.version, node_version: process.version, commit: build.commit },
      1,
    );
    registerDnsMetrics(this.registry, () => this.dnsSource);
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

  /** One active check run finished. */
  checkRan(kind: ActiveCheckKind, result: CheckStatus, durationMs: number): void {
    this.checkRuns.inc({ kind, result });
    this.checkDuration.observe({ kind }, durationMs / 1000);
  }

  /** DNS answers are counted from here on (the DNS server, once listening). */
  countDnsFrom(source: DnsCountsSource): void {
    this.dnsSource = source;
  }

  /** `beacon_store_size_bytes` reads the store through this. */
  sizeStoreWith(source: () => Promise<number | undefined>): void {
    this.storeSizeSource = source;
  }

  /** A watcher of `kind` opened; call {@link watcherClosed} with the same kind when it ends. */
  watcherOpened(kind: WatcherKind): void {
    this.openWatchers[kind]++;
  }

  watcherClosed(kind: WatcherKind): void {
    this.openWatchers[kind]--;
  }
}
