import { Counter, type Registry as PromRegistry } from 'prom-client';
import { histogramSeries } from './histogram-export.js';
import { DNS_LATENCY_BUCKETS, emptyCounts, querySeries, RATE_LIMIT_ACTIONS, type DnsCountsSnapshot } from '../dns/counts.js';

/** Where the DNS counts come from: the DNS server once it listens, nothing before (or without DNS). */
export type DnsCountsSource = () => Promise<DnsCountsSnapshot>;

/**
 * DNS answers are counted in plain arrays by the engine of every process answering (the server
 * and its UDP workers) and turned into series only when scraped: the hot path never builds a
 * label object. The latency histogram is exported from those bucket counts as they are, which
 * prom-client's Histogram (observe-only) cannot do, hence a metric object of its own.
 */
export function registerDnsMetrics(registry: PromRegistry, source: () => DnsCountsSource | undefined): void {
  let latest: Promise<DnsCountsSnapshot> | undefined;
  // One scrape asks the workers once, for both metrics.
  const read = () => {
    latest ??= (source()?.() ?? Promise.resolve(emptyCounts())).finally(() => (latest = undefined));
    return latest;
  };
  new Counter({
    name: 'beacon_dns_queries_total',
    help: 'DNS queries answered, by query type, response code and transport',
    labelNames: ['type', 'rcode', 'proto'],
    registers: [registry],
    async collect() {
      const counts = await read();
      this.reset();
      for (const s of querySeries(counts)) this.inc({ type: s.type, rcode: s.rcode, proto: s.proto }, s.value);
    },
  });
  new Counter({
    name: 'beacon_dns_rate_limited_total',
    help: 'UDP answers held back by response rate limiting (--dns-rrl-rate): dropped, or slipped (sent as an empty TC reply)',
    labelNames: ['action'],
    registers: [registry],
    async collect() {
      const counts = await read();
      this.reset();
      for (const [i, action] of RATE_LIMIT_ACTIONS.entries()) this.inc({ action }, counts.rateLimited[i] ?? 0);
    },
  });
  const name = 'beacon_dns_request_duration_seconds';
  const help = 'Time from a DNS query received to its answer ready, all transports';
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const c = await read();
      return { name, help, type: 'histogram', aggregator: 'sum', values: histogramSeries(name, {}, DNS_LATENCY_BUCKETS, c.latency, c.latencySum) };
    },
    // A view of counts kept elsewhere: Registry.resetMetrics() has nothing to reset here.
    reset() {},
  } as unknown as Parameters<PromRegistry['registerMetric']>[0]);
}
