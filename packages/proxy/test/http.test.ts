import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPut, backend, proxyFor, register, spawnServer, until, type RunningProcess } from './helpers.js';

let beacon: RunningProcess;
beforeAll(async () => {
  beacon = await spawnServer(['--dev']);
});
afterAll(async () => {
  await beacon?.stop();
});

/** node:http, since fetch will not send a Host header of our choosing. */
const get = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ status: number; body: any }>((resolve, reject) => {
    request(url, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    })
      .on('error', reject)
      .end();
  });

describe('beacon proxy, L7', () => {
  it('routes one listener to a service, follows the catalog live, and says why when nothing is ready', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', service: 'pay' }] });
    try {
      // Nothing registered: 503 naming the service and the reason, at once.
      const none = await get(`${p.url()}/x`);
      expect(none.status).toBe(503);
      expect(none.body.error).toMatchObject({ code: 'unavailable', details: { service: 'pay', reason: 'not_registered' } });

      const idA = await register(beacon, 'pay', a.port);
      const first = await until(() => get(`${p.url()}/x`), (r) => r.status === 200);
      expect(first.body).toMatchObject({ by: 'a', path: '/x' });

      // A new instance takes traffic within 100 ms of its registration.
      const t0 = Date.now();
      await register(beacon, 'pay', b.port);
      const seenB = await until(() => get(`${p.url()}/y`), (r) => r.body.by === 'b', 2_000);
      expect(seenB.body.by).toBe('b');
      expect(Date.now() - t0).toBeLessThan(100 + 50 /* the polling request itself */);

      // A drained instance gets no new request.
      await apiPut(beacon, `/api/v1/instances/${idA}/drain`, { reason: 'test', enable: true });
      const only = await until(() => get(`${p.url()}/z`), (r) => r.body.by === 'b');
      expect(only.body.by).toBe('b');
    } finally {
      await p.close();
      await a.close();
      await b.close();
    }
  });

  it('answers 404 for an unknown host, routes by host, path prefix (stripped) and header into a subset', async () => {
    const v1 = await backend('v1');
    const v2 = await backend('v2');
    const other = await backend('other');
    await register(beacon, 'shop', v1.port, { tags: ['v1'] });
    await register(beacon, 'shop', v2.port, { tags: ['v2'] });
    await register(beacon, 'other', other.port);
    const p = await proxyFor(beacon, {
      listeners: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { match: { host: 'shop', headers: { 'x-canary': 'true' } }, service: 'shop', subset: { tags: ['v2'] } },
            { match: { host: ['shop'] }, service: 'shop', subset: { tags: ['v1'] } },
            { match: { pathPrefix: '/other' }, stripPrefix: true, service: 'other' },
          ],
        },
      ],
    });
    try {
      expect((await until(() => get(`${p.url()}/a`, { host: 'shop' }), (r) => r.status === 200)).body.by).toBe('v1');
      expect((await get(`${p.url()}/a`, { host: 'shop.service.consul:80', 'x-canary': 'true' })).body.by).toBe('v2');
      const o = await until(() => get(`${p.url()}/other/b?q=1`, { host: 'anything' }), (r) => r.status === 200);
      expect(o.body).toMatchObject({ by: 'other', path: '/b?q=1' });
      const miss = await get(`${p.url()}/nope`, { host: 'nosuch' });
      expect(miss.status).toBe(404);
      expect(miss.body.error).toMatchObject({ code: 'not_found', details: { reason: 'no_route', host: 'nosuch' } });
    } finally {
      await p.close();
      await Promise.all([v1.close(), v2.close(), other.close()]);
    }
  });

  it('answers 502 when the instance resets the connection', async () => {
    const bad = await backend('bad', (req) => req.socket.destroy());
    await register(beacon, 'resets', bad.port);
    const p = await proxyFor(beacon, { admin: '127.0.0.1:0', listeners: [{ listen: '127.0.0.1:0', service: 'resets', policy: { retries: false } }] });
    try {
      const r = await until(() => get(`${p.url()}/`), (x) => x.status !== 503);
      expect(r.status).toBe(502);
      expect(r.body.error).toMatchObject({ code: 'unavailable', details: { reason: 'reset', service: 'resets' } });
      const metrics = await (await fetch(`${p.proxy.adminUrl}/metrics`)).text();
      expect(metrics).toMatch(/beacon_proxy_local_replies_total\{listener="127.0.0.1:0",route="resets",reason="reset"\} 1/);
    } finally {
      await p.close();
      await bad.close();
    }
  });
});
