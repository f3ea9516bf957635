import { describe, expect, it } from 'vitest';
import { ProxyMetrics } from './metrics.js';

describe('ProxyMetrics', () => {
  it('counts requests in plain numbers and shows them under the same names and labels when scraped', async () => {
    const m = new ProxyMetrics();
    const r = m.route('pay', 'payments');
    r.add('pay-1', 200, 0.7);
    r.add('pay-1', 204, 3);
    r.add('pay-1', 503, 30);
    r.add('', 404, 20_000);
    // A second route of the same name shares its series.
    expect(m.route('pay', 'payments')).toBe(r);
    const text = await m.registry.metrics();
    expect(text).toContain('beacon_proxy_requests_total{route="pay",service="payments",instance="pay-1",code_class="2xx"} 2');
    expect(text).toContain('beacon_proxy_requests_total{route="pay",service="payments",instance="pay-1",code_class="5xx"} 1');
    expect(text).toContain('beacon_proxy_requests_total{route="pay",service="payments",instance="",code_class="4xx"} 1');
    expect(text).not.toContain('code_class="3xx"');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="0.0005",route="pay"} 0');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="0.001",route="pay"} 1');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="0.005",route="pay"} 2');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="0.05",route="pay"} 3');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="10",route="pay"} 3');
    expect(text).toContain('beacon_proxy_request_duration_seconds_bucket{le="+Inf",route="pay"} 4');
    expect(text).toContain('beacon_proxy_request_duration_seconds_count{route="pay"} 4');
    expect(text).toMatch(/beacon_proxy_request_duration_seconds_sum\{route="pay"\} 20\.0337/);
    expect(text).toContain('# TYPE beacon_proxy_request_duration_seconds histogram');
    // Scraping twice does not double anything.
    expect(await m.registry.metrics()).toBe(text);
    const json = await m.registry.getMetricsAsJSON();
    const latency = json.find((x) => x.name === 'beacon_proxy_request_duration_seconds')!;
    expect(latency.values).toContainEqual(expect.objectContaining({ value: 4, labels: { le: '+Inf', route: 'pay' } }));
  });
});
