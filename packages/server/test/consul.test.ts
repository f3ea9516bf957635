import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Consul from 'consul';
import dgram from 'node:dgram';
import * as packet from 'dns-packet';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

let server: RunningServer;
let consul: Consul;
let app: Server;
let appPort: number;
let healthy = true;

beforeAll(async () => {
  server = await devServer();
  consul = new Consul({ host: '127.0.0.1', port: server.httpAddress.port });
  // A service with a health endpoint for the HTTP check to probe.
  app = createServer((req, res) => {
    res.statusCode = req.url === '/health' && healthy ? 200 : 500;
    res.end(healthy ? 'ok' : 'down');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as AddressInfo).port;
});

afterAll(async () => {
  consul.destroy();
  await server.close();
  await new Promise((r) => app.close(r));
});

/** Raw GET with headers, for what the client library hides (indexes, status codes). */
async function get(path: string) {
  return api(server, 'GET', path);
}

/** Waits (bounded) until `probe` returns something truthy. */
async function until<T>(probe: () => Promise<T>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Consul HTTP API with the consul npm client', () => {
  it('shows the server as a node with serfHealth and the consul service', async () => {
    const self = await consul.agent.self();
    expect(self.Config).toMatchObject({ Datacenter: 'dc1', NodeName: 'test-node', Server: true });
    expect(await consul.agent.members()).toMatchObject([{ Name: 'test-node', Status: 1 }]);
    expect(await consul.catalog.datacenters()).toEqual(['dc1']);
    const services = await consul.catalog.service.list();
    expect(services.consul).toEqual([]);
    const nodes = await consul.catalog.node.list();
    expect(nodes.map((n: any) => n.Node)).toContain('test-node');
    const health = await consul.health.service('consul');
    expect(health).toHaveLength(1);
    expect(health[0].Service).toMatchObject({ ID: 'consul', Service: 'consul', Port: server.httpAddress.port });
    expect(health[0].Checks).toEqual([expect.objectContaining({ CheckID: 'serfHealth', Status: 'passing' })]);
    expect(await consul.status.leader()).toBe(`127.0.0.1:${server.httpAddress.port}`);
    expect(await consul.status.peers()).toEqual([`127.0.0.1:${server.httpAddress.port}`]);
  });

  it('registers with TTL and HTTP checks, passes the TTL, and answers health with passing', async () => {
    await consul.agent.service.register({
      name: 'web',
      id: 'web-1',
      address: '127.0.0.1',
      port: appPort,
      tags: ['v1', 'primary'],
      meta: { version: '1.2.0' },
      checks: [{ ttl: '30s' }, { http: `http://127.0.0.1:${appPort}/health`, interval: '1s', timeout: '1s' }],
    });
    await consul.agent.service.register({ name: 'web', id: 'web-2', address: '127.0.0.2', port: 81, tags: ['v2'], check: { ttl: '30s', status: 'passing' } });

    const services = await consul.agent.services();
    expect(Object.keys(services).sort()).toEqual(['web-1', 'web-2']);
    expect(services['web-1']).toMatchObject({ Service: 'web', Tags: ['v1', 'primary'], Port: appPort, Meta: { version: '1.2.0' }, Weights: { Passing: 1, Warning: 1 } });
    const checks = await consul.agent.checks();
    expect(checks['service:web-1:1']).toMatchObject({ Name: "Service 'web' check", Type: 'ttl', Status: 'critical', ServiceID: 'web-1' });
    expect(checks['service:web-1:2']).toMatchObject({ Type: 'http', Interval: '1s' });

    // Only web-2 (its TTL check started passing) is in the passing answer until web-1 passes its TTL.
    expect((await consul.health.service({ service: 'web', passing: true })).map((e: any) => e.Service.ID)).toEqual(['web-2']);
    await consul.agent.check.pass({ id: 'service:web-1:1', note: 'all good' });
    const passing = await until(async () => {
      const r = await consul.health.service({ service: 'web', passing: true });
      return r.length === 2 ? r : undefined;
    }, 'the HTTP check to pass');
    const web1 = passing.find((e: any) => e.Service.ID === 'web-1');
    expect(web1.Node).toMatchObject({ Node: 'test-node', Datacenter: 'dc1' });
    expect(web1.Checks.map((c: any) => [c.CheckID, c.Status])).toEqual([
      ['serfHealth', 'passing'],
      ['service:web-1:1', 'passing'],
      ['service:web-1:2', 'passing'],
    ]);
    expect(web1.Checks[1].Output).toBe('all good');

    // The HTTP check turns critical with the service, and `passing` drops the instance.
    healthy = false;
    await until(async () => (await consul.health.service({ service: 'web', passing: true })).length === 1, 'the HTTP check to fail');
    healthy = true;
    await until(async () => (await consul.health.service({ service: 'web', passing: true })).length === 2, 'the HTTP check to pass again');

    expect((await consul.health.service({ service: 'web', tag: 'v2' })).map((e: any) => e.Service.ID)).toEqual(['web-2']);
    const cat = await consul.catalog.service.nodes('web');
    expect(cat.map((s: any) => [s.ServiceID, s.ServiceAddress, s.Node])).toEqual([
      ['web-1', '127.0.0.1', 'test-node'],
      ['web-2', '127.0.0.2', 'test-node'],
    ]);
    expect((await consul.catalog.service.list()).web.sort()).toEqual(['primary', 'v1', 'v2']);
    const state = await consul.health.state('critical');
    expect(state.every((c: any) => c.Status === 'critical')).toBe(true);
  });

  it('filters with the bexpr language', async () => {
    const byMeta = await consul.health.service({ service: 'web', filter: 'Service.Meta.version == "1.2.0"' });
    expect(byMeta.map((e: any) => e.Service.ID)).toEqual(['web-1']);
    const byTag = await consul.catalog.service.nodes({ service: 'web', filter: '"v2" in ServiceTags' });
    expect(byTag.map((e: any) => e.ServiceID)).toEqual(['web-2']);
    const agent = await consul.agent.services({ filter: 'Port == 81' });
    expect(Object.keys(agent)).toEqual(['web-2']);
    const bad = await get('/v1/health/service/web?filter=' + encodeURIComponent('Service.Port =='));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/Failed to create boolean expression evaluator/);
  });

  it('appears in the native API, and native instances appear through Consul', async () => {
    const native = await api(server, 'GET', '/api/v1/services/web/instances');
    expect(native.body.instances.map((i: any) => [i.id, i.source])).toEqual([
      ['web-1', 'consul'],
      ['web-2', 'consul'],
    ]);
    await api(server, 'PUT', '/api/v1/instances', { service: 'billing', id: 'billing-1', address: '127.0.0.9', port: 9000, tags: ['blue'] });
    const h = await consul.health.service('billing');
    expect(h.map((e: any) => [e.Service.ID, e.Service.Address, e.Service.Port])).toEqual([['billing-1', '127.0.0.9', 9000]]);
    await consul.agent.service.deregister('billing-1');
    expect((await api(server, 'GET', '/api/v1/instances/billing-1')).status).toBe(404);
  });

  it('puts services in maintenance and reports agent health by service', async () => {
    await consul.agent.service.maintenance({ id: 'web-2', enable: true, reason: 'upgrading' });
    let h = await consul.health.service('web');
    const web2 = h.find((e: any) => e.Service.ID === 'web-2');
    expect(web2.Checks).toContainEqual(expect.objectContaining({ CheckID: '_service_maintenance:web-2', Status: 'critical', Notes: 'upgrading' }));
    const byId = await get('/v1/agent/health/service/id/web-2');
    expect(byId.status).toBe(503);
    expect(byId.body.AggregatedStatus).toBe('maintenance');
    await consul.agent.service.maintenance({ id: 'web-2', enable: false });
    expect((await get('/v1/agent/health/service/id/web-2')).status).toBe(200);

    await consul.agent.maintenance({ enable: true, reason: 'kernel update' });
    h = await consul.health.service('web');
    expect(h[0].Checks[0]).toMatchObject({ CheckID: 'serfHealth' });
    expect(h[0].Checks).toContainEqual(expect.objectContaining({ CheckID: '_node_maintenance', Status: 'critical' }));
    expect(await consul.health.service({ service: 'web', passing: true })).toEqual([]);
    await consul.agent.maintenance({ enable: false });
    expect((await consul.health.service({ service: 'web', passing: true })).length).toBe(2);
  });

  it('adds and removes checks, keeping the others', async () => {
    await consul.agent.check.register({ name: 'disk', id: 'web-1-disk', serviceid: 'web-1', ttl: '60s', status: 'warning' });
    let checks = await consul.agent.checks();
    expect(checks['web-1-disk']).toMatchObject({ Status: 'warning', ServiceID: 'web-1' });
    expect(checks['service:web-1:1']).toBeDefined();
    await consul.agent.check.fail({ id: 'web-1-disk', note: 'disk full' });
    expect((await consul.agent.checks())['web-1-disk']).toMatchObject({ Status: 'critical', Output: 'disk full' });
    await consul.agent.check.deregister('web-1-disk');
    checks = await consul.agent.checks();
    expect(checks['web-1-disk']).toBeUndefined();
    expect(checks['service:web-1:1']).toMatchObject({ Status: 'passing' });
  });

  it('registers external nodes and services through the catalog', async () => {
    await consul.catalog.register({
        node: 'ext-1',
        address: '10.1.0.1',
        nodemeta: { rack: 'r1' },
        service: { id: 'redis-1', service: 'redis', port: 6379, tags: ['primary'] },
        checks: [{ checkid: 'redis-alive', name: 'Redis alive', serviceid: 'redis-1', status: 'passing' }],
    });
    const node = await consul.catalog.node.services('ext-1');
    expect(node.Node).toMatchObject({ Node: 'ext-1', Address: '10.1.0.1', Meta: { rack: 'r1' } });
    expect(Object.keys(node.Services)).toEqual(['redis-1']);
    const h = await consul.health.service({ service: 'redis', passing: true });
    expect(h.map((e: any) => [e.Node.Node, e.Service.Address, e.Checks.map((c: any) => c.CheckID)])).toEqual([['ext-1', '10.1.0.1', ['redis-alive']]]);
    const byMeta = await get('/v1/catalog/nodes?node-meta=rack:r1');
    expect(byMeta.body.map((n: any) => n.Node)).toEqual(['ext-1']);
    // A catalog check's status is set by re-registering it.
    await consul.catalog.register({ node: 'ext-1', address: '10.1.0.1', checks: [{ checkid: 'redis-alive', name: 'Redis alive', serviceid: 'redis-1', status: 'critical' }] });
    expect(await consul.health.service({ service: 'redis', passing: true })).toEqual([]);
    expect((await consul.health.node('ext-1')).map((c: any) => [c.CheckID, c.Status])).toEqual([['redis-alive', 'critical']]);
    await consul.catalog.deregister({ node: 'ext-1' });
    const gone = await get('/v1/catalog/node/ext-1');
    expect([gone.status, gone.body]).toEqual([200, null]);
    expect(await consul.health.service('redis')).toEqual([]);
  });

  it('stores KV pairs with CAS, flags, recursion, keys and deletes', async () => {
    expect(await consul.kv.set('config/app/name', 'beacon')).toBe(true);
    expect(await consul.kv.set({ key: 'config/app/port', value: '8080', flags: 7 })).toBe(true);
    const got = await consul.kv.get('config/app/name');
    expect(got).toMatchObject({ Key: 'config/app/name', Value: 'beacon', Flags: 0, LockIndex: 0 });
    expect((await consul.kv.get('config/app/port')).Flags).toBe(7);
    // The client hands a JSON `false` back as undefined; the raw answer shows it.
    expect((await api(server, 'PUT', `/v1/kv/config/app/name?cas=${got.ModifyIndex + 1000}`, 'stale')).body).toBe(false);
    expect(await consul.kv.set({ key: 'config/app/name', value: 'fresh', cas: got.ModifyIndex })).toBe(true);
    expect(await consul.kv.set({ key: 'config/app/name', value: 'again', cas: 0 })).not.toBe(true);
    expect((await consul.kv.get('config/app/name')).Value).toBe('fresh');
    expect((await consul.kv.get({ key: 'config/', recurse: true })).map((p: any) => p.Key)).toEqual(['config/app/name', 'config/app/port']);
    expect(await consul.kv.keys({ key: 'config/', separator: '/' })).toEqual(['config/app/']);
    expect(await consul.kv.get('config/missing')).toBeUndefined();
    expect((await api(server, 'PUT', '/v1/kv/config/dir/')).body).toBe(true);
    expect((await get('/v1/kv/config/dir/')).body[0]).toMatchObject({ Key: 'config/dir/', Value: null });
    expect(await consul.kv.keys({ key: 'config/', separator: '/' })).toEqual(['config/app/', 'config/dir/']);

    const missing = await get('/v1/kv/config/missing');
    expect(missing.status).toBe(404);
    expect(Number(missing.headers.get('x-consul-index'))).toBeGreaterThan(0);
    const encoded = await get('/v1/kv/config%2Fapp%2Fname?raw');
    expect(encoded.body).toBe('fresh');
    expect((await get('/v1/kv/')).status).toBe(400);

    expect(await consul.kv.del({ key: 'config/', recurse: true })).toBe(true);
    expect(await consul.kv.get({ key: 'config/', recurse: true })).toBeUndefined();
  });

  it('runs transactions atomically', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const ok = await consul.transaction.create([
      { KV: { Verb: 'set', Key: 'txn/a', Value: b64('1') } },
      { KV: { Verb: 'set', Key: 'txn/b', Value: b64('2') } },
      { KV: { Verb: 'get', Key: 'txn/a' } },
    ]);
    expect(ok.Errors).toBeNull();
    expect(ok.Results.map((r: any) => r.KV.Key)).toEqual(['txn/a', 'txn/b', 'txn/a']);
    expect(Buffer.from(ok.Results[2].KV.Value, 'base64').toString()).toBe('1');
    const failed = await api(server, 'PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 'txn/c', Value: b64('3') } },
      { KV: { Verb: 'check-not-exists', Key: 'txn/a' } },
    ]);
    expect(failed.status).toBe(409);
    expect(failed.body.Errors).toEqual([{ OpIndex: 1, What: expect.stringMatching(/exists/) }]);
    expect(await consul.kv.get('txn/c')).toBeUndefined();
  });

  it('refuses a txn Index that is not an unsigned integer for every verb that takes one, writing nothing', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(await consul.kv.set('txn/guarded', 'original')).toBe(true);
    const { ID: session } = await consul.session.create({ lockdelay: '0s' });
    for (const verb of ['cas', 'delete-cas', 'check-index', 'lock', 'unlock']) {
      for (const index of [-1, -1000, 1.5]) {
        const r = await api(server, 'PUT', '/v1/txn', [{ KV: { Verb: verb, Key: 'txn/guarded', Value: b64('overwritten'), Index: index, Session: session } }]);
        expect(r.status, `${verb} Index ${index}`).toBe(400);
        expect(r.body).toMatch(/Failed to parse body: .*index: expected an unsigned integer/i);
      }
    }
    expect((await consul.kv.get('txn/guarded')).Value).toBe('original');
    expect((await consul.kv.get('txn/guarded')).Session).toBeUndefined();
    await consul.session.destroy(session);
  });

  it('takes a lock with a session, refuses a second holder, and releases on destroy', async () => {
    const { ID: s1 } = await consul.session.create({ name: 'leader-a', ttl: '15s', lockdelay: '0s' });
    const { ID: s2 } = await consul.session.create({ name: 'leader-b', behavior: 'delete' });
    expect((await consul.session.info(s1))).toMatchObject({ ID: s1, Name: 'leader-a', Node: 'test-node', TTL: '15s', Behavior: 'release', NodeChecks: ['serfHealth'] });
    expect((await consul.session.list()).map((s: any) => s.ID).sort()).toEqual([s1, s2].sort());
    expect((await consul.session.node('test-node')).length).toBe(2);
    expect((await consul.session.renew(s1))[0].ID).toBe(s1);

    expect(await consul.kv.set({ key: 'service/leader', value: 'a', acquire: s1 })).toBe(true);
    expect((await api(server, 'PUT', `/v1/kv/service/leader?acquire=${s2}`, 'b')).body).toBe(false);
    expect(await consul.kv.get('service/leader')).toMatchObject({ Value: 'a', Session: s1, LockIndex: 1 });
    expect(await consul.kv.set({ key: 'service/leader', value: 'a', release: s2 })).not.toBe(true);

    await consul.session.destroy(s1);
    expect(await consul.session.info(s1)).toBeUndefined();
    const after = await consul.kv.get('service/leader');
    expect(after.Session).toBeUndefined();
    expect(await consul.kv.set({ key: 'service/leader', value: 'b', acquire: s2 })).toBe(true);
    expect((await consul.kv.get('service/leader')).LockIndex).toBe(2);
    // Behavior delete: the key goes with the session.
    await consul.session.destroy(s2);
    expect(await consul.kv.get('service/leader')).toBeUndefined();

    const unknown = await api(server, 'PUT', '/v1/session/renew/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    const badTtl = await api(server, 'PUT', '/v1/session/create', { TTL: '1s' });
    expect(badTtl.status).toBe(400);
  });

  it('wakes a blocking watch on a change of its service only', async () => {
    await consul.agent.service.register({ name: 'blk', id: 'blk-1', address: '127.0.0.1', port: 1 });
    const first = await get('/v1/health/service/blk');
    const index = Number(first.headers.get('x-consul-index'));
    expect(index).toBeGreaterThan(0);

    const watch = consul.watch({ method: consul.health.service, options: { service: 'blk', wait: '5s' } });
    const changes: any[] = [];
    watch.on('change', (data: any) => changes.push(data));
    watch.on('error', () => undefined);
    try {
      await until(async () => changes.length === 1, 'the first answer of the watch');
      // A write to another service and a KV write must not wake a raw blocked query on web.
      const parked = get(`/v1/health/service/blk?index=${index}&wait=1s`);
      await new Promise((r) => setTimeout(r, 50));
      await consul.agent.service.register({ name: 'unrelated', port: 1, address: '127.0.0.1' });
      await consul.kv.set('noise', 'x');
      const t0 = Date.now();
      const res = await parked;
      expect(Date.now() - t0).toBeGreaterThan(500);
      expect(Number(res.headers.get('x-consul-index'))).toBe(index);

      await consul.agent.service.register({ name: 'blk', id: 'blk-2', address: '127.0.0.3', port: 82 });
      await until(async () => changes.length >= 2, 'the watch to see blk-2');
      expect(changes.at(-1).map((e: any) => e.Service.ID)).toEqual(['blk-1', 'blk-2']);
    } finally {
      watch.end();
    }
  });

  it('blocks KV reads until the key changes, and sends the index on 404s', async () => {
    const miss = await get('/v1/kv/blocking/key');
    expect(miss.status).toBe(404);
    const index = Number(miss.headers.get('x-consul-index'));
    const parked = get(`/v1/kv/blocking/key?index=${index}&wait=5s`);
    await new Promise((r) => setTimeout(r, 50));
    await consul.kv.set('blocking/other', 'x');
    await consul.kv.set('blocking/key', 'v');
    const res = await parked;
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('x-consul-index'))).toBeGreaterThan(index);
  });

  it('fires and lists events', async () => {
    const e = await consul.event.fire('deploy', 'v42');
    expect(e).toMatchObject({ Name: 'deploy', Payload: 'v42', Version: 1 });
    await consul.event.fire({ name: 'other' });
    const list = await consul.event.list('deploy');
    expect(list.map((x: any) => x.Payload)).toEqual(['v42']);
  });

  it('accepts snake_case registration keys and defaults the ID to the name', async () => {
    const r = await api(server, 'PUT', '/v1/agent/service/register', {
      name: 'snake',
      port: 7,
      check: { ttl: '10s', deregister_critical_service_after: '30s', status: 'passing' },
    });
    expect(r.status).toBe(200);
    expect((await get('/v1/agent/service/snake')).body).toMatchObject({ ID: 'snake', Service: 'snake', Port: 7, Address: '127.0.0.1' });
    const checks = (await get('/v1/agent/checks')).body;
    // Consul raises DeregisterCriticalServiceAfter to its one-minute minimum.
    expect(checks['service:snake']).toMatchObject({ Status: 'passing', Definition: { TTL: '10s', DeregisterCriticalServiceAfter: '1m0s' } });
  });

  it('answers Consul-style errors for bad query parameters', async () => {
    expect((await get('/v1/health/service/web?index=abc')).body).toBe('Invalid index');
    expect((await get('/v1/health/service/web?index=1&wait=10')).body).toBe('Invalid wait time');
    expect((await get('/v1/health/service/web?stale&consistent')).status).toBe(400);
    const dc = await get('/v1/health/service/web?dc=dc9');
    // Consul's answer, naming the datacenters this server knows.
    expect([dc.status, dc.body]).toEqual([500, 'No path to datacenter dc9 (known: dc1)']);
    expect((await get('/v1/health/state/bogus')).status).toBe(400);
    const res = await get('/v1/catalog/services');
    expect(res.headers.get('x-consul-knownleader')).toBe('true');
    expect(res.headers.get('x-consul-lastcontact')).toBe('0');
    expect(res.headers.get('x-consul-default-acl-policy')).toBe('allow');
    expect(Number(res.headers.get('x-consul-index'))).toBeGreaterThan(0);
    const bad = await api(server, 'PUT', '/v1/agent/service/register', { Name: 'Bad Name!' });
    expect(bad.status).toBe(400);
  });

  it('answers 405 with an Allow header for a known path asked with the wrong method, 404 for an unknown path', async () => {
    for (const [method, path, allow] of [
      ['GET', '/v1/agent/service/deregister/web-1', 'OPTIONS,PUT'],
      ['POST', '/v1/kv/some/key', 'DELETE,GET,HEAD,OPTIONS,PUT'],
      ['DELETE', '/v1/catalog/services', 'GET,HEAD,OPTIONS'],
      ['GET', '/v1/session/renew/abc', 'OPTIONS,PUT'],
      ['PUT', '/v1/health/service/web', 'GET,HEAD,OPTIONS'],
    ] as const) {
      const r = await api(server, method, path);
      expect([r.status, r.body, r.headers.get('allow')], `${method} ${path}`).toEqual([405, `method ${method} not allowed`, allow]);
    }
    const options = await api(server, 'OPTIONS', '/v1/agent/check/pass/some-check');
    expect([options.status, options.headers.get('allow')]).toEqual([200, 'OPTIONS,PUT']);
    const unknown = await api(server, 'GET', '/v1/no/such/endpoint');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('allow')).toBeNull();
  });
});

