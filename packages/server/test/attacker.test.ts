/**
 * The attacker's table (issue 11): what someone who can reach the port may try, each row a test
 * over real sockets against a server with ACLs on. Rows tested here:
 *   - a read without a token gets only what anonymous may see, on every interface;
 *   - a token for service A cannot register, deregister, heartbeat, drain or overwrite service B
 *     on the native, Consul and Eureka APIs (403 each), nor take over B's instance id (409);
 *   - concurrent bootstraps: one winner;
 *   - a 20 MB body: 413 on every API.
 * Rows tested where their feature lives (kept there rather than copied):
 *   - a deleted token's SSE stream ends within 1 s; its parked native blocking read: acl.test.ts;
 *     its parked Consul blocking query: consul-acl-enforce.test.ts;
 *   - DNS answers only what anonymous may read (also in UDP worker processes): dns-acl.test.ts;
 *   - SSE streams beyond the per-client cap get 429 while another client's read and stream go
 *     through: request-limits.test.ts ("watches per client"); per-token buckets: acl-limits.test.ts;
 *   - `dig ANY` gets a minimal answer (RFC 8482): dns.test.ts;
 *   - a plaintext client against a TLS-only server fails cleanly; an etcd with the wrong
 *     certificate (or a plaintext etcd URL, or a wrong password) is refused: packages/cli/test/tls.test.ts;
 *   - checks aimed past the instance need --check-allow or operator:write: consul-acl-enforce.test.ts,
 *     health/target-policy.test.ts; checks never follow redirects: health/runners/http.test.ts;
 *     they dial the address that was validated: health/dial.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Resolver } from 'node:dns/promises';
import { aclServer, api, bearer, devServer, type AclTestServer } from './helpers.js';

let acl: AclTestServer;
let tokenA: string;
beforeAll(async () => {
  acl = await aclServer({ dns: { addr: '127.0.0.1:0' } });
  tokenA = (await acl.token('service "svc-a" { policy = "write" }')).secret;
  const tokenB = (await acl.token('service "svc-b" { policy = "write" }')).secret;
  // B's instances on each API, registered with B's own token.
  expect((await api(acl.server, 'PUT', '/api/v1/instances', { id: 'b-native', service: 'svc-b', address: '127.0.0.1', port: 9001, ttlMs: 60_000 }, bearer(tokenB))).status).toBe(200);
  expect((await api(acl.server, 'PUT', '/v1/agent/service/register', { ID: 'b-consul', Name: 'svc-b', Address: '127.0.0.1', Port: 9002, Check: { TTL: '60s', CheckID: 'b-consul-ttl' } }, { 'x-consul-token': tokenB })).status).toBe(200);
  expect((await api(acl.server, 'POST', '/eureka/apps/SVC-B', eurekaReg('SVC-B', 'b-eureka'), basic(tokenB))).status).toBe(204);
});
afterAll(() => acl.close());

const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`beacon:${secret}`).toString('base64')}`, accept: 'application/json' });
const consul = (secret: string) => ({ 'x-consul-token': secret });
function eurekaReg(app: string, id: string) {
  return { instance: { instanceId: id, hostName: id, app, ipAddr: '10.66.6.6', port: { $: 6666 }, dataCenterInfo: { name: 'MyOwn' } } };
}

type Row = [attack: string, method: string, path: string, body: unknown, headers: Record<string, string>];

describe("the attacker's table (ACLs on)", () => {
  it('a read without a token sees nothing of service B on any interface', async () => {
    const native = await api(acl.server, 'GET', '/api/v1/services');
    expect(JSON.stringify(native.body)).not.toContain('svc-b');
    const catalog = await api(acl.server, 'GET', '/v1/catalog/services');
    expect([catalog.status, catalog.body]).toEqual([200, {}]);
    expect((await api(acl.server, 'GET', '/v1/health/service/svc-b')).body).toEqual([]);
    expect((await api(acl.server, 'GET', '/eureka/apps', undefined, { accept: 'application/json' })).status).toBe(401);
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([`127.0.0.1:${acl.server.dnsAddress!.udp.port}`]);
    expect(await r.resolveSrv('svc-b.service.consul').catch((e: NodeJS.ErrnoException) => e.code)).toBe('ENOTFOUND');
  });

  it("a token for A is refused every write to B on the native, Consul and Eureka APIs (403), and B is untouched", async () => {
    const rows: Row[] = [
      ['native register', 'PUT', '/api/v1/instances', { service: 'svc-b', id: 'b-2', address: '10.66.6.6', port: 1 }, bearer(tokenA)],
      ['native overwrite', 'PUT', '/api/v1/instances', { service: 'svc-b', id: 'b-native', address: '10.66.6.6', port: 1 }, bearer(tokenA)],
      ['native deregister', 'DELETE', '/api/v1/instances/b-native', undefined, bearer(tokenA)],
      ['native heartbeat', 'PUT', '/api/v1/instances/b-native/heartbeat', undefined, bearer(tokenA)],
      ['native drain', 'PUT', '/api/v1/instances/b-native/drain', {}, bearer(tokenA)],
      ['consul register', 'PUT', '/v1/agent/service/register', { ID: 'b-3', Name: 'svc-b', Address: '10.66.6.6', Port: 1 }, consul(tokenA)],
      ['consul overwrite', 'PUT', '/v1/catalog/register', { Node: acl.server.deps.info.node, Address: '127.0.0.1', SkipNodeUpdate: true, Service: { ID: 'b-consul', Service: 'svc-b', Address: '10.66.6.6', Port: 1 } }, consul(tokenA)],
      ['consul deregister', 'PUT', '/v1/agent/service/deregister/b-consul', undefined, consul(tokenA)],
      ['consul heartbeat', 'PUT', '/v1/agent/check/pass/b-consul-ttl', undefined, consul(tokenA)],
      ['consul drain', 'PUT', '/v1/agent/service/maintenance/b-consul?enable=true', undefined, consul(tokenA)],
      ['eureka register', 'POST', '/eureka/apps/SVC-B', eurekaReg('SVC-B', 'b-4'), basic(tokenA)],
      ['eureka overwrite', 'POST', '/eureka/apps/SVC-B', eurekaReg('SVC-B', 'b-eureka'), basic(tokenA)],
      ['eureka deregister', 'DELETE', '/eureka/apps/SVC-B/b-eureka', undefined, basic(tokenA)],
      ['eureka heartbeat', 'PUT', '/eureka/apps/SVC-B/b-eureka', undefined, basic(tokenA)],
      ['eureka drain', 'PUT', '/eureka/apps/SVC-B/b-eureka/status?value=OUT_OF_SERVICE', undefined, basic(tokenA)],
    ];
    for (const [attack, method, path, body, headers] of rows) {
      const r = await api(acl.server, method, path, body, headers);
      expect([attack, r.status]).toEqual([attack, 403]);
    }
    const m = bearer(acl.management);
    for (const id of ['b-native', 'b-consul', 'b-eureka']) {
      const i = (await api(acl.server, 'GET', `/api/v1/instances/${id}`, undefined, m)).body;
      expect([id, i.service, i.address, i.maintenance ?? null, i.draining ?? null]).toEqual([id, 'svc-b', id === 'b-eureka' ? '10.66.6.6' : '127.0.0.1', null, null]);
    }
  });

  it("a registration for A cannot take over B's instance id on any API (409)", async () => {
    const rows: Row[] = [
      ['native', 'PUT', '/api/v1/instances', { service: 'svc-a', id: 'b-native', address: '127.0.0.1', port: 1 }, bearer(tokenA)],
      ['consul', 'PUT', '/v1/agent/service/register', { ID: 'b-consul', Name: 'svc-a', Address: '127.0.0.1', Port: 1 }, consul(tokenA)],
      ['eureka', 'POST', '/eureka/apps/SVC-A', eurekaReg('SVC-A', 'b-eureka'), basic(tokenA)],
    ];
    for (const [api_, method, path, body, headers] of rows) {
      const r = await api(acl.server, method, path, body, headers);
      expect([api_, r.status]).toEqual([api_, 409]);
    }
  });

  it('concurrent bootstraps have one winner', async () => {
    const fresh = await devServer({ acl: true });
    try {
      const paths = ['/v1/acl/bootstrap', '/api/v1/acl/bootstrap', '/v1/acl/bootstrap', '/api/v1/acl/bootstrap', '/v1/acl/bootstrap', '/api/v1/acl/bootstrap'];
      const answers = await Promise.all(paths.map((p) => api(fresh, 'PUT', p)));
      expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
      expect(answers.filter((a) => a.status !== 200).map((a) => a.status)).toEqual([403, 403, 403, 403, 403]);
    } finally {
      await fresh.close();
    }
  });

  it('a 20 MB body is refused with 413 on every API, even with a management token', async () => {
    const huge = 'x'.repeat(20 * 1024 * 1024);
    const m = acl.management;
    for (const [method, path, headers] of [
      ['PUT', '/api/v1/instances', { ...bearer(m), 'content-type': 'application/json' }],
      ['PUT', '/v1/kv/big', consul(m)],
      ['PUT', '/v1/agent/service/register', consul(m)],
      ['POST', '/eureka/apps/BIG', { ...basic(m), 'content-type': 'application/json' }],
    ] as const) {
      const r = await api(acl.server, method, path, huge, headers);
      expect([path, r.status]).toEqual([path, 413]);
    }
  });
});
