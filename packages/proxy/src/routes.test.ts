import { afterAll, describe, expect, it } from 'vitest';
import { createClient, seededRandom } from '@beacon/client';
import { compileRoutes, hostOf, matchRoute, toServicePolicy, upstreamPath } from './routes.js';

describe('route table', () => {
  // A real client; nothing here needs its Beacon server to answer (port 9 refuses at once).
  const client = createClient({ servers: ['http://127.0.0.1:9'] });
  afterAll(() => client.close());
  const routes = compileRoutes(
    {
      listen: '127.0.0.1:0',
      routes: [
        { match: { host: 'shop', headers: { 'x-canary': 'true' } }, service: 'shop', subset: { tags: ['v2'] } },
        { name: 'shop', match: { host: ['shop', 'store'] }, service: 'shop', split: [{ weight: 90, tags: ['v1'] }, { weight: 10, meta: { track: 'canary' } }] },
        { match: { pathPrefix: '/api' }, stripPrefix: true, service: 'api', policy: { balancer: 'ewma', zoneAware: { minHealthyShare: 0.6 }, retries: { max: 1, budgetRatio: 0.1 } } },
      ],
    },
    0,
    { tryTimeoutMs: 500 },
    client,
    seededRandom(3),
  );

  it('reads the host without port or .service.<domain>', () => {
    expect(hostOf('Shop.service.consul:8080')).toBe('shop');
    expect(hostOf('shop:15001')).toBe('shop');
    expect(hostOf('[::1]:80')).toBe('[::1]');
    expect(hostOf(undefined)).toBe('');
  });

  it('matches in order: host, path prefix on a segment boundary, headers', () => {
    expect(matchRoute(routes, 'shop', '/', (n) => (n === 'x-canary' ? 'true' : undefined))).toBe(routes[0]);
    expect(matchRoute(routes, 'store', '/', () => undefined)).toBe(routes[1]);
    expect(matchRoute(routes, 'other', '/api/v1', () => undefined)).toBe(routes[2]);
    expect(matchRoute(routes, 'other', '/api?x=1', () => undefined)).toBe(routes[2]);
    expect(matchRoute(routes, 'other', '/apis', () => undefined)).toBeUndefined();
    expect(upstreamPath(routes[2]!, '/api/v1?x=1')).toBe('/v1?x=1');
    expect(upstreamPath(routes[2]!, '/api')).toBe('/');
    expect(upstreamPath(routes[2]!, '/api?x=1')).toBe('/?x=1');
  });

  it('gives each subset its own upstream, filtered, with the route policy over the defaults', () => {
    const ups = routes.flatMap((r) => r.subsets.map((s) => s.upstream));
    expect(new Set(ups).size).toBe(4);
    expect(ups.map((u) => [u.service, u.policy.filter])).toEqual([
      ['shop', { tags: ['v2'] }],
      ['shop', { tags: ['v1'] }],
      ['shop', { meta: { track: 'canary' } }],
      ['api', {}],
    ]);
    expect(ups[3]!.policy).toMatchObject({ balancer: { zoneAware: 'ewma', minHealthyShare: 0.6 }, attemptTimeoutMs: 500, retry: { maxRetries: 1, budget: { ratio: 0.1 } } });
    expect(routes[1]!.subsets.map((s) => s.name)).toEqual(['v1', 'track=canary']);
  });

  it('splits by weight', () => {
    let canary = 0;
    const canaryUpstream = routes[1]!.subsets[1]!.upstream;
    for (let i = 0; i < 10_000; i++) if (routes[1]!.choose() === canaryUpstream) canary++;
    expect(canary / 10_000).toBeCloseTo(0.1, 1);
  });

  it('maps retries: false and bulkheads onto the SDK policy', () => {
    expect(toServicePolicy({ retries: false, maxConcurrent: 10, maxPerInstance: 2, slowStartMs: 1_000 }, undefined)).toEqual({
      balancer: 'least-request',
      retry: false,
      bulkhead: { maxConcurrent: 10, maxQueue: 0 },
      maxInflightPerInstance: 2,
      slowStart: { windowMs: 1_000 },
    });
  });
});