describe('Consul API with a token', () => {
  it('answers 403 without the token and serves requests that carry it', async () => {
    const locked = await devServer({ consul: { aclToken: 's3cret' } });
    try {
      const denied = await api(locked, 'GET', '/v1/catalog/services');
      expect([denied.status, denied.body]).toEqual([403, 'Permission denied']);
      expect(denied.headers.get('x-consul-default-acl-policy')).toBe('deny');
      const client = new Consul({ host: '127.0.0.1', port: locked.httpAddress.port, defaults: { token: 's3cret' } });
      try {
        await client.agent.service.register({ name: 'private', port: 1, address: '127.0.0.1' });
        expect(Object.keys(await client.catalog.service.list())).toContain('private');
      } finally {
        client.destroy();
      }
      expect((await api(locked, 'GET', '/v1/catalog/services', undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
    } finally {
      await locked.close();
    }
  });
});

describe('Consul script checks', () => {
  const scriptBodies = (id: string) => ({
    agentService: { Name: `${id}-svc`, ID: `${id}-svc`, Port: 80, Check: { ScriptArgs: ['true'], Interval: '10s' } },
    agentCheck: { Name: `${id}-check`, ServiceID: 'script-base', ScriptArgs: ['true'], Interval: '10s' },
    catalog: {
      Node: `${id}-node`,
      Address: '10.0.0.9',
      Service: { Service: `${id}-ext`, ID: `${id}-ext`, Port: 80 },
      Check: { CheckID: `${id}-cat`, Name: 'script', ServiceID: `${id}-ext`, Definition: { Args: ['true'], Interval: '10s' } },
    },
  });

  it('refuses Args and ScriptArgs on every registration path when script checks are off', async () => {
    await consul.agent.service.register({ name: 'script-base', id: 'script-base', port: 80 });
    const b = scriptBodies('off');
    const catalogScriptArgs = { ...b.catalog, Check: { ...b.catalog.Check, Definition: { ScriptArgs: ['true'], Interval: '10s' } } };
    for (const [path, body] of [
      ['/v1/agent/service/register', b.agentService],
      ['/v1/agent/service/register', { ...b.agentService, Check: { Args: ['true'], Interval: '10s' } }],
      ['/v1/agent/check/register', b.agentCheck],
      ['/v1/catalog/register', b.catalog],
      ['/v1/catalog/register', catalogScriptArgs],
    ] as const) {
      const r = await api(server, 'PUT', path, body);
      expect([r.status, r.body], `${path} ${JSON.stringify(body)}`).toEqual([403, expect.stringMatching(/script checks are disabled/)]);
    }
    const services = await consul.catalog.service.list();
    expect(Object.keys(services).filter((s) => s.startsWith('off-'))).toEqual([]);
    expect(Object.keys(await consul.agent.checks()).filter((c) => c.startsWith('off-'))).toEqual([]);
    await consul.agent.service.deregister('script-base');
  });

  it('accepts ScriptArgs as Args on every path when script checks are enabled, and shows them as ScriptArgs', async () => {
    const enabled = await devServer({ enableScriptChecks: true });
    const c = new Consul({ host: '127.0.0.1', port: enabled.httpAddress.port });
    try {
      await c.agent.service.register({ name: 'script-base', id: 'script-base', port: 80 });
      const b = scriptBodies('on');
      for (const [path, body] of [
        ['/v1/agent/service/register', b.agentService],
        ['/v1/agent/check/register', b.agentCheck],
        ['/v1/catalog/register', b.catalog],
      ] as const) {
        const r = await api(enabled, 'PUT', path, body);
        expect([r.status, r.body], path).toEqual([200, path.startsWith('/v1/catalog') ? true : '']);
      }
      const checks = await c.agent.checks();
      expect(checks['service:on-svc']).toMatchObject({ ServiceID: 'on-svc', Definition: expect.objectContaining({ ScriptArgs: ['true'] }) });
      expect(checks['on-check']).toMatchObject({ ServiceID: 'script-base', Definition: expect.objectContaining({ ScriptArgs: ['true'] }) });
      const cat = await c.health.checks('on-ext');
      expect(cat).toEqual([expect.objectContaining({ CheckID: 'on-cat', Definition: expect.objectContaining({ ScriptArgs: ['true'] }) })]);
    } finally {
      c.destroy();
      await enabled.close();
    }
  });
});

describe('Consul node-level checks', () => {
  /** The A records the DNS interface answers for a name. */
  async function dnsA(port: number, name: string): Promise<string[]> {
    const s = dgram.createSocket('udp4');
    try {
      const answer = new Promise<Buffer>((resolve, reject) => {
        s.once('message', resolve);
        setTimeout(() => reject(new Error('no DNS answer')), 2000).unref();
      });
      s.send(packet.encode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
      return packet.decode(await answer).answers!.map((a) => String(a.data));
    } finally {
      s.close();
    }
  }

  it('runs the consul client check lifecycle on a node check, which takes every instance of the node out while critical', async () => {
    const s = await devServer({ dns: { addr: '127.0.0.1:0' } });
    const c = new Consul({ host: '127.0.0.1', port: s.httpAddress.port });
    const dnsPort = s.dnsAddress!.udp.port;
    const passingIds = async () => (await c.health.service({ service: 'api', passing: true })).map((e: any) => e.Service.ID).sort();
    try {
      await c.agent.service.register({ name: 'api', id: 'api-1', address: '127.0.0.11', port: 9001 });
      await c.agent.service.register({ name: 'api', id: 'api-2', address: '127.0.0.12', port: 9002 });
      await c.agent.check.register({ name: 'mem', ttl: '30s', notes: 'memory pressure' });
      // No ServiceID: a node check of the agent's node, critical until its first report, as in Consul.
      expect((await c.agent.check.list()).mem).toMatchObject({ Node: 'test-node', CheckID: 'mem', Name: 'mem', Status: 'critical', ServiceID: '', Type: 'ttl', Notes: 'memory pressure' });
      expect(await passingIds()).toEqual([]);

      await c.agent.check.pass({ id: 'mem', note: 'fine' });
      expect((await c.agent.check.list()).mem).toMatchObject({ Status: 'passing', Output: 'fine' });
      expect(await passingIds()).toEqual(['api-1', 'api-2']);
      const entry = (await c.health.service('api'))[0];
      expect(entry.Checks.map((x: any) => x.CheckID)).toEqual(['serfHealth', 'mem']);
      expect((await dnsA(dnsPort, 'api.service.consul')).sort()).toEqual(['127.0.0.11', '127.0.0.12']);

      await c.agent.check.warn('mem');
      expect((await c.agent.check.list()).mem.Status).toBe('warning');
      expect(await passingIds()).toEqual([]);

      await c.agent.check.fail({ id: 'mem', note: 'out of memory' });
      expect((await c.health.node('test-node')).find((x: any) => x.CheckID === 'mem')).toMatchObject({ Status: 'critical', Output: 'out of memory' });
      expect((await c.health.state('critical')).map((x: any) => x.CheckID)).toContain('mem');
      expect((await c.health.checks('api')).map((x: any) => x.CheckID)).not.toContain('mem');
      expect((await c.health.service('api')).length).toBe(2);
      expect(await passingIds()).toEqual([]);
      expect(await dnsA(dnsPort, 'api.service.consul')).toEqual([]);
      const native = await api(s, 'GET', '/api/v1/services/api/instances?passing=true');
      expect(native.body.instances).toEqual([]);
      const why = await api(s, 'GET', '/api/v1/instances/api-1/explain');
      expect(why.body).toMatchObject({ inAnswers: false, reasons: [expect.stringMatching(/^node check mem \(mem\) of node test-node is critical: out of memory/)] });

      await c.agent.check.pass('mem');
      expect(await passingIds()).toEqual(['api-1', 'api-2']);
      // A session bound to the node check ends when it turns critical, and its lock goes with it.
      const { ID: session } = await c.session.create({ checks: ['serfHealth', 'mem'], lockdelay: '0s' });
      expect(await c.kv.set({ key: 'svc/leader', value: 'a', acquire: session })).toBe(true);
      await c.agent.check.fail('mem');
      await until(async () => (await c.session.info(session)) === undefined, 'the session to end');
      expect((await c.kv.get('svc/leader')).Session).toBeUndefined();
      await c.agent.check.pass('mem');
      await c.agent.check.deregister('mem');
      expect((await c.agent.check.list()).mem).toBeUndefined();
      expect((await c.health.service('api'))[0].Checks.map((x: any) => x.CheckID)).toEqual(['serfHealth']);

      // An HTTP node check runs on the server like a service's, against the node's address.
      await c.agent.check.register({ name: 'upstream', http: `http://127.0.0.1:${appPort}/health`, interval: '200ms', timeout: '1s' });
      await until(async () => (await c.agent.check.list()).upstream?.Status === 'passing', 'the HTTP node check to pass');
      expect(await passingIds()).toEqual(['api-1', 'api-2']);
      healthy = false;
      try {
        await until(async () => (await passingIds()).length === 0, 'the failing HTTP node check to take the node out');
        expect((await c.agent.check.list()).upstream).toMatchObject({ Status: 'critical', Type: 'http', ServiceID: '' });
      } finally {
        healthy = true;
      }
      await until(async () => (await passingIds()).length === 2, 'the node to come back');
      await c.agent.check.deregister('upstream');
      // The same target policy as a service check's: no probing the metadata address from here.
      const ssrf = await api(s, 'PUT', '/v1/agent/check/register', { Name: 'meta', HTTP: 'http://169.254.169.254/latest/', Interval: '10s' });
      expect([ssrf.status, ssrf.body]).toEqual([403, expect.stringMatching(/link-local/)]);
      expect((await c.agent.check.list()).meta).toBeUndefined();

      // Through the catalog: a check without ServiceID is the registered node's.
      await c.catalog.register({ node: 'ext-2', address: '10.2.0.1', service: { id: 'cache-1', service: 'cache', port: 6379 }, checks: [{ checkid: 'ext-2-alive', name: 'host alive', status: 'passing' }] });
      expect((await c.health.service({ service: 'cache', passing: true })).map((e: any) => e.Checks.map((x: any) => x.CheckID))).toEqual([['ext-2-alive']]);
      await c.catalog.register({ node: 'ext-2', address: '10.2.0.1', checks: [{ checkid: 'ext-2-alive', name: 'host alive', status: 'critical' }] });
      expect(await c.health.service({ service: 'cache', passing: true })).toEqual([]);
      await c.catalog.deregister({ node: 'ext-2' });
      expect(await c.health.node('ext-2')).toEqual([]);
    } finally {
      c.destroy();
      await s.close();
    }
  });
});
