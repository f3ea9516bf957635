import { describe, expect, it } from 'vitest';
import { instanceFixture } from '@beacon/core/testing';
import type { Instance } from '@beacon/core';
import { decodeMessage, EXTENSION_TYPES, RESOURCE_TYPES, TYPE_URLS, xdsProtos } from './protos.js';
import { buildService, describeService, ingressListener, ingressRoutes, PROFILES, typeNameOf, type Profile } from './resources.js';
import { clusterPolicy } from './policy.js';

function entry(...instances: Instance[]) {
  return { name: 'api', index: 7, instances: [...instances].sort((a, b) => (a.id < b.id ? -1 : 1)) };
}

/**
 * Every field set in `sent` must come back from the wire (protobufjs silently drops fields the
 * proto does not have); Any values are unpacked and compared the same way.
 */
function expectSurvives(sent: unknown, back: unknown, path: string): void {
  if (sent === undefined) return;
  if (Buffer.isBuffer(sent) || sent instanceof Uint8Array) return;
  if (Array.isArray(sent)) {
    expect(Array.isArray(back), path).toBe(true);
    expect((back as unknown[]).length, path).toBe(sent.length);
    sent.forEach((v, i) => expectSurvives(v, (back as unknown[])[i], `${path}[${i}]`));
    return;
  }
  if (sent !== null && typeof sent === 'object') {
    const o = sent as Record<string, unknown>;
    if (typeof o.type_url === 'string' && o.value instanceof Uint8Array) {
      const b = back as { type_url: string; value: Uint8Array };
      expect(b.type_url, path).toBe(o.type_url);
      const typeName = typeNameOf(o.type_url);
      expectSurvives(decodeMessage(typeName, o.value), decodeWithDefaults(typeName, b.value), `${path}<${typeName}>`);
      return;
    }
    expect(back, path).toBeTypeOf('object');
    for (const [k, v] of Object.entries(o)) {
      expect(Object.hasOwn(back as object, k), `${path}.${k} lost on the wire`).toBe(true);
      expectSurvives(v, (back as Record<string, unknown>)[k], `${path}.${k}`);
    }
    return;
  }
  expect(back, path).toEqual(sent);
}

function decodeWithDefaults(typeName: string, bytes: Uint8Array): Record<string, unknown> {
  const type = xdsProtos().root.lookupType(typeName);
  return type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: true, oneofs: false, bytes: Buffer });
}

const rich = entry(
  instanceFixture('a1', { zone: 'z1', weight: 0, ports: { grpc: 9001 }, meta: { 'xds.lb-policy': 'ring_hash', 'xds.ring-min': '2048', 'xds.outlier.consecutive-5xx': '5', 'xds.outlier.interval-ms': '1500', 'xds.max-requests': '100' } }),
  instanceFixture('a2', { zone: 'z1', weight: 500, address: '::1' }),
  instanceFixture('b1', { zone: 'z2', weight: 3, conditions: { ready: false, serving: true, terminating: false } }),
  instanceFixture('b2', { zone: 'z2', weight: 3, conditions: { ready: false, serving: true, terminating: true } }),
  instanceFixture('c1', { zone: 'z3', address: 'host.example' }),
);

