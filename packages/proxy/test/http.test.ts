import { request } from 'node:http';
import { connect } from 'node:net';
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

      // A new instance takes traffic within 100 ms of its registration. Measured on the proxy's own
      // route update (the push event that adds it to the view the route balances over): at most
      // 100 ms after the registration was acknowledged (5–20 ms measured, CI included), and the
      // whole path from before the registration is sent is printed.
      let routedAt: number | undefined;
      // The route's own upstream (already synced, with `a` in it), so this is its very view.
      const routeUpstream = p.proxy.upstream(0, 'pay')!;
      expect(routeUpstream.endpoints().map((e) => e.id)).toEqual([idA]);
      const sub = routeUpstream.view.onChange((events) => {
        if (routedAt === undefined && events.some((e) => e.type === 'added' && e.instance.port === b.port)) routedAt = performance.now();
      });
      const t0 = performance.now();
      await register(beacon, 'pay', b.port);
      const ackedAt = performance.now();
      const seenB = await until(() => get(`${p.url()}/y`), (r) => r.body.by === 'b', 2_000);
      const servedAt = performance.now();
      sub.dispose();
      expect(seenB.body.by).toBe('b');
      expect(routedAt).toBeDefined();
      const ms = (t: number) => `${(t - t0).toFixed(1)} ms`;
      console.log(`new instance: registration acknowledged after ${ms(ackedAt)}, in the proxy's route after ${ms(routedAt!)}, first request to it answered after ${ms(servedAt)}`);
      expect(routedAt! - ackedAt).toBeLessThan(100);

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

  it('passes WebSocket upgrades through as bytes', async () => {
    const ws = await backend('ws');
    ws.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Path: ${req.url}\r\n\r\n`);
      socket.on('data', (d) => socket.write(`echo:${d}`));
      // An upgraded socket is half-open by default: close our side when the proxy closes its.
      socket.on('end', () => socket.end());
    });
    await register(beacon, 'sockets', ws.port);
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', service: 'sockets' }] });
    try {
      await until(() => get(`${p.url()}/`), (r) => r.status === 200);
      const got = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: p.proxy.listeners[0]!.port });
        let text = '';
        s.on('data', (d) => {
          text += d;
          if (text.includes('\r\n\r\n') && !text.includes('echo:')) s.write('frame-1');
          if (text.includes('echo:frame-1')) {
            s.destroy();
            resolve(text);
          }
        });
        s.on('error', reject);
        s.write('GET /live HTTP/1.1\r\nHost: sockets\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      });
      expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
      expect(got).toContain('X-Path: /live');
      expect(got).toContain('echo:frame-1');
    } finally {
      await p.close();
      await ws.close();
    }
  });

  it('sends the deadline header, times out a slow attempt with 504, and caps requests per instance with 429', async () => {
    const slow = await backend('slow', (req, res) => {
      req.resume();
      const body = JSON.stringify({ deadline: req.headers['x-beacon-deadline-ms'] ?? null });
      if (req.url === '/slow') setTimeout(() => res.end(body), 2_000).unref();
      else res.end(body);
    });
    await register(beacon, 'sluggish', slow.port);
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', service: 'sluggish', policy: { tryTimeoutMs: 300, timeoutMs: 400, retries: false, maxPerInstance: 1 } }] });
    try {
      const fast = await until(() => get(`${p.url()}/`), (r) => r.status === 200);
      expect(Number(fast.body.deadline)).toBeGreaterThan(250);
      expect(Number(fast.body.deadline)).toBeLessThanOrEqual(300);
      const pending = get(`${p.url()}/slow`);
      await new Promise((r) => setTimeout(r, 50));
      const busy = await get(`${p.url()}/`);
      expect(busy.status).toBe(429);
      expect(busy.body.error).toMatchObject({ code: 'too_many_requests', details: { reason: 'bulkhead' } });
      const timedOut = await pending;
      expect(timedOut.status).toBe(504);
      expect(timedOut.body.error.code).toBe('timeout');
    } finally {
      await p.close();
      await slow.close();
    }
  });

  it('streams request bodies through, and retries a 503 answer of a GET on another instance', async () => {
    const echo = (name: string, status: number) =>
      backend(name, (req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (d) => (body += d));
        req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ by: name, method: req.method, body })));
      });
    const sick = await echo('sick', 503);
    const well = await echo('well', 200);
    await register(beacon, 'uploads', sick.port);
    await register(beacon, 'uploads', well.port);
    const p = await proxyFor(beacon, { listeners: [{ listen: '127.0.0.1:0', service: 'uploads', policy: { balancer: 'round-robin', outlier: false, breaker: false } }] });
    try {
      await until(async () => p.proxy.snapshot().listeners[0]!.routes[0]!.subsets[0]!.instances.length, (n) => n === 2);
      for (let i = 0; i < 6; i++) {
        const r = await get(`${p.url()}/`);
        expect(r).toMatchObject({ status: 200, body: { by: 'well', method: 'GET' } });
      }
      const payload = JSON.stringify({ order: 17, items: 'x'.repeat(100_000) });
      const posted = await new Promise<{ status: number; body: any }>((resolve, reject) => {
        const req = request(`${p.url()}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.write(payload.slice(0, 50_000));
        setTimeout(() => req.end(payload.slice(50_000)), 20);
      });
      // A POST with a body is not retried: whichever instance took it answered.
      expect(posted.body.body).toBe(payload);
      expect(posted.status).toBe(posted.body.by === 'well' ? 200 : 503);
    } finally {
      await p.close();
      await sick.close();
      await well.close();
    }
  });
});
