import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '@beacon/server';
import { createClient, type BeaconClient, type ViewEvent, type ViewHealth } from '@beacon/client';
import { api, beaconServer, refusingUrl, until } from './helpers.js';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(): Promise<{ server: RunningServer; client: BeaconClient }> {
  const server = await beaconServer();
  cleanup.push(() => server.close());
  const client = createClient({ servers: [server.httpUrl], discovery: { reconnect: { baseMs: 20, maxMs: 100 } } });
  cleanup.push(() => client.close());
  return { server, client };
}

const inst = (id: string, extra: Record<string, unknown> = {}) => ({ id, service: 'catalog', address: '127.0.0.1', port: 9000 + Number(id.slice(-1)), ...extra });

describe('discover() over the push stream', () => {
  it('holds the matching instances and names each one added, changed and removed', async () => {
    const { server, client } = await setup();
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-1', { tags: ['v1'] }));
    const view = client.discover('catalog');
    const events: ViewEvent[] = [];
    view.onChange((e) => events.push(...e));
    await view.ready();
    expect(view.instances().map((i) => i.id)).toEqual(['c-1']);
    expect(view.stale).toBe(false);

    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-2'));
    await until(() => view.instances().length === 2, 'c-2 added');
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-1', { tags: ['v2'] }));
    await until(() => view.get('c-1')?.tags[0] === 'v2', 'c-1 changed');
    // Maintenance makes c-2 not ready: a passing-only view drops it.
    await api(server.httpUrl, 'PUT', '/api/v1/instances/c-2/maintenance', { reason: 'patching' });
    await until(() => view.instances().length === 1, 'c-2 removed (not ready)');
    await api(server.httpUrl, 'DELETE', '/api/v1/instances/c-1');
    await until(() => view.instances().length === 0, 'c-1 removed');

    expect(events.map((e) => `${e.type} ${e.instance.id}`)).toEqual(['added c-1', 'added c-2', 'changed c-1', 'removed c-2', 'removed c-1']);
    const changed = events[2] as Extract<ViewEvent, { type: 'changed' }>;
    expect(changed.previous.tags).toEqual(['v1']);
  });

  it('applies the filter: tags, zone, meta', async () => {
    const { server, client } = await setup();
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-1', { tags: ['v2', 'eu'], zone: 'eu-1', meta: { tier: 'gold' } }));
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-2', { tags: ['v2'], zone: 'us-1', meta: { tier: 'gold' } }));
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-3', { tags: ['v1'], zone: 'eu-1' }));
    const v2 = client.discover('catalog', { tags: ['v2'] });
    const eu = client.discover('catalog', { zone: 'eu-1' });
    const gold = client.discover('catalog', { meta: { tier: 'gold' }, tags: ['eu'] });
    await Promise.all([v2.ready(), eu.ready(), gold.ready()]);
    expect(v2.instances().map((i) => i.id)).toEqual(['c-1', 'c-2']);
    expect(eu.instances().map((i) => i.id)).toEqual(['c-1', 'c-3']);
    expect(gold.instances().map((i) => i.id)).toEqual(['c-1']);
  });

  it('keeps the last known good answer, flagged stale, while the server is down, and recovers when it is back', async () => {
    const first = await beaconServer();
    const port = first.httpAddress.port;
    const client = createClient({ servers: [first.httpUrl], discovery: { reconnect: { baseMs: 20, maxMs: 100 } } });
    cleanup.push(() => client.close());
    await api(first.httpUrl, 'PUT', '/api/v1/instances', inst('c-1'));
    const view = client.discover('catalog');
    const health: ViewHealth[] = [];
    view.onHealth((h) => health.push(h));
    await view.ready();

    await first.close();
    await until(() => view.stale, 'view turns stale');
    expect(view.instances().map((i) => i.id)).toEqual(['c-1']);
    expect(view.state.error?.message).toMatch(/ECONNREFUSED|fetch failed|unavailable/i);

    // Restarted with an empty store (dev mode): the instance registers again (as its SDK would).
    const second = await beaconServer(port);
    cleanup.push(() => second.close());
    await api(second.httpUrl, 'PUT', '/api/v1/instances', inst('c-1', { tags: ['after-restart'] }));
    await until(() => !view.stale && view.get('c-1')?.tags[0] === 'after-restart', 'view fresh again');
    expect(health.map((h) => h.stale)).toEqual([true, false]);
  });

  it('fails over to the next server', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    const deadUrl = await refusingUrl();
    const client = createClient({ servers: [deadUrl, server.httpUrl] });
    cleanup.push(() => client.close());
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-1'));
    const view = client.discover('catalog');
    await view.ready();
    expect(view.instances()).toHaveLength(1);
    expect(view.stale).toBe(false);
  });

  it('falls back to blocking reads when the server has no push stream', async () => {
    const server = await beaconServer();
    cleanup.push(() => server.close());
    // A proxy in front of Beacon that hides /api/v1/watch, as some old gateways would.
    const target = new URL(server.httpUrl);
    const watchHits: string[] = [];
    const proxy: Server = createServer((req, res) => {
      if (req.url?.startsWith('/api/v1/watch')) {
        watchHits.push(req.url);
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no such route"}}');
        return;
      }
      const up = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => (proxy.closeAllConnections(), proxy.close(() => r()))));
    const client = createClient({ servers: [`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`], discovery: { waitMs: 2_000 } });
    cleanup.push(() => client.close());

    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-1'));
    const view = client.discover('catalog');
    await view.ready();
    expect(watchHits.length).toBeGreaterThan(0);
    await api(server.httpUrl, 'PUT', '/api/v1/instances', inst('c-2'));
    await until(() => view.instances().length === 2, 'blocking read sees c-2');
    await api(server.httpUrl, 'DELETE', '/api/v1/instances/c-1');
    await until(() => view.instances().map((i) => i.id).join() === 'c-2', 'blocking read sees c-1 go');
    expect(watchHits).toHaveLength(1);
  });
});
