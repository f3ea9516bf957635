/**
 * DNS with ACLs on: answers are what the anonymous token may read (DNS carries no token), in the
 * server process and in UDP worker processes alike, and follow the anonymous token's policy
 * within moments of a change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Resolver } from 'node:dns/promises';
import { systemClock, systemRandom } from '@beacon/core';
import type { DnsServer, createDnsServer as CreateDnsServer, parseDnsConfig as ParseDnsConfig } from '../src/dns/index.js';
import { AnonymousDnsCatalog } from '../src/dns/anonymous.js';
import { aclServer, api, until, type AclTestServer } from './helpers.js';

const ANONYMOUS = '00000000-0000-0000-0000-000000000002';
// Worker processes run the built server (they fork dist/dns/worker-main.js).
const dist = fileURLToPath(new URL('../dist/dns/index.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/dns/worker-main.js', import.meta.url)));
if (!built) console.log('packages/server/dist is not built (npm run build): the DNS worker part of the ACL test is skipped');

let acl: AclTestServer;
let resolver: Resolver;
let workers: { dns: DnsServer; filtered: AnonymousDnsCatalog; resolver: Resolver } | undefined;

beforeAll(async () => {
  acl = await aclServer({ dns: { addr: '127.0.0.1:0' } });
  const m = { 'x-consul-token': acl.management };
  for (const [name, port] of [['web', 8080], ['billing', 9090]] as const)
    expect((await api(acl.server, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Address: '127.0.0.1', Port: port }, m)).status).toBe(200);
  await setAnonymous('service "web" { policy = "read" }');
  resolver = at(acl.server.dnsAddress!.udp.port);
  if (built) {
    const m = (await import(dist)) as { createDnsServer: typeof CreateDnsServer; parseDnsConfig: typeof ParseDnsConfig };
    const filtered = new AnonymousDnsCatalog(acl.server.catalog, acl.server.deps.acl);
    const dns = m.createDnsServer({ catalog: filtered, config: m.parseDnsConfig({ addr: '127.0.0.1:0', udpProcesses: 2 }), random: systemRandom, clock: systemClock });
    workers = { dns, filtered, resolver: at((await dns.listen()).udp.port) };
  }
});
afterAll(async () => {
  await workers?.dns.close();
  workers?.filtered.close();
  await acl.close();
});

function at(port: number): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 2 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

async function setAnonymous(rules: string): Promise<void> {
  const m = { 'x-consul-token': acl.management };
  const p = await api(acl.server, 'PUT', '/v1/acl/policy', { Name: `anon-${Date.now()}`, Rules: rules }, m);
  expect(p.status).toBe(200);
  expect((await api(acl.server, 'PUT', `/v1/acl/token/${ANONYMOUS}`, { Description: 'Anonymous Token', Policies: [{ ID: p.body.ID }] }, m)).status).toBe(200);
}

const srv = (name: string, via = resolver) => via.resolveSrv(name).then((r) => r.map((x) => x.port), (e: NodeJS.ErrnoException) => e.code);

describe('DNS with ACLs on', () => {
  it('answers a service anonymous may read and NXDOMAIN for one it may not', async () => {
    expect(await srv('web.service.consul')).toEqual([8080]);
    expect(await srv('billing.service.consul')).toBe('ENOTFOUND');
  });

  it.skipIf(!built)('filters in UDP worker processes too, which hold only what anonymous may read', async () => {
    // Several queries spread over both processes reading the socket.
    for (let k = 0; k < 6; k++) {
      expect(await srv('web.service.consul', workers!.resolver)).toEqual([8080]);
      expect(await srv('billing.service.consul', workers!.resolver)).toBe('ENOTFOUND');
    }
  });

  it('follows a change of the anonymous policy (cached answers included)', async () => {
    const via = [resolver, ...(workers ? [workers.resolver, workers.resolver] : [])];
    const all = (name: string) => Promise.all(via.map((r) => srv(name, r)));
    await setAnonymous('service_prefix "" { policy = "read" }');
    expect(await until(() => all('billing.service.consul'), (v) => v.every((x) => Array.isArray(x)), 3_000)).toEqual(via.map(() => [9090]));
    await setAnonymous('service "billing" { policy = "read" }');
    expect(await until(() => all('web.service.consul'), (v) => v.every((x) => x === 'ENOTFOUND'), 3_000)).toEqual(via.map(() => 'ENOTFOUND'));
  });
});
