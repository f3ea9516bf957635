import { describe, expect, it } from 'vitest';
import { ManualClock, type Instance } from '@beacon/core';
import { instanceFixture } from '@beacon/core/testing';
import type { Authorizer } from '../acl/types.js';
import type { ServiceEntry, ServiceSummary } from '../catalog/types.js';
import { decodeMessage, TYPE_URLS } from './protos.js';
import { INGRESS, typeNameOf } from './resources.js';
import { XdsSnapshot } from './snapshot.js';
import { XdsStream, type DiscoveryRequest, type DiscoveryResponse } from './stream.js';

/** The two catalog reads the snapshot makes, over a map the test edits. */
class FakeCatalog {
  readonly byService = new Map<string, Instance[]>();
  set(service: string, ...instances: Instance[]): void {
    this.byService.set(service, instances.map((i) => ({ ...i, service })));
  }
  services(): ServiceSummary[] {
    return [...this.byService]
      .filter(([, v]) => v.length > 0)
      .map(([name, v]) => ({ name, index: 1, tags: [], instances: v.length, status: { passing: v.length, warning: 0, critical: 0 }, ready: v.length }));
  }
  service(name: string): ServiceEntry {
    return { name, index: 1, instances: this.byService.get(name) ?? [] };
  }
}

function setup(node: DiscoveryRequest['node'] = { id: 'n1' }) {
  const catalog = new FakeCatalog();
  catalog.set('a', instanceFixture('a1'));
  catalog.set('b', instanceFixture('b1', { address: '10.0.0.2' }));
  const snapshot = new XdsSnapshot(catalog);
  const sent: DiscoveryResponse[] = [];
  const nacks: string[] = [];
  const refused: string[] = [];
  const stream = new XdsStream(1, 'ipv4:127.0.0.1:1', {
    snapshot,
    clock: new ManualClock(),
    send: (r) => sent.push(r),
    events: { sent: () => {}, acked: () => {}, nacked: (n) => nacks.push(n.message), refused: (r) => refused.push(r.reason) },
  });
  const ask = (type: keyof typeof TYPE_URLS, names: string[], ack?: DiscoveryResponse, error?: string) =>
    stream.onRequest({
      ...(sent.length === 0 ? { node } : {}),
      type_url: TYPE_URLS[type],
      resource_names: names,
      version_info: ack && !error ? ack.version_info : '',
      response_nonce: ack?.nonce ?? '',
      ...(error ? { error_detail: { code: 3, message: error } } : {}),
    });
  const change = (service: string, ...instances: Instance[]) => {
    catalog.set(service, ...instances);
    snapshot.update([service]);
    stream.push();
  };
  return { catalog, snapshot, stream, sent, nacks, refused, ask, change };
}

const names = (r: DiscoveryResponse) => r.resources.map((a) => (decodeMessage(typeNameOf(a.type_url), a.value) as { name?: string; cluster_name?: string }).name ?? (decodeMessage(typeNameOf(a.type_url), a.value) as { cluster_name: string }).cluster_name);

