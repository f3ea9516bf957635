import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server.js';
import { api, devServer, until } from './helpers.js';

let server: RunningServer;
beforeAll(async () => {
  server = await devServer();
});
afterAll(async () => {
  await server.close();
});

const reg = (extra: Record<string, unknown> = {}) => ({ service: 'safe', address: '127.0.0.1', port: 9000, ...extra });

describe('native API: exact types, no coercion of bodies', () => {
  it('refuses wrong JSON types with 400 instead of coercing them, and stores nothing', async () => {
    const before = await api(server, 'GET', '/api/v1/services/safe/instances');
    for (const bad of [{ port: null }, { port: '0x50' }, { port: '80' }, { weight: null }, { weight: true }, { tags: 'solo' }, { meta: { v: 1 } }, { address: 5 }]) {
      const r = await api(server, 'PUT', '/api/v1/instances', reg(bad));
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe('invalid_argument');
    }
    expect((await api(server, 'GET', '/api/v1/services/safe/instances')).body.instances).toEqual(before.body.instances);
  });

  it('still coerces querystrings, which are text', async () => {
    expect((await api(server, 'GET', '/api/v1/services/safe/instances?index=0&wait=1ms')).status).toBe(200);
  });

  it('maintenance {"enable": null} is a 400, not "off"', async () => {
    await api(server, 'PUT', '/api/v1/instances', reg({ id: 'maint-1' }));
    expect((await api(server, 'PUT', '/api/v1/instances/maint-1/maintenance', { enable: true, reason: 'upgrade' })).status).toBe(200);
    const r = await api(server, 'PUT', '/api/v1/instances/maint-1/maintenance', { enable: null });
    expect(r.status).toBe(400);
    expect((await api(server, 'GET', '/api/v1/instances/maint-1')).body.maintenance.reason).toBe('upgrade');
    await api(server, 'DELETE', '/api/v1/instances/maint-1');
  });
});

describe('ids with "/" (Patroni registers <scope>/<name> through Consul)', () => {
  it('registers through Consul and stays addressable URL-encoded on the native API', async () => {
    const r = await api(server, 'PUT', '/v1/agent/service/register', { ID: 'pg/node-1', Name: 'pg', Address: '127.0.0.1', Port: 5432, Check: { TTL: '30s' } });
    expect(r.status).toBe(200);
    const path = `/api/v1/instances/${encodeURIComponent('pg/node-1')}`;
    expect((await api(server, 'GET', path)).body).toMatchObject({ id: 'pg/node-1', service: 'pg' });
    expect((await api(server, 'PUT', `${path}/maintenance`, { enable: true })).status).toBe(200);
    expect((await api(server, 'GET', `${path}/explain`)).status).toBe(200);
    expect((await api(server, 'PUT', `/api/v1/checks/${encodeURIComponent('service:pg/node-1')}/pass`, {})).status).toBe(200);
    expect((await api(server, 'GET', '/v1/agent/services')).body['pg/node-1']).toMatchObject({ ID: 'pg/node-1', Service: 'pg' });
    expect((await api(server, 'DELETE', path)).status).toBe(200);
    expect((await api(server, 'GET', path)).status).toBe(404);
  });

  it('refuses ids that are not path-safe, on every API', async () => {
    for (const id of ['.', '..', 'a\u0000b', 'a\r\nb', 'x\u202e']) {
      expect((await api(server, 'PUT', '/api/v1/instances', reg({ id }))).status, JSON.stringify(id)).toBe(400);
      expect((await api(server, 'PUT', '/v1/agent/service/register', { ID: id, Name: 'safe', Address: '127.0.0.1', Port: 1 })).status, JSON.stringify(id)).toBe(400);
    }
  });
});

