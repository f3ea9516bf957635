import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningServer } from '../src/server.js';
import { api, devServer, until } from './helpers.js';

let server: RunningServer;
let backend: Server;
let backendPort = 0;
let healthy = true;

beforeAll(async () => {
  server = await devServer({ flapDamping: false });
  backend = createServer((req, res) => {
    res.statusCode = healthy ? 200 : 500;
    res.end(healthy ? 'ok' : 'broken');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as AddressInfo).port;
});
afterAll(async () => {
  await server.close();
  await new Promise((r) => backend.close(r));
});

describe('active health checks through the server', () => {
  it('checks a new instance at once rather than one interval later', async () => {
    // With a one-hour interval, the instance can only become ready within the test if the first run is immediate.
    await api(server, 'PUT', '/api/v1/instances', {
      service: 'eager',
      address: '127.0.0.1',
      port: backendPort,
      checks: [{ kind: 'http', url: `http://127.0.0.1:${backendPort}/health`, intervalMs: 3_600_000 }],
    });
    const r = await until(() => api(server, 'GET', '/api/v1/services/eager/instances?passing'), (x) => x.body.instances.length === 1);
    expect(r.body.instances).toHaveLength(1);
  });

  it('takes an instance out when its backend fails, and back when it recovers', async () => {
    const reg = await api(server, 'PUT', '/api/v1/instances', {
      service: 'checked',
      address: '127.0.0.1',
      port: backendPort,
      checks: [{ kind: 'http', url: `http://127.0.0.1:${backendPort}/health`, intervalMs: 200, timeoutMs: 150 }],
    });
    expect(reg.status).toBe(200);
    const passing = () => api(server, 'GET', '/api/v1/services/checked/instances?passing');
    let r = await until(passing, (x) => x.body.instances.length === 1);
    expect(r.body.instances).toHaveLength(1);

    healthy = false;
    r = await until(passing, (x) => x.body.instances.length === 0);
    expect(r.body.instances).toHaveLength(0);
    const explain = await api(server, 'GET', `/api/v1/instances/${reg.body.instance.id}/explain`);
    expect(explain.body.checks[0]).toMatchObject({ kind: 'http', status: 'critical' });
    expect(explain.body.checks[0].output).toMatch(/500/);
    expect(explain.body.checks[0].nextRunAt).toBeGreaterThan(0);

    healthy = true;
    r = await until(passing, (x) => x.body.instances.length === 1);
    expect(r.body.instances).toHaveLength(1);
    const events = await api(server, 'GET', `/api/v1/events?instance=${reg.body.instance.id}&kind=check`);
    expect(events.body.events.map((e: any) => `${e.from}>${e.to}`)).toEqual(['critical>passing', 'passing>critical', 'critical>passing']);
  });

  it('refuses a check that targets another host, with a clear error, and writes nothing', async () => {
    const before = (await api(server, 'GET', '/api/v1/status')).body.index;
    const r = await api(server, 'PUT', '/api/v1/instances', {
      service: 'sneaky',
      address: '127.0.0.1',
      port: 1,
      checks: [{ kind: 'http', url: 'http://10.1.2.3:80/admin', intervalMs: 1000 }],
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    expect(r.body.error.message).toMatch(/10\.1\.2\.3/);
    const script = await api(server, 'PUT', '/api/v1/instances', { service: 'sneaky', address: '127.0.0.1', port: 1, checks: [{ kind: 'script', args: ['true'] }] });
    expect(script.status).toBe(403);
    expect((await api(server, 'GET', '/api/v1/status')).body.index).toBe(before);
  });

  it('lets an agent report the checks of the instances it registered', async () => {
    const reg = await api(server, 'PUT', '/api/v1/instances', {
      service: 'agented',
      address: '10.9.9.9',
      port: 80,
      source: 'agent',
      ttlMs: 10_000,
      checks: [{ id: 'agented-http', kind: 'http', url: 'http://10.9.9.9/health', intervalMs: 1000 }],
    });
    expect(reg.status).toBe(200); // the server never probes it: the policy does not apply
    expect((await api(server, 'PUT', '/api/v1/checks/agented-http/pass', { note: 'HTTP 200' })).status).toBe(200);
    const inst = await api(server, 'GET', `/api/v1/instances/${reg.body.instance.id}`);
    expect(inst.body.checks[0]).toMatchObject({ status: 'passing', output: 'HTTP 200' });
    // A server-run check cannot be overridden by a report.
    const other = await api(server, 'PUT', '/api/v1/instances', {
      service: 'plain',
      address: '127.0.0.1',
      port: backendPort,
      checks: [{ id: 'plain-http', kind: 'http', url: `http://127.0.0.1:${backendPort}/`, intervalMs: 1000 }],
    });
    expect(other.status).toBe(200);
    expect((await api(server, 'PUT', '/api/v1/checks/plain-http/fail')).status).toBe(400);
  });
});