describe('xDS stream (state of the world)', () => {
  it('answers a subscription with every subscribed resource that exists, a content-hash version and a nonce', () => {
    const { sent, ask } = setup();
    ask('listener', ['a', 'b', 'nosuch']);
    expect(sent).toHaveLength(1);
    expect(names(sent[0]!)).toEqual(['a', 'b']);
    expect(sent[0]!.nonce).toBe('1-1');
    expect(sent[0]!.version_info).toMatch(/^[0-9a-f]{16}$/);
  });

  it('an ACK needs no answer; a change sends a new version; an unchanged catalog sends nothing', () => {
    const { sent, ask, change, stream } = setup();
    ask('endpoint', ['a']);
    ask('endpoint', ['a'], sent[0]);
    expect(sent).toHaveLength(1);
    change('b', instanceFixture('b2'));
    expect(sent).toHaveLength(1);
    change('a', instanceFixture('a1'), instanceFixture('a2', { address: '10.0.0.9' }));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.version_info).not.toBe(sent[0]!.version_info);
    expect(stream.info().types[0]).toMatchObject({ type: 'endpoint', ack: { version: sent[0]!.version_info, nonce: '1-1' }, sent: { nonce: '1-2' } });
  });

  it('a NACK is recorded and the rejected content is not sent again; the next change is', () => {
    const { sent, ask, change, stream, nacks } = setup();
    ask('cluster', ['a']);
    ask('cluster', ['a'], sent[0], 'bad cluster');
    expect(sent).toHaveLength(1);
    expect(nacks).toEqual(['bad cluster']);
    expect(stream.info().types[0]).toMatchObject({ nacks: 1, nack: { version: sent[0]!.version_info, nonce: '1-1', message: 'bad cluster' } });
    change('a', instanceFixture('a1', { meta: { 'xds.lb-policy': 'ring_hash' } }));
    expect(sent).toHaveLength(2);
  });

  it('ignores a request answering an older response (a newer one is on its way)', () => {
    const { sent, ask, change } = setup();
    ask('endpoint', ['a']);
    const first = sent[0]!;
    change('a', instanceFixture('a1', { weight: 2 }));
    expect(sent).toHaveLength(2);
    ask('endpoint', ['a', 'b'], first);
    expect(sent).toHaveLength(2);
  });

  it('answers a changed subscription even when nothing else changed', () => {
    const { sent, ask } = setup();
    ask('route', ['a']);
    ask('route', ['a', 'b'], sent[0]);
    expect(sent).toHaveLength(2);
    expect(names(sent[1]!)).toEqual(['a', 'b']);
  });

  it('a service that empties keeps its Cluster and gets an empty ClusterLoadAssignment', () => {
    const { sent, ask, change } = setup();
    ask('cluster', ['a']);
    ask('endpoint', ['a']);
    change('a');
    const eds = sent.at(-1)!;
    expect(eds.type_url).toBe(TYPE_URLS.endpoint);
    expect(decodeMessage(typeNameOf(TYPE_URLS.endpoint), eds.resources[0]!.value)).toEqual({ cluster_name: 'a' });
    // The cluster did not change, so no CDS response went out: the client keeps it.
    expect(sent.filter((r) => r.type_url === TYPE_URLS.cluster)).toHaveLength(1);
  });

  it('two streams over the same state send the same versions', () => {
    const one = setup();
    const two = setup({ id: 'other' });
    for (const s of [one, two]) {
      s.ask('listener', ['b', 'a']);
      s.ask('endpoint', ['a', 'b']);
    }
    expect(two.sent.map((r) => r.version_info)).toEqual(one.sent.map((r) => r.version_info));
  });

  it('Envoy (by node metadata): wildcard CDS lists every cluster, one ingress listener, EDS re-sent after each CDS ACK', () => {
    const { sent, ask } = setup({ id: 'envoy-1', metadata: { fields: { 'beacon.profile': { stringValue: 'envoy' }, 'beacon.ingress': { stringValue: '127.0.0.1:10000' } } } });
    ask('cluster', []);
    expect(names(sent[0]!)).toEqual(['a', 'b']);
    ask('endpoint', ['a', 'b']);
    ask('endpoint', ['a', 'b'], sent[1]);
    ask('cluster', [], sent[0]);
    expect(sent).toHaveLength(3);
    expect(sent[2]!.type_url).toBe(TYPE_URLS.endpoint);
    expect(sent[2]!.version_info).toBe(sent[1]!.version_info);
    expect(sent[2]!.nonce).not.toBe(sent[1]!.nonce);
    ask('listener', []);
    const l = decodeMessage(typeNameOf(TYPE_URLS.listener), sent[3]!.resources[0]!.value) as any;
    expect(l.name).toBe(INGRESS);
    expect(l.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 10000 });
    ask('route', [INGRESS]);
    const r = decodeMessage(typeNameOf(TYPE_URLS.route), sent[4]!.resources[0]!.value) as any;
    expect(r.virtual_hosts.map((v: any) => [v.name, v.domains])).toEqual([['a', ['a', 'a:*']], ['b', ['b', 'b:*']]]);
  });

  it('empty names after named ones unsubscribe (grpc-js, its last watcher gone) rather than ask for everything', () => {
    const { sent, ask } = setup();
    ask('listener', ['a']);
    ask('listener', [], sent[0]);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.resources).toEqual([]);
  });

  it('refuses an oversized subscription without answering it, and says so once', () => {
    const { sent, ask, refused } = setup();
    ask('endpoint', Array.from({ length: 10_001 }, (_, i) => `s${i}`));
    ask('endpoint', Array.from({ length: 10_001 }, (_, i) => `s${i}`));
    expect(sent).toHaveLength(0);
    expect(refused).toEqual(['10001 resource names in one request; at most 10000']);
  });
});

