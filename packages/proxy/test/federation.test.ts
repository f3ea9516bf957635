/**
 * Proxy routes across datacenters: two real servers on loopback (dc1 follows dc2), a route that
 * fails over to the nearest DC when dc1 has no ready instance and comes home when it has one, a
 * listener pinned to dc2 (`--listen …=web@dc2`), and a 503 naming the failover policy when no DC
 * has an instance.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BIN, freePort } from '../../cli/test/helpers.js';
import { createClient } from '@beacon/client';
import { listenFlag } from '../src/index.js';
import { backend, proxyFor, register, spawnServer, until, type RunningProcess } from './helpers.js';

let dc1: RunningProcess;
let dc2: RunningProcess;
beforeAll(async () => {
  dc2 = await spawnServer(['--dev', '--datacenter', 'dc2']);
  dc1 = await spawnServer(['--dev', '--datacenter', 'dc1', '--federate', `dc2=${dc2.url}`, '--federate-ping-interval', '200ms']);
});
afterAll(async () => {
  await dc1?.stop();
  await dc2?.stop();
});

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as any };
};
const deregister = async (beacon: { url: string }, id: string) => {
  const res = await fetch(`${beacon.url}/api/v1/instances/${id}`, { method: 'DELETE' });
  expect(res.ok).toBe(true);
};

describe('beacon proxy across datacenters', () => {
  it('fails a route over to the nearest DC with a ready instance, and comes home when the local one returns', async () => {
    const home = await backend('home');
    const away = await backend('away');
    const awayId = await register(dc2, 'web', away.port);
    // The access log, as JSON lines: each request names the DC its instance was in.
    const lines: any[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    // The last line for a path: `until` may have sent it more than once, and the last answer is the one asserted on.
    const logged = (path: string) => lines.findLast((l) => l.msg === 'request' && l.path === path);
    const p = await proxyFor(
      dc1,
      {
        admin: '127.0.0.1:0',
        listeners: [
          { listen: '127.0.0.1:0', routes: [{ service: 'web', failover: { nearest: 1 } }] },
          listenFlag('127.0.0.1:0=web@dc2'),
        ],
      },
      logger,
    );
    try {
      // dc1 has no web: the route answers from dc2 as soon as dc1 follows it.
      expect((await until(() => get(`${p.url()}/a`), (r) => r.status === 200)).body.by).toBe('away');
      const homeId = await register(dc1, 'web', home.port);
      expect((await until(() => get(`${p.url()}/b`), (r) => r.body.by === 'home')).body.by).toBe('home');
      // The pinned listener reads dc2 whatever dc1 has.
      expect((await get(`${p.url(1)}/c`)).body.by).toBe('away');
      expect(logged('/b')).toMatchObject({ status: 200, dc: 'dc1', route: 'web' });
      expect(logged('/c')).toMatchObject({ status: 200, dc: 'dc2' });
      const routes = (await (await fetch(`${p.proxy.adminUrl}/routes`)).json()) as any;
      expect(routes.listeners[0].routes[0]).toMatchObject({ failover: 'nearest:1', subsets: [{ datacenter: 'dc1' }] });
      expect(routes.listeners[1].routes[0]).toMatchObject({ dc: 'dc2', subsets: [{ datacenter: 'dc2' }] });

      // The last local instance goes: the next requests reach dc2; it returns: traffic goes home.
      await deregister(dc1, homeId);
      expect((await until(() => get(`${p.url()}/d`), (r) => r.body.by === 'away', 2_000)).body.by).toBe('away');
      expect(lines.filter((l) => l.path === '/d').at(-1)).toMatchObject({ status: 200, dc: 'dc2' });
      await register(dc1, 'web', home.port);
      expect((await until(() => get(`${p.url()}/e`), (r) => r.body.by === 'home', 2_000)).body.by).toBe('home');

      // No DC has one: a 503 that names the policy.
      await deregister(dc1, homeId);
      await deregister(dc2, awayId);
      const none = await until(() => get(`${p.url()}/f`), (r) => r.status === 503, 2_000);
      expect(none.status).toBe(503);
      expect(none.body.error).toMatchObject({ code: 'unavailable', details: { reason: 'no_instances', service: 'web', failover: 'nearest:1' } });
      expect(none.body.error.message).toBe('no datacenter has a ready instance of web: not dc1, nor its failover datacenters (nearest:1)');
    } finally {
      await p.close();
      await home.close();
      await away.close();
    }
  });

  it('the SDK takes the same filter in a service policy: client.fetch fails over', async () => {
    const away = await backend('away');
    const awayId = await register(dc2, 'api', away.port);
    const client = createClient({ servers: [dc1.url], services: { api: { filter: { failover: { datacenters: ['dc2'] } } } } });
    try {
      // Until the failover view has caught up, fetch throws "no datacenter has a ready instance": poll past it.
      const res = await until(
        () => client.fetch('http://api/x').then(async (r) => ({ status: r.status, body: (await r.json()) as any }), (err: Error) => ({ status: 0, body: { error: err.message } as any })),
        (r) => r.status === 200,
      );
      expect(res.body.by).toBe('away');
      expect(client.upstream('api').view.datacenter).toBe('dc2');
    } finally {
      await client.close();
      await deregister(dc2, awayId);
      await away.close();
    }
  });

  it('beacon proxy --failover SERVICE=POLICY gives a --listen listener the same failover', async () => {
    const away = await backend('away');
    const awayId = await register(dc2, 'shop', away.port);
    const [port, admin] = [await freePort(), await freePort()];
    const args = [BIN, 'proxy', '--server', dc1.url, '--listen', `127.0.0.1:${port}=shop`, '--failover', 'shop=nearest:1', '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn'];
    const proxy = spawn(process.execPath, args, { stdio: 'ignore' });
    try {
      const res = await until(() => get(`http://127.0.0.1:${port}/x`).catch(() => ({ status: 0, body: {} as any })), (r) => r.status === 200, 10_000);
      expect(res.body.by).toBe('away');
      const routes = (await (await fetch(`http://127.0.0.1:${admin}/routes`)).json()) as any;
      expect(routes.listeners[0].routes[0]).toMatchObject({ failover: 'nearest:1', subsets: [{ datacenter: 'dc2' }] });
    } finally {
      const exited = new Promise((r) => proxy.once('exit', r));
      proxy.kill('SIGTERM');
      await exited;
      await deregister(dc2, awayId);
      await away.close();
    }
  });
});
