/**
 * ACLs across datacenters: dc1 runs with ACLs and follows dc2. Its DNS answers other DCs' names
 * and prepared queries with what the anonymous token may read (a denied name is NXDOMAIN, as
 * Consul answers), and its HTTP reads of dc2 (`?dc=`, failover, prepared queries, forwarded KV)
 * check the caller's token here, whatever the federation token may read there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import type { RunningServer } from '../src/server.js';
import { aclServer, api, bearer, devServer, until, type AclTestServer } from './helpers.js';

const ANONYMOUS = '00000000-0000-0000-0000-000000000002';
const hasDig = spawnSync('sh', ['-c', 'command -v dig']).status === 0;
if (!hasDig) console.log('dig is not on PATH (Debian: dnsutils): the DNS part of the cross-DC ACL test is skipped');

function dig(port: number, name: string, type = 'A'): Promise<{ status: string; answers: string[] }> {
  return new Promise((resolve, reject) =>
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', name, type], { timeout: 10_000 }, (err, stdout) => {
      if (err) return reject(err);
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? '?';
      const answers = stdout
        .split('\n\n')
        .find((s) => s.startsWith(';; ANSWER SECTION:'))
        ?.split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/).slice(4).join(' ')) ?? [];
      resolve({ status, answers });
    }),
  );
}

function instance(service: string, address: string, port: number) {
  return { service, id: `${service}-dc2`, address, port };
}

describe('ACLs across datacenters', () => {
  let dc2: RunningServer;
  let dc1: AclTestServer;
  let dnsPort = 0;
  const m = () => ({ 'x-consul-token': dc1.management });

  beforeAll(async () => {
    dc2 = await devServer({ datacenter: 'dc2' });
    dc1 = await aclServer({
      datacenter: 'dc1',
      dns: { addr: '127.0.0.1:0' },
      federation: { remotes: [{ name: 'dc2', servers: [dc2.httpUrl] }], pingIntervalMs: 200, timeoutMs: 1_000 },
    });
    dnsPort = dc1.server.dnsAddress!.udp.port;
    for (const [s, a, p] of [['web', '10.0.2.1', 80], ['db', '10.0.2.5', 5432]] as const) expect((await api(dc2, 'PUT', '/api/v1/instances', instance(s, a, p))).status).toBe(200);
    expect((await api(dc2, 'PUT', '/v1/kv/config/color', 'blue')).status).toBe(200);
    expect((await api(dc2, 'PUT', '/v1/kv/secret/pw', 'hunter2')).status).toBe(200);
    const p = await api(dc1.server, 'PUT', '/v1/acl/policy', { Name: 'anon-dns', Rules: 'service "web" { policy = "read" }' }, m());
    expect((await api(dc1.server, 'PUT', `/v1/acl/token/${ANONYMOUS}`, { Description: 'Anonymous Token', Policies: [{ ID: p.body.ID }] }, m())).status).toBe(200);
    for (const s of ['web', 'db']) {
      const q = await api(dc1.server, 'POST', '/v1/query', { Name: `${s}-anywhere`, Service: { Service: s, Failover: { Datacenters: ['dc2'] } } }, m());
      expect(q.status).toBe(200);
    }
    await until(() => api(dc1.server, 'GET', '/api/v1/services/db/instances?dc=dc2', undefined, bearer(dc1.management)), (r) => r.body.instances?.length === 1);
  });

  afterAll(async () => {
    await dc1?.close();
    await dc2?.close();
  });

  it.skipIf(!hasDig)("DNS answers another DC's service and a prepared query only when anonymous may read the service", async () => {
    expect(await dig(dnsPort, 'web.service.dc2.consul')).toEqual({ status: 'NOERROR', answers: ['10.0.2.1'] });
    expect(await dig(dnsPort, '_web._tcp.service.dc2.consul', 'SRV')).toEqual({ status: 'NOERROR', answers: ['1 1 80 0a000201.addr.dc2.consul.'] });
    expect(await dig(dnsPort, 'web-anywhere.query.consul')).toEqual({ status: 'NOERROR', answers: ['10.0.2.1'] });
    // db exists in dc2 and its query fails over there, but anonymous may not read db: absent.
    for (const [name, type] of [['db.service.dc2.consul', 'A'], ['_db._tcp.service.dc2.consul', 'SRV'], ['db-anywhere.query.consul', 'A'], ['db-anywhere.query.consul', 'SRV']])
      expect(await dig(dnsPort, name, type)).toEqual({ status: 'NXDOMAIN', answers: [] });
  });

  it.skipIf(!hasDig)("follows a change of the anonymous token's rights", async () => {
    const p = await api(dc1.server, 'PUT', '/v1/acl/policy', { Name: 'anon-dns-db', Rules: 'service "db" { policy = "read" }' }, m());
    expect((await api(dc1.server, 'PUT', `/v1/acl/token/${ANONYMOUS}`, { Description: 'Anonymous Token', Policies: [{ ID: p.body.ID }] }, m())).status).toBe(200);
    expect(await until(() => dig(dnsPort, 'db-anywhere.query.consul'), (r) => r.status === 'NOERROR', 3_000)).toEqual({ status: 'NOERROR', answers: ['10.0.2.5'] });
    expect(await dig(dnsPort, 'db.service.dc2.consul')).toEqual({ status: 'NOERROR', answers: ['10.0.2.5'] });
    expect((await dig(dnsPort, 'web.service.dc2.consul')).status).toBe('NXDOMAIN');
  });

  it("HTTP reads of another DC check the caller's token here: native, Consul health, prepared queries (local and forwarded), forwarded KV", async () => {
    const web = bearer((await dc1.token('service "web" { policy = "read" } key_prefix "" { policy = "list" } key_prefix "secret/" { policy = "deny" }')).secret);
    // Native reads: by name, with ?dc= and with failover.
    expect((await api(dc1.server, 'GET', '/api/v1/services/web/instances?dc=dc2', undefined, web)).body.instances.map((i: { id: string }) => i.id)).toEqual(['web-dc2']);
    for (const path of ['/api/v1/services/db/instances?dc=dc2', '/api/v1/services/db/instances?failover=dc2']) expect((await api(dc1.server, 'GET', path, undefined, web)).status).toBe(403);
    expect((await api(dc1.server, 'GET', '/api/v1/services?dc=dc2', undefined, web)).body.map((s: { name: string }) => s.name)).toEqual(['web']);
    const health = await api(dc1.server, 'GET', '/v1/health/service/db?dc=dc2', undefined, web);
    expect([health.status, health.body, health.headers.get('x-consul-results-filtered-by-acls')]).toEqual([200, [], 'true']);

    // A query of this DC that fails over to dc2: the caller must be able to read its service.
    const ids = (r: { body: { Nodes: { Service: { ID: string } }[] } }) => r.body.Nodes.map((n) => n.Service.ID);
    const okWeb = await api(dc1.server, 'GET', '/v1/query/web-anywhere/execute', undefined, web);
    expect([okWeb.status, okWeb.body.Datacenter, ids(okWeb)]).toEqual([200, 'dc2', ['web-dc2']]);
    // (Anonymous may read db, not web, since the test above.)
    for (const [query, headers] of [['db-anywhere', web], ['web-anywhere', {}]] as const) {
      const denied = await api(dc1.server, 'GET', `/v1/query/${query}/execute`, undefined, headers);
      expect([denied.status, ids(denied), denied.headers.get('x-consul-results-filtered-by-acls')]).toEqual([200, [], 'true']);
    }
    expect(ids(await api(dc1.server, 'GET', '/v1/query/db-anywhere/execute', undefined, m()))).toEqual(['db-dc2']);
    // Creating queries stays management-only.
    expect((await api(dc1.server, 'POST', '/v1/query', { Name: 'x', Service: { Service: 'web' } }, web)).status).toBe(403);

    // A query stored in dc2, run there through dc1 (forwarded with the federation token): filtered here by the caller's.
    expect((await api(dc2, 'POST', '/v1/query', { Name: 'db-there', Service: { Service: 'db' } })).status).toBe(200);
    const fwd = await api(dc1.server, 'GET', '/v1/query/db-there/execute?dc=dc2', undefined, web);
    expect([fwd.status, fwd.body.Datacenter, ids(fwd), fwd.headers.get('x-consul-results-filtered-by-acls')]).toEqual([200, 'dc2', [], 'true']);
    expect(ids(await api(dc1.server, 'GET', '/v1/query/db-there/execute?dc=dc2', undefined, m()))).toEqual(['db-dc2']);

    // KV forwarded to dc2: the caller's key rules apply before the request leaves and to what comes back.
    expect((await api(dc1.server, 'GET', '/v1/kv/config/color?dc=dc2&raw', undefined, web)).body).toBe('blue');
    expect((await api(dc1.server, 'GET', '/v1/kv/secret/pw?dc=dc2&raw', undefined, web)).status).toBe(403);
    expect((await api(dc1.server, 'GET', '/v1/kv/secret/pw?dc=dc2&raw')).status).toBe(403);
    expect((await api(dc1.server, 'PUT', '/v1/kv/config/color?dc=dc2', 'red', web)).status).toBe(403);
    expect((await api(dc1.server, 'DELETE', '/v1/kv/?recurse&dc=dc2', undefined, bearer((await dc1.token('key_prefix "" { policy = "write" } key "secret/pw" { policy = "read" }')).secret))).status).toBe(403);
    const tree = await api(dc1.server, 'GET', '/v1/kv/?keys&dc=dc2', undefined, web);
    expect([tree.body, tree.headers.get('x-consul-results-filtered-by-acls')]).toEqual([['config/color'], 'true']);
    const pairs = await api(dc1.server, 'GET', '/v1/kv/?recurse&dc=dc2', undefined, web);
    expect(pairs.body.map((p: { Key: string }) => p.Key)).toEqual(['config/color']);
    expect((await api(dc2, 'GET', '/v1/kv/secret/pw?raw')).body).toBe('hunter2');
  });
});