describe('xDS resources', () => {
  it.each(PROFILES)('every message of the %s profile survives an encode/decode round trip through the protos', (profile: Profile) => {
    const { messages } = describeService(rich, profile);
    const all = [
      ...RESOURCE_TYPES.flatMap((t) => messages[t].map((d) => ({ typeName: typeNameOf(TYPE_URLS[t]), message: d.message }))),
      { typeName: typeNameOf(TYPE_URLS.listener), message: ingressListener('127.0.0.1', 15001) },
      { typeName: typeNameOf(TYPE_URLS.route), message: ingressRoutes(['api', 'web']) },
    ];
    for (const { typeName, message } of all) {
      const type = xdsProtos().root.lookupType(typeName);
      const bytes = type.encode(type.fromObject(message)).finish();
      expectSurvives(message, decodeWithDefaults(typeName, bytes), typeName);
    }
  });

  it('the round-trip check catches a field the proto does not have', () => {
    const typeName = typeNameOf(TYPE_URLS.cluster);
    const type = xdsProtos().root.lookupType(typeName);
    const message = { name: 'x', lb_policy: 'RING_HASH', ring_hash: { minimum_ring_size: { value: 1 } } };
    const bytes = type.encode(type.fromObject(message)).finish();
    expect(() => expectSurvives(message, decodeWithDefaults(typeName, bytes), typeName)).toThrow(/ring_hash lost on the wire/);
  });

  it('derives one locality per zone with a weight, IP literals only, clamped weights and health from conditions', () => {
    const plain = entry(...rich.instances.map((i) => ({ ...i, meta: {} })));
    const cla = decodeMessage(typeNameOf(TYPE_URLS.endpoint), buildService(plain, 'grpc').resources.endpoint[0]!.any.value) as any;
    expect(cla.cluster_name).toBe('api');
    const zones = cla.endpoints.map((l: any) => ({
      zone: l.locality.zone,
      weight: l.load_balancing_weight.value,
      endpoints: l.lb_endpoints.map((e: any) => [e.endpoint.address.socket_address.address, e.health_status, e.load_balancing_weight.value]),
    }));
    expect(zones).toEqual([
      // weight 0 → 1 and 500 → 128; the locality weighs its healthy instances.
      { zone: 'z1', weight: 129, endpoints: [['10.0.0.1', 'HEALTHY', 1], ['::1', 'HEALTHY', 128]] },
      // No healthy endpoint: the locality still carries a weight, or grpc-js would drop it.
      { zone: 'z2', weight: 1, endpoints: [['10.0.0.1', 'UNHEALTHY', 3], ['10.0.0.1', 'DRAINING', 3]] },
      // c1 (host.example) is left out: clients NACK a name.
    ]);
    expect(buildService(plain, 'grpc').skipped).toEqual(['c1']);
  });

  it('serves a named port as a target of its own, with only the instances that have it', () => {
    const built = buildService(rich, 'grpc');
    expect(built.resources.listener.map((r) => r.name)).toEqual(['api', 'api:grpc']);
    const cla = decodeMessage(typeNameOf(TYPE_URLS.endpoint), built.resources.endpoint[1]!.any.value) as any;
    expect(cla.cluster_name).toBe('api:grpc');
    expect(cla.endpoints.flatMap((l: any) => l.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.port_value))).toEqual([9001]);
  });

  it('points the listener at RDS over ADS and ends the filter chain with the router', () => {
    const listener = decodeMessage(typeNameOf(TYPE_URLS.listener), buildService(rich, 'grpc').resources.listener[0]!.any.value) as any;
    const hcm = decodeMessage(EXTENSION_TYPES.hcm, listener.api_listener.api_listener.value) as any;
    expect(hcm.rds).toEqual({ config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'api' });
    expect(hcm.http_filters.at(-1).name).toBe('envoy.filters.http.router');
    expect(hcm.http_filters.at(-1).typed_config.type_url).toBe(`type.googleapis.com/${EXTENSION_TYPES.router}`);
  });

  it('takes the cluster policy from meta: ring hash (localities weigh 1), outlier detection, circuit breakers', () => {
    const built = buildService(rich, 'grpc');
    const c = decodeMessage(typeNameOf(TYPE_URLS.cluster), built.resources.cluster[0]!.any.value) as any;
    expect(c.lb_policy).toBe('RING_HASH');
    expect(c.ring_hash_lb_config.minimum_ring_size).toEqual({ value: '2048' });
    expect(c.outlier_detection).toEqual({ consecutive_5xx: { value: 5 }, interval: { seconds: '1', nanos: 500_000_000 } });
    expect(c.circuit_breakers.thresholds).toEqual([{ priority: 'DEFAULT', max_requests: { value: 100 } }]);
    expect(c.eds_cluster_config).toEqual({ eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'api' });
    const cla = decodeMessage(typeNameOf(TYPE_URLS.endpoint), built.resources.endpoint[0]!.any.value) as any;
    expect(cla.endpoints.map((l: any) => l.load_balancing_weight.value)).toEqual([1, 1]);
  });

  it('gives Envoy HTTP/2 clusters and no per-service listeners', () => {
    const built = buildService(rich, 'envoy');
    expect(built.resources.listener).toEqual([]);
    const c = decodeMessage(typeNameOf(TYPE_URLS.cluster), built.resources.cluster[0]!.any.value) as any;
    const opts = c.typed_extension_protocol_options[EXTENSION_TYPES.httpProtocolOptions];
    expect(decodeMessage(EXTENSION_TYPES.httpProtocolOptions, opts.value)).toEqual({ explicit_http_config: { http2_protocol_options: {} } });
  });

  it('reports meta it cannot use and keeps the defaults', () => {
    const { policy, problems } = clusterPolicy([instanceFixture('a', { meta: { 'xds.lb-policy': 'fastest', 'xds.max-requests': '-1' } })]);
    expect(policy).toEqual({ lb: 'ROUND_ROBIN' });
    expect(problems.map((p) => p.key)).toEqual(['xds.lb-policy', 'xds.max-requests']);
  });

  it('hashes the same state to the same bytes', () => {
    const one = buildService(rich, 'grpc').resources;
    const two = buildService(entry(...[...rich.instances].reverse()), 'grpc').resources;
    expect(two.endpoint.map((r) => r.hash)).toEqual(one.endpoint.map((r) => r.hash));
    expect(two.cluster.map((r) => r.hash)).toEqual(one.cluster.map((r) => r.hash));
  });
});
