/**
 * Three datacenters on loopback, each its own server and store: cross-DC reads (native, Consul,
 * DNS), failover and its return, a remote DC killed, and a DC restarted and resumed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import type { IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createClient, parseSse } from '@beacon/client';
import type { RunningServer, ServerConfig } from '../src/server.js';
import { api, devServer, until } from './helpers.js';

const FAST = { pingIntervalMs: 200, timeoutMs: 1_000 };

function instance(service: string, id: string, address: string, port: number) {
  return { service, id, address, port, checks: [{ id: `${id}-ttl`, kind: 'ttl', ttlMs: 60_000, status: 'passing' }] };
}

describe('federation: three datacenters on loopback', () => {
  let dir: string;
  let dc1: RunningServer;
  let dc2: RunningServer;
  let dc3: RunningServer;
  let dc2Port = 0;
  // What dc1 sent dc2: its stream, pings and forwarded requests carry the federation token.
  const seenAuth = new Set<string>();
  const dc2Config = (port: number): ServerConfig => ({
    dev: false,
    dataDir: join(dir, 'dc2'),
    datacenter: 'dc2',
    httpAddr: `127.0.0.1:${port}`,
    plugins: [async (app) => void app.server.on('request', (req: IncomingMessage) => void seenAuth.add(`${req.url!.split('?')[0]} ${req.headers.authorization ?? '-'}`))],
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'beacon-fed-'));
    dc2 = await devServer(dc2Config(0));
    dc2Port = dc2.httpAddress.port;
    dc3 = await devServer({ datacenter: 'dc3' });
    dc1 = await devServer({
      datacenter: 'dc1',
      dns: { addr: '127.0.0.1:0' },
      federation: {
        remotes: [
          { name: 'dc2', servers: [dc2.httpUrl] },
          { name: 'dc3', servers: [dc3.httpUrl] },
        ],
        token: 'fed-secret',
        // The server's own policy for `pay` (--failover pay=dc2): plain reads and watches of it fail over.
        failover: { pay: { nearest: 0, datacenters: ['dc2'] } },
        ...FAST,
      },
    });
    await api(dc2, 'PUT', '/api/v1/instances', instance('web', 'web-dc2', '10.0.2.1', 80));
    await api(dc3, 'PUT', '/api/v1/instances', instance('web', 'web-dc3', '10.0.3.1', 80));
    await api(dc2, 'PUT', '/api/v1/instances', instance('pay', 'pay-dc2', '10.0.2.7', 80));
    // Both views have arrived and carry the registrations.
    await until(
      () => api(dc1, 'GET', '/api/v1/datacenters'),
      (r) => r.status === 200 && r.body.every((d: { synced: boolean; rttMs?: number }) => d.synced && d.rttMs !== undefined),
    );
    await until(() => api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc3'), (r) => r.body.instances?.length === 1);
  });

  afterAll(async () => {
    await dc1?.close();
    await dc2?.close();
    await dc3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads another DC natively, marked with the DC; an unknown DC is a 404 naming the known ones', async () => {
    const r = await until(() => api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc2'), (x) => x.body.instances?.length === 1);
    expect(r.status).toBe(200);
    expect(r.body.datacenter).toBe('dc2');
    expect(r.headers.get('x-beacon-datacenter')).toBe('dc2');
    expect(r.body.instances.map((i: { id: string }) => i.id)).toEqual(['web-dc2']);
    // The local DC has no web at all.
    expect((await api(dc1, 'GET', '/api/v1/services/web/instances')).body.instances).toEqual([]);
    const unknown = await api(dc1, 'GET', '/api/v1/services/web/instances?dc=mars');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect(unknown.body.error.message).toMatch(/known: dc1, dc\d, dc\d/);
    // Nothing was written into dc1's store by following the others.
    expect((await api(dc1, 'GET', '/api/v1/services')).body).toEqual([]);
  });

  it('a blocking read of another DC returns when that DC changes', async () => {
    const first = await api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc3');
    const index = first.body.index as number;
    const parked = api(dc1, 'GET', `/api/v1/services/web/instances?dc=dc3&index=${index}&wait=5s`);
    await api(dc3, 'PUT', '/api/v1/instances', instance('web', 'web-dc3b', '10.0.3.2', 80));
    const woke = await parked;
    expect(woke.body.index).toBeGreaterThan(index);
    expect(woke.body.instances.map((i: { id: string }) => i.id)).toEqual(['web-dc3', 'web-dc3b']);
    await api(dc3, 'DELETE', '/api/v1/instances/web-dc3b');
  });

  it('speaks Consul across DCs: datacenters by RTT, catalog and health with ?dc=, KV forwarded, prepared queries', async () => {
    const dcs = await api(dc1, 'GET', '/v1/catalog/datacenters');
    expect(dcs.body[0]).toBe('dc1');
    expect([...dcs.body].sort()).toEqual(['dc1', 'dc2', 'dc3']);
    const health = await api(dc1, 'GET', '/v1/health/service/web?dc=dc2');
    expect(health.status).toBe(200);
    expect(health.body.map((e: { Service: { ID: string }; Node: { Datacenter: string } }) => [e.Service.ID, e.Node.Datacenter])).toEqual([['web-dc2', 'dc2']]);
    expect(health.headers.get('x-consul-knownleader')).toBe('true');
    const catalog = await api(dc1, 'GET', '/v1/catalog/service/web?dc=dc3');
    expect(catalog.body.map((e: { ServiceID: string; Datacenter: string }) => [e.ServiceID, e.Datacenter])).toEqual([['web-dc3', 'dc3']]);
    const unknown = await api(dc1, 'GET', '/v1/health/service/web?dc=mars');
    expect(unknown.status).toBe(500);
    expect(unknown.body).toMatch(/^No path to datacenter mars \(known: dc1/);

    // KV: written through dc1, stored in dc2 only.
    expect((await api(dc1, 'PUT', '/v1/kv/config/color?dc=dc2', 'blue')).body).toBe(true);
    expect((await api(dc2, 'GET', '/v1/kv/config/color?raw')).body).toBe('blue');
    expect((await api(dc1, 'GET', '/v1/kv/config/color')).status).toBe(404);
    expect((await api(dc1, 'GET', '/v1/kv/config/color?dc=dc2&raw')).body).toBe('blue');
    // (The test's own requests to dc2 carry none.)
    expect([...seenAuth].filter((s) => !s.endsWith(' -')).sort()).toEqual([
      '/api/v1/status Bearer fed-secret',
      '/api/v1/watch Bearer fed-secret',
      '/v1/kv/config/color Bearer fed-secret',
    ]);

    // A prepared query fails over to dc3 (listed) since dc1 has no web.
    const created = await api(dc1, 'POST', '/v1/query', { Name: 'web-anywhere', Service: { Service: 'web', OnlyPassing: true, Failover: { Datacenters: ['dc3'] } } });
    expect(created.status).toBe(200);
    const id = created.body.ID as string;
    expect((await api(dc1, 'GET', '/v1/query')).body.map((q: { ID: string }) => q.ID)).toEqual([id]);
    const exec = await api(dc1, 'GET', '/v1/query/web-anywhere/execute');
    expect(exec.body.Datacenter).toBe('dc3');
    expect(exec.body.Failovers).toBe(1);
    expect(exec.body.Nodes.map((n: { Service: { ID: string } }) => n.Service.ID)).toEqual(['web-dc3']);
    expect((await api(dc1, 'GET', `/v1/query/${id}/explain`)).body.Query.Service.Failover).toEqual({ NearestN: 0, Datacenters: ['dc3'] });
    expect((await api(dc1, 'PUT', `/v1/query/${id}`, { Name: 'web-anywhere', Service: { Service: 'web', Failover: { NearestN: 2 } } })).status).toBe(200);
    expect((await api(dc1, 'GET', `/v1/query/${id}`)).body[0].Service.Failover.NearestN).toBe(2);
    expect((await api(dc1, 'GET', '/v1/query/nope/execute')).status).toBe(404);

    // DNS: another DC's service by its DC label, and the prepared query by name.
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dc1.dnsAddress!.udp.port}`]);
    expect(await resolver.resolve4('web.service.dc2.consul')).toEqual(['10.0.2.1']);
    const srv = await resolver.resolveSrv('_web._tcp.service.dc3.consul');
    expect(srv.map((r) => r.name)).toEqual(['0a000301.addr.dc3.consul']);
    expect((await resolver.resolve4('web-anywhere.query.consul')).length).toBe(1);
    await expect(resolver.resolve4('web.service.mars.consul')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await api(dc1, 'DELETE', `/v1/query/${id}`);
  });

  it('fails over to another DC within 1 s when the last local instance goes, and back when it returns', async () => {
    const ac = new AbortController();
    const res = await fetch(`${dc1.httpUrl}/api/v1/watch?service=web&failover=dc3`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
    const events = parseSse(res.body!)[Symbol.asyncIterator]();
    const nextReset = async () => {
      for (;;) {
        const ev = await events.next();
        if (ev.done) throw new Error('stream ended');
        if (ev.value.event === 'reset') return JSON.parse(ev.value.data) as { datacenter: string; instances: { id: string }[] };
      }
    };
    try {
      expect((await nextReset()).datacenter).toBe('dc3');
      await api(dc1, 'PUT', '/api/v1/instances', instance('web', 'web-dc1', '10.0.1.1', 80));
      const home = await nextReset();
      expect([home.datacenter, home.instances.map((i) => i.id)]).toEqual(['dc1', ['web-dc1']]);
      const killedAt = performance.now();
      await api(dc1, 'DELETE', '/api/v1/instances/web-dc1');
      const away = await nextReset();
      const failoverMs = performance.now() - killedAt;
      console.log(`failover to dc3 after the last local instance went: ${failoverMs.toFixed(1)} ms (loopback, machine shared with other test runs)`);
      expect(away.datacenter).toBe('dc3');
      expect(failoverMs).toBeLessThan(1_000);
      // The plain read with a per-query policy answers the same, marked with its DC.
      const read = await api(dc1, 'GET', '/api/v1/services/web/instances?failover=nearest:2');
      expect(['dc2', 'dc3']).toContain(read.body.datacenter);
      expect(read.body.failovers).toBeGreaterThanOrEqual(1);
      await api(dc1, 'PUT', '/api/v1/instances', instance('web', 'web-dc1', '10.0.1.1', 80));
      expect((await nextReset()).datacenter).toBe('dc1');
      // Registered but failing its check (not ready) counts as gone too.
      await api(dc1, 'PUT', '/api/v1/checks/web-dc1-ttl/fail', { note: 'down' });
      expect((await nextReset()).datacenter).toBe('dc3');
      await api(dc1, 'PUT', '/api/v1/checks/web-dc1-ttl/pass', {});
      expect((await nextReset()).datacenter).toBe('dc1');
      await api(dc1, 'DELETE', '/api/v1/instances/web-dc1');
    } finally {
      ac.abort();
    }
  });

  it('the SDK: discover in another DC, and a live failover view that switches back when the local DC recovers', async () => {
    const client = createClient({ servers: [dc1.httpUrl] });
    try {
      const remote = client.discover('web', { dc: 'dc2' });
      await remote.ready();
      expect([remote.datacenter, remote.instances().map((i) => i.id)]).toEqual(['dc2', ['web-dc2']]);
      const view = client.discover('web', { failover: { datacenters: ['dc3'] } });
      await view.ready();
      expect([view.datacenter, view.instances().map((i) => i.id)]).toEqual(['dc3', ['web-dc3']]);
      await api(dc1, 'PUT', '/api/v1/instances', instance('web', 'web-dc1', '10.0.1.1', 80));
      await until(async () => view.datacenter, (dc) => dc === 'dc1');
      expect(view.instances().map((i) => i.id)).toEqual(['web-dc1']);
      await api(dc1, 'DELETE', '/api/v1/instances/web-dc1');
      await until(async () => view.datacenter, (dc) => dc === 'dc3');
      expect(view.instances().map((i) => i.id)).toEqual(['web-dc3']);
      // A service with a server-side policy fails over without the client asking.
      const pay = client.discover('pay');
      await pay.ready();
      expect([pay.datacenter, pay.instances().map((i) => i.id)]).toEqual(['dc2', ['pay-dc2']]);
      const read = await api(dc1, 'GET', '/api/v1/services/pay/instances');
      expect([read.body.datacenter, read.body.failovers]).toEqual(['dc2', 1]);
      expect((await api(dc1, 'GET', '/api/v1/services/pay/instances?dc=dc2&failover=dc3')).status).toBe(400);
    } finally {
      await client.close();
    }
  });

  it('a remote DC killed: local reads unaffected, its reads stale with their age; restarted, the stream resumes without a full reload', async () => {
    // dc1 has seen everything dc2 wrote (KV too), so its resume point is inside dc2's history after a restart.
    const dc2Index = dc2.catalog.index;
    await until(() => api(dc1, 'GET', '/api/v1/datacenters'), (r) => r.body.find((d: { name: string }) => d.name === 'dc2').index === dc2Index);
    await dc2.close();
    const stale = await until(() => api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc2'), (r) => r.headers.get('x-beacon-stale-age') !== null, 3_000);
    expect(stale.status).toBe(200);
    expect(stale.body.instances.map((i: { id: string }) => i.id)).toEqual(['web-dc2']);
    expect(Number(stale.headers.get('x-beacon-stale-age'))).toBeGreaterThanOrEqual(0);
    const consul = await api(dc1, 'GET', '/v1/health/service/web?dc=dc2');
    expect(consul.headers.get('x-consul-knownleader')).toBe('false');
    // Local discovery goes on.
    expect((await api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc3')).body.instances.length).toBe(1);
    expect((await api(dc1, 'GET', '/api/v1/services')).status).toBe(200);
    // KV forwarded to a dead DC: 503 within the configured timeout, no hang.
    const t0 = performance.now();
    const kv = await api(dc1, 'GET', '/v1/kv/config/color?dc=dc2');
    expect(kv.status).toBe(503);
    expect(performance.now() - t0).toBeLessThan(FAST.timeoutMs + 500);

    const before = (await api(dc1, 'GET', '/api/v1/datacenters')).body.find((d: { name: string }) => d.name === 'dc2').stream;
    dc2 = await devServer(dc2Config(dc2Port));
    const after = await until(
      () => api(dc1, 'GET', '/api/v1/datacenters'),
      (r) => r.body.find((d: { name: string }) => d.name === 'dc2')?.stale === false,
      5_000,
    );
    const dc2Status = after.body.find((d: { name: string }) => d.name === 'dc2');
    expect(dc2Status.stale).toBe(false);
    expect(dc2Status.stream.resumes).toBeGreaterThan(before.resumes);
    expect(dc2Status.stream.resets).toBe(before.resets);
    const fresh = await api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc2');
    expect(fresh.headers.get('x-beacon-stale-age')).toBeNull();
    // Changes flow again after the resume.
    await api(dc2, 'PUT', '/api/v1/instances', instance('web', 'web-dc2b', '10.0.2.2', 80));
    const seen = await until(() => api(dc1, 'GET', '/api/v1/services/web/instances?dc=dc2'), (r) => r.body.instances?.length === 2);
    expect(seen.body.instances.map((i: { id: string }) => i.id)).toEqual(['web-dc2', 'web-dc2b']);
  });
});

describe('federation: a remote DC that accepts connections and never answers', () => {
  it('answers 503 at once for it, forwards fail within the timeout, and closing does not wait for it', async () => {
    const sockets = new Set<Socket>();
    const hole = createServer((s) => void sockets.add(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const port = (hole.address() as AddressInfo).port;
    const server = await devServer({ federation: { remotes: [{ name: 'void', servers: [`http://127.0.0.1:${port}`] }], pingIntervalMs: 100, timeoutMs: 300 } });
    try {
      let t = performance.now();
      const read = await api(server, 'GET', '/api/v1/services/web/instances?dc=void');
      expect([read.status, read.body.error.code]).toEqual([503, 'unavailable']);
      expect(performance.now() - t).toBeLessThan(200);
      t = performance.now();
      const kv = await api(server, 'GET', '/v1/kv/a?dc=void');
      expect(kv.status).toBe(503);
      expect(performance.now() - t).toBeLessThan(1_000);
      expect((await api(server, 'GET', '/api/v1/datacenters')).body[1]).toMatchObject({ name: 'void', synced: false, stale: true });
    } finally {
      const t = performance.now();
      await server.close();
      expect(performance.now() - t).toBeLessThan(1_000);
      for (const s of sockets) s.destroy();
      await new Promise((r) => hole.close(r));
    }
  });
});
