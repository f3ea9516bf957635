import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Consul from 'consul';
import { aclServer, api, type AclTestServer } from './helpers.js';

/** Consul's API with ACLs on: each route asks the one decision; lists are filtered and say so. */
let acl: AclTestServer;
let web: string;
let webAccessor: string;
beforeAll(async () => {
  acl = await aclServer();
  ({ secret: web, accessorId: webAccessor } = await acl.token(
    ['service "web" { policy = "write" }', 'key_prefix "app/" { policy = "write" }', 'session_prefix "" { policy = "write" }', 'event "deploy" { policy = "write" }'].join('\n'),
  ));
  const m = as(acl.management);
  for (const [name, port] of [['web', 8080], ['billing', 9090]] as const) {
    expect((await api(acl.server, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Address: '127.0.0.1', Port: port, Check: { TTL: '30s', CheckID: `${name}-ttl` } }, m)).status).toBe(200);
  }
  expect((await api(acl.server, 'PUT', '/v1/kv/secret/db-password', 'hunter2', m)).status).toBe(200);
});
afterAll(() => acl.close());

const as = (secret: string) => ({ 'x-consul-token': secret });
const FILTERED = 'x-consul-results-filtered-by-acls';

describe('Consul API with ACLs on', () => {
  it('lets a token write its own service and answers 403 in Consul\'s words for any other', async () => {
    const t = as(web);
    expect((await api(acl.server, 'PUT', '/v1/agent/check/pass/web-ttl', undefined, t)).status).toBe(200);
    const attempts: [string, string, unknown?][] = [
      ['PUT', '/v1/agent/service/register', { ID: 'billing-2', Name: 'billing', Address: '127.0.0.1', Port: 1 }],
      ['PUT', '/v1/agent/service/deregister/billing-1'],
      ['PUT', '/v1/agent/service/maintenance/billing-1?enable=true'],
      ['PUT', '/v1/agent/check/fail/billing-ttl'],
      ['PUT', '/v1/agent/check/update/billing-ttl', { Status: 'critical' }],
      ['PUT', '/v1/catalog/register', { Node: 'n2', Address: '10.0.0.2', Service: { Service: 'web', Port: 1 } }],
      ['PUT', '/v1/catalog/deregister', { Node: acl.server.deps.info.node, ServiceID: 'billing-1' }],
      ['PUT', '/v1/agent/maintenance?enable=true'],
    ];
    for (const [method, path, body] of attempts) {
      const r = await api(acl.server, method, path, body, t);
      expect([path, r.status]).toEqual([path, 403]);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(r.body).toMatch(/^Permission denied: token lacks (service|node):write/);
    }
    // The registration for billing did not take web's id either (409 for any token), and billing is untouched.
    const takeover = await api(acl.server, 'PUT', '/v1/agent/service/register', { ID: 'billing-1', Name: 'web', Address: '127.0.0.1', Port: 2 }, t);
    expect(takeover.status).toBe(409);
    const billing = await api(acl.server, 'GET', '/v1/health/service/billing', undefined, as(acl.management));
    expect(billing.body.map((e: { Service: { ID: string; Port: number } }) => [e.Service.ID, e.Service.Port])).toEqual([['billing-1', 9090]]);
  });

  it('filters catalog and health lists to what the token may read, with Consul\'s header when something was dropped', async () => {
    const services = await api(acl.server, 'GET', '/v1/catalog/services', undefined, as(web));
    expect(Object.keys(services.body)).toEqual(['web']);
    expect(services.headers.get(FILTERED)).toBe('true');
    const hidden = await api(acl.server, 'GET', '/v1/health/service/billing', undefined, as(web));
    expect([hidden.status, hidden.body, hidden.headers.get(FILTERED)]).toEqual([200, [], 'true']);
    const own = await api(acl.server, 'GET', '/v1/health/service/web', undefined, as(web));
    expect(own.body).toHaveLength(1);
    expect(own.headers.get(FILTERED)).toBeNull();
    const all = await api(acl.server, 'GET', '/v1/catalog/services', undefined, as(acl.management));
    expect(Object.keys(all.body).sort()).toEqual(['billing', 'consul', 'web']);
    expect(all.headers.get(FILTERED)).toBeNull();
    // Without a token: the anonymous token, which may read nothing until an operator says otherwise.
    const anon = await api(acl.server, 'GET', '/v1/catalog/services');
    expect([anon.status, anon.body, anon.headers.get('x-consul-default-acl-policy')]).toEqual([200, {}, 'deny']);
  });

  it('guards KV by key: write under the prefix, list to recurse, txn judged whole before anything runs', async () => {
    const t = as(web);
    expect((await api(acl.server, 'PUT', '/v1/kv/app/config', 'v1', t)).status).toBe(200);
    expect((await api(acl.server, 'PUT', '/v1/kv/other/x', 'v', t)).status).toBe(403);
    expect((await api(acl.server, 'GET', '/v1/kv/secret/db-password', undefined, t)).status).toBe(403);
    expect((await api(acl.server, 'GET', '/v1/kv/?recurse', undefined, t)).status).toBe(403);
    expect((await api(acl.server, 'GET', '/v1/kv/app/?recurse', undefined, t)).body.map((p: { Key: string }) => p.Key)).toEqual(['app/config']);
    expect((await api(acl.server, 'DELETE', '/v1/kv/secret?recurse', undefined, t)).status).toBe(403);
    const txn = await api(
      acl.server,
      'PUT',
      '/v1/txn',
      [{ KV: { Verb: 'set', Key: 'app/config', Value: Buffer.from('v2').toString('base64') } }, { KV: { Verb: 'delete', Key: 'secret/db-password' } }],
      t,
    );
    expect([txn.status, txn.body]).toEqual([409, { Results: null, Errors: [{ OpIndex: 1, What: 'Permission denied' }] }]);
    const kept = await api(acl.server, 'GET', '/v1/kv/app/config?raw', undefined, t);
    expect(kept.body).toBe('v1');
  });

  it('guards sessions by node and events by name, and leaves /v1/status open', async () => {
    expect((await api(acl.server, 'PUT', '/v1/session/create', {}, as(web))).status).toBe(200);
    expect((await api(acl.server, 'PUT', '/v1/session/create', {})).status).toBe(403);
    expect((await api(acl.server, 'PUT', '/v1/event/fire/deploy', 'x', as(web))).status).toBe(200);
    expect((await api(acl.server, 'PUT', '/v1/event/fire/restart', 'x', as(web))).status).toBe(403);
    expect((await api(acl.server, 'PUT', '/v1/event/fire/restart', 'x', as(acl.management))).status).toBe(200);
    const events = await api(acl.server, 'GET', '/v1/event/list', undefined, as(web));
    expect(events.body.map((e: { Name: string }) => e.Name)).toEqual(['deploy']);
    expect(events.headers.get(FILTERED)).toBe('true');
    expect((await api(acl.server, 'GET', '/v1/status/leader', undefined, as('no-such-token'))).status).toBe(200);
  });

  it('lets only a token with operator:write aim a check past the instance\'s own address', async () => {
    const { secret: operator } = await acl.token('service "web" { policy = "write" }\noperator = "write"');
    const reg = { ID: 'web-probe', Name: 'web', Address: '127.0.0.1', Port: 8080, Check: { TCP: '10.9.9.9:5432', Interval: '1h' } };
    const plain = await api(acl.server, 'PUT', '/v1/agent/service/register', reg, as(web));
    expect([plain.status, plain.body]).toEqual([403, expect.stringMatching(/not the instance's address/)]);
    expect((await api(acl.server, 'PUT', '/v1/agent/service/register', reg, as(operator))).status).toBe(200);
    // Dialling still refuses link-local (cloud metadata), whoever asks.
    const metadata = await api(acl.server, 'PUT', '/v1/agent/service/register', { ...reg, Check: { HTTP: 'http://169.254.169.254/', Interval: '1h' } }, as(operator));
    expect([metadata.status, metadata.body]).toEqual([403, expect.stringMatching(/link-local/)]);
  });

  it('surfaces a refusal to the consul npm client as a 403 error', async () => {
    const consul = new Consul({ host: '127.0.0.1', port: acl.server.httpAddress.port, defaults: { token: web } });
    await consul.agent.service.register({ name: 'web', id: 'web-sdk', address: '127.0.0.1', port: 8081 });
    const err = await consul.agent.service.register({ name: 'billing', id: 'billing-sdk', address: '127.0.0.1', port: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 403, message: expect.stringMatching(/service:write on "billing"/) });
  });

  it('ends a parked blocking query within a second of its token being deleted', async () => {
    const { secret, accessorId } = await acl.token('service "web" { policy = "read" }');
    const first = await api(acl.server, 'GET', '/v1/health/service/web', undefined, as(secret));
    const index = first.headers.get('x-consul-index');
    const parked = api(acl.server, 'GET', `/v1/health/service/web?index=${index}&wait=30s`, undefined, as(secret));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    expect((await api(acl.server, 'DELETE', `/v1/acl/token/${accessorId}`, undefined, as(acl.management))).status).toBe(200);
    const r = await parked;
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect([r.status, r.body]).toEqual([403, 'ACL not found']);
    expect(webAccessor).not.toBe(accessorId);
  });
});