describe('xDS stream under ACLs', () => {
  const reader = (...services: string[]): Authorizer => ({
    accessorId: 'reader',
    management: false,
    rules: services.map((name) => ({ kind: 'service' as const, prefix: false, name, level: 'read' as const })),
  });

  function restricted(authz: Authorizer, node: DiscoveryRequest['node'] = { id: 'n1' }) {
    const catalog = new FakeCatalog();
    catalog.set('a', instanceFixture('a1'));
    catalog.set('b', instanceFixture('b1', { address: '10.0.0.2' }));
    const snapshot = new XdsSnapshot(catalog);
    const sent: DiscoveryResponse[] = [];
    const stream = new XdsStream(1, 'ipv4:127.0.0.1:1', {
      snapshot,
      clock: new ManualClock(),
      send: (r) => sent.push(r),
      events: { sent: () => {}, acked: () => {}, nacked: () => {}, refused: () => {} },
      authz,
    });
    const ask = (type: keyof typeof TYPE_URLS, names: string[]) =>
      stream.onRequest({ ...(sent.length === 0 ? { node } : {}), type_url: TYPE_URLS[type], resource_names: names, version_info: '', response_nonce: '' });
    return { stream, sent, ask };
  }

  it('sends readable services; a target it may not read gets a route without a route, and no cluster', () => {
    const { sent, ask } = restricted(reader('a'));
    ask('cluster', ['a', 'b']);
    expect(names(sent.at(-1)!)).toEqual(['a']);
    ask('route', ['a', 'b', 'nope']);
    const routes = sent.at(-1)!.resources.map((r) => decodeMessage(typeNameOf(r.type_url), r.value) as { name: string; virtual_hosts: { routes?: unknown[] }[] });
    expect(routes.map((r) => [r.name, r.virtual_hosts[0]!.routes?.length ?? 0])).toEqual([
      ['a', 1],
      ['b', 0],
      ['nope', 0],
    ]);
  });

  it('a change of rights re-sends only what the stream now sees, with the version of that content', () => {
    const all = restricted(reader('a', 'b'));
    all.ask('cluster', ['a', 'b']);
    const { stream, sent, ask } = restricted(reader('a'));
    ask('cluster', ['a', 'b']);
    const before = sent.length;
    stream.reauthorize(reader('a'));
    expect(sent.length).toBe(before);
    stream.reauthorize(reader('a', 'b'));
    expect(names(sent.at(-1)!)).toEqual(['a', 'b']);
    expect(sent.at(-1)!.version_info).toBe(all.sent.at(-1)!.version_info);
    expect(stream.info().accessor).toBe('reader');
  });

  it('Envoy: wildcard clusters and the ingress virtual hosts list readable services only', () => {
    const { sent, ask } = restricted(reader('b'), { id: 'edge', metadata: { fields: { 'beacon.profile': { stringValue: 'envoy' } } } });
    ask('cluster', []);
    expect(names(sent.at(-1)!)).toEqual(['b']);
    ask('route', [INGRESS]);
    const route = decodeMessage(typeNameOf(TYPE_URLS.route), sent.at(-1)!.resources[0]!.value) as { virtual_hosts: { name: string }[] };
    expect(route.virtual_hosts.map((v) => v.name)).toEqual(['b']);
  });
});
