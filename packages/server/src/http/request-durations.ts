import type { FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { Registry as PromRegistry } from 'prom-client';
import { histogramSeries, type HistogramValue } from './histogram-export.js';

const HTTP_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 300] as const;
const NAME = 'beacon_http_request_duration_seconds';
/** The route label of a request no route matched (404s, and the Consul API's 405s). */
const UNMATCHED = 'unmatched';

interface Series {
  readonly labels: { method: string; route: string; status_code: string };
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum: number;
}

/**
 * `beacon_http_request_duration_seconds` by method, route and status, counted in plain arrays and
 * turned into series only when scraped. prom-client's `Histogram.observe` builds, validates and
 * hashes a label object on every call and the route pattern came from `req.routeOptions` (built
 * afresh on each access): ~4 % of a query's CPU. Here each route gets its own recorder when it is
 * added ({@link hook}), which finds its series by the last method and status it saw.
 */
export class RequestDurations {
  private readonly series = new Map<string, Series>();

  constructor(registry: PromRegistry) {
    const self = this;
    registry.registerMetric({
      name: NAME,
      help: 'HTTP request latency',
      type: 'histogram',
      aggregator: 'sum',
      async get() {
        const values: HistogramValue[] = [];
        for (const s of self.series.values()) values.push(...histogramSeries(NAME, s.labels, HTTP_DURATION_BUCKETS, s.counts, s.sum));
        return { name: NAME, help: 'HTTP request latency', type: 'histogram', aggregator: 'sum', values };
      },
      // Zeroed in place: the route recorders hold on to their series.
      reset() {
        for (const s of self.series.values()) {
          s.counts.fill(0);
          s.sum = 0;
        }
      },
    } as unknown as Parameters<PromRegistry['registerMetric']>[0]);
  }

  /** The `onResponse` hook of one route: `url` is its pattern (`/api/v1/services/:name/instances`). */
  hook(url: string): onResponseHookHandler {
    const record = this.recorder(url);
    return (req, reply, done) => {
      record(req.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
  }

  /** Counts an answer no route matched, once it is sent (for the not-found handlers, which no route hook covers). */
  countUnmatched(req: FastifyRequest, reply: FastifyReply): void {
    const method = req.method;
    reply.raw.once('finish', () => this.unmatched(method, reply.statusCode, reply.elapsedTime / 1000));
  }

  private readonly unmatched = this.recorder(UNMATCHED);

  private recorder(route: string): (method: string, status: number, seconds: number) => void {
    let lastMethod = '';
    let lastStatus = 0;
    let last: Series | undefined;
    return (method, status, seconds) => {
      if (last === undefined || method !== lastMethod || status !== lastStatus) {
        last = this.seriesOf(method, route, status);
        lastMethod = method;
        lastStatus = status;
      }
      let b = 0;
      while (b < HTTP_DURATION_BUCKETS.length && seconds > HTTP_DURATION_BUCKETS[b]!) b++;
      last.counts[b]!++;
      last.sum += seconds;
    };
  }

  private seriesOf(method: string, route: string, status: number): Series {
    const key = `${method} ${status} ${route}`;
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { method, route, status_code: String(status) }, counts: new Float64Array(HTTP_DURATION_BUCKETS.length + 1), sum: 0 };
      this.series.set(key, s);
    }
    return s;
  }
}