describe('addresses: an IP literal or a DNS host name, on every API', () => {
  const hostile = ['../../etc/passwd', 'a\u0000b', 'a\r\nX: 1', 'a b', 'evil\u202ecom', '9007199254740992', '2852039166', '0xa9fea9fe', '0'];

  it('native, Consul agent and catalog, and Eureka all refuse them with 400', async () => {
    for (const address of hostile) {
      const what = JSON.stringify(address);
      expect((await api(server, 'PUT', '/api/v1/instances', reg({ address }))).status, what).toBe(400);
      expect((await api(server, 'PUT', '/v1/agent/service/register', { Name: 'safe', Address: address, Port: 1 })).status, what).toBe(400);
      expect((await api(server, 'PUT', '/v1/catalog/register', { Node: 'n-hostile', Address: '127.0.0.1', Service: { Service: 'safe', Address: address, Port: 1 } })).status, what).toBe(400);
      const eureka = await api(server, 'POST', '/eureka/apps/SAFE', { instance: { instanceId: 'e1', hostName: 'e1', app: 'SAFE', ipAddr: address, status: 'UP', port: { $: 1, '@enabled': 'true' } } });
      expect(eureka.status, what).toBe(400);
    }
    expect((await api(server, 'GET', '/api/v1/services/safe/instances')).body.instances).toEqual([]);
  });

  it('an IPv6 Eureka instance (host name an IPv6 literal too) registers, its node spelled with dashes', async () => {
    const body = { instance: { instanceId: 'e6', hostName: 'FD00::5', app: 'SAFE6', ipAddr: 'FD00::5', status: 'UP', port: { $: 8080, '@enabled': 'true' }, dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' } } };
    expect((await api(server, 'POST', '/eureka/apps/SAFE6', body)).status).toBe(204);
    expect((await api(server, 'GET', '/api/v1/instances/e6')).body).toMatchObject({ address: 'fd00::5', node: 'FD00--5' });
    await api(server, 'DELETE', '/eureka/apps/SAFE6/e6');
  });

  it('stores them canonical', async () => {
    const r = await api(server, 'PUT', '/api/v1/instances', reg({ id: 'canon', address: '::FFFF:127.0.0.1' }));
    expect(r.body.instance.address).toBe('127.0.0.1');
    await api(server, 'DELETE', '/api/v1/instances/canon');
  });
});

describe('check targets', () => {
  it("refuses a check that would call this server's own API (PUT into /v1/kv), through any spelling", async () => {
    const { port } = server.httpAddress;
    for (const url of [`http://127.0.0.1:${port}/v1/kv/owned`, `http://localhost:${port}/v1/kv/owned`, `http://[::ffff:127.0.0.1]:${port}/v1/kv/owned`]) {
      const r = await api(server, 'PUT', '/api/v1/instances', reg({ checks: [{ kind: 'http', url, method: 'PUT', body: 'owned', intervalMs: 1000 }] }));
      expect(r.status, url).toBe(403);
      expect(r.body.error.message).toContain("this server's own listener");
      const c = await api(server, 'PUT', '/v1/agent/service/register', { Name: 'safe', Address: '127.0.0.1', Port: 1, Check: { HTTP: url, Method: 'PUT', Body: 'owned', Interval: '1s' } });
      expect(c.status, url).toBe(403);
    }
    expect((await api(server, 'GET', '/v1/kv/owned')).status).toBe(404);
  });

  it('refuses other spellings of the metadata address as check hosts on the Consul API', async () => {
    for (const host of ['2852039166', '0xa9fea9fe', '169.254.43518', '0251.0376.0251.0376', '169.254.169.254.']) {
      const r = await api(server, 'PUT', '/v1/agent/service/register', { Name: 'safe', Address: host, Port: 80, Check: { TCP: `${host}:80`, Interval: '1s' } });
      expect(r.status, host).toBe(400);
    }
  });

  describe('a real host name (localhost) resolved when the check runs', () => {
    let target: Server;
    let port = 0;
    beforeAll(async () => {
      target = createServer((s) => s.destroy());
      port = await new Promise<number>((r) => target.listen(0, '127.0.0.1', () => r((target.address() as { port: number }).port)));
    });
    afterAll(async () => {
      await new Promise((r) => target.close(r));
    });

    it('passes a TCP check on localhost: resolved, vetted, dialled', async () => {
      await api(server, 'PUT', '/api/v1/instances', reg({ id: 'named', address: 'localhost', checks: [{ id: 'named-tcp', kind: 'tcp', target: `localhost:${port}`, intervalMs: 200 }] }));
      const inst = await until(() => api(server, 'GET', '/api/v1/instances/named'), (r) => r.body.checks[0].status === 'passing');
      expect(inst.body.checks[0]).toMatchObject({ status: 'passing', output: `TCP connect localhost:${port}: Success` });
      await api(server, 'DELETE', '/api/v1/instances/named');
    });
  });
});
