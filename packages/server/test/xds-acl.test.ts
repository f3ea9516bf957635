import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANONYMOUS_ACCESSOR_ID } from '../src/acl/builtins.js';
import type { XdsClientInfo } from '../src/xds/index.js';
import { decodeMessage } from '../src/xds/protos.js';
import { aclServer, api, bearer, until, type AclTestServer } from './helpers.js';
import { adsStream, backend, nacks, register, registerXds, who, xdsStub, type Backend } from './xds-helpers.js';

// xDS under ACLs, over real sockets: the real @grpc/grpc-js-xds client (which cannot present a
// token, so it gets the anonymous token's view) and hand-made ADS streams carrying a token in
// gRPC metadata, as Consul's xDS clients send it.

let s: AclTestServer;
const dir = mkdtempSync(join(tmpdir(), 'beacon-xds-acl-'));
const auditLog = join(dir, 'audit.log');
let port: number;
const backends: Backend[] = [];

const mgmt = () => bearer(s.management);

beforeAll(async () => {
  registerXds();
  s = await aclServer({ xds: { addr: '127.0.0.1:0' }, initialCheckStatus: 'passing', auditLog });
  port = s.server.xdsAddress!.port;
  const admin = s.server.deps.aclAdmin!;
  const p = await admin.createPolicy({ name: 'anonymous-web', rules: 'service "web" { policy = "read" }' });
  await admin.updateToken(ANONYMOUS_ACCESSOR_ID, { policies: [{ id: p.id }] });
  for (const name of ['web', 'db']) {
    const b = await backend(name);
    backends.push(b);
    await register(s.server, { id: name, service: name, address: '127.0.0.1', port: b.port }, mgmt());
  }
});

afterAll(async () => {
  if (s) expect(await nacks(s.server, mgmt()), 'NACKs received').toBe(0);
  for (const b of backends) b.stop();
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function clients(): Promise<XdsClientInfo[]> {
  return (await api<{ clients: XdsClientInfo[] }>(s.server, 'GET', '/api/v1/xds/clients', undefined, mgmt())).body.clients;
}

describe('xDS with ACLs', () => {
  it('a grpc-js-xds channel (no token: anonymous) reaches web; db fails as unavailable at once, with no NACK', async () => {
    const web = xdsStub('web', port, 'anon-web');
    const db = xdsStub('db', port, 'anon-db');
    try {
      expect(await who(web)).toBe('web');
      const t0 = performance.now();
      await expect(who(db, 5_000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      console.log(`xds:///db (not readable) failed ${(performance.now() - t0).toFixed(0)} ms after the call started (loaded machine)`);
      expect(backends.find((b) => b.name === 'db')!.calls).toBe(0);
      expect(await nacks(s.server, mgmt())).toBe(0);
      // A name that does not exist gets the same answer: the client cannot tell the two apart.
      const raw = adsStream(port);
      raw.ask('route', ['db', 'no-such-service']);
      await until(async () => raw.names('route'), (n) => n !== undefined);
      const [dbRoute, noneRoute] = raw.responses[0]!.resources.map((a) => decodeMessage('envoy.config.route.v3.RouteConfiguration', a.value) as { virtual_hosts: unknown[] });
      expect(dbRoute!.virtual_hosts).toEqual([{ name: 'db', domains: ['*'] }]);
      expect(noneRoute!.virtual_hosts).toEqual([{ name: 'no-such-service', domains: ['*'] }]);
      raw.close();
      const seen = await clients();
      expect(seen.map((c) => [c.node.id, c.accessor]).sort()).toEqual([
        ['anon-db', ANONYMOUS_ACCESSOR_ID],
        ['anon-web', ANONYMOUS_ACCESSOR_ID],
      ]);
    } finally {
      web.close();
      db.close();
    }
  });

  it('a token in x-consul-token or Authorization: Bearer sees what it may read; versions follow what each stream sees', async () => {
    const t = await s.token('service_prefix "" { policy = "read" }');
    const anon = adsStream(port);
    const consul = adsStream(port, { 'x-consul-token': t.secret });
    const auth = adsStream(port, { authorization: `Bearer ${t.secret}` });
    try {
      for (const st of [anon, consul, auth]) st.ask('cluster', ['web', 'db']);
      await until(async () => [anon, consul, auth].every((x) => x.names('cluster') !== undefined), (ok) => ok);
      expect(anon.names('cluster')).toEqual(['web']);
      expect(consul.names('cluster')).toEqual(['db', 'web']);
      expect(auth.names('cluster')).toEqual(['db', 'web']);
      expect(consul.responses[0]!.version_info).toBe(auth.responses[0]!.version_info);
      expect(anon.responses[0]!.version_info).not.toBe(consul.responses[0]!.version_info);
      const accessors = (await clients()).map((c) => c.accessor);
      expect(accessors.filter((a) => a === t.accessorId)).toHaveLength(2);
      expect(JSON.stringify(await clients())).not.toContain(t.secret);
    } finally {
      for (const st of [anon, consul, auth]) st.close();
    }
  });

  it('the Envoy profile lists only readable services (wildcard clusters, ingress virtual hosts)', async () => {
    const envoy = adsStream(port, {}, { id: 'edge', metadata: { fields: { 'beacon.profile': { stringValue: 'envoy' } } } });
    try {
      envoy.ask('cluster', []);
      envoy.ask('route', ['beacon-ingress']);
      await until(async () => envoy.names('cluster') !== undefined && envoy.names('route') !== undefined, (ok) => ok);
      expect((await clients()).find((c) => c.node.id === 'edge')?.profile).toBe('envoy');
      expect(envoy.names('cluster')).toEqual(['web']);
      const route = envoy.responses.find((r) => r.type_url.endsWith('RouteConfiguration'))!;
      const hosts = (decodeMessage('envoy.config.route.v3.RouteConfiguration', route.resources[0]!.value) as { virtual_hosts: { name: string }[] }).virtual_hosts;
      expect(hosts.map((h) => h.name)).toEqual(['web']);
    } finally {
      envoy.close();
    }
  });

  it('an unknown secret is refused; deleting the token ends its stream within 1 s', async () => {
    const unknown = adsStream(port, { 'x-consul-token': 'no-such-secret' });
    unknown.ask('cluster', ['web']);
    expect(await unknown.ended).toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: 'ACL not found' });
    unknown.close();
    const refused = await until(
      async () => readFileSync(auditLog, 'utf8').split('\n').filter((l) => l.includes('"interface":"xds"')),
      (l) => l.length > 0,
    );
    expect(JSON.parse(refused[0]!)).toMatchObject({ accessor: 'unresolved', remote: '127.0.0.1', interface: 'xds', action: 'StreamAggregatedResources', target: '', result: 401 });
    expect(refused[0]).not.toContain('no-such-secret');

    const t = await s.token('service "db" { policy = "read" }');
    const st = adsStream(port, { 'x-consul-token': t.secret });
    try {
      st.ask('cluster', ['web', 'db']);
      await until(async () => st.names('cluster'), (n) => n !== undefined);
      expect(st.names('cluster')).toEqual(['db']);
      const started = Date.now();
      await s.server.deps.aclAdmin!.deleteToken(t.accessorId);
      expect(await st.ended).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      expect(Date.now() - started).toBeLessThan(1000);
      await until(clients, (c) => c.every((x) => x.accessor !== t.accessorId));
    } finally {
      st.close();
    }
  });

  it('a token whose rights change is sent the new view on the same stream', async () => {
    const admin = s.server.deps.aclAdmin!;
    const p = await admin.createPolicy({ name: 'changing', rules: 'service "web" { policy = "read" }' });
    const t = await admin.createToken({ policies: [{ id: p.id }] });
    const st = adsStream(port, { authorization: `Bearer ${t.secretId!}` });
    try {
      st.ask('cluster', ['web', 'db']);
      await until(async () => st.names('cluster'), (n) => n !== undefined);
      expect(st.names('cluster')).toEqual(['web']);
      await admin.updatePolicy(p.id, { name: 'changing', rules: 'service_prefix "" { policy = "read" }' });
      expect(await until(async () => st.names('cluster'), (n) => n?.length === 2)).toEqual(['db', 'web']);
    } finally {
      st.close();
    }
  });


  it('a grpc-js-xds channel follows the rights of the anonymous token: denied, granted, revoked, granted again', async () => {
    const admin = s.server.deps.aclAdmin!;
    const web = await admin.createPolicy({ name: 'anon-web-again', rules: 'service "web" { policy = "read" }' });
    const both = await admin.createPolicy({ name: 'anon-web-db', rules: 'service_prefix "" { policy = "read" }' });
    const set = (id: string) => admin.updateToken(ANONYMOUS_ACCESSOR_ID, { policies: [{ id }] });
    const db = xdsStub('db', port, 'anon-db-follow');
    const fails = () => who(db, 2_000).then(() => false, (e: { code?: number }) => e.code === grpc.status.UNAVAILABLE);
    const works = () => who(db, 2_000).then((n) => n === 'db', () => false);
    try {
      expect(await fails()).toBe(true);
      await set(both.id);
      expect(await until(works, (ok) => ok)).toBe(true);
      await set(web.id);
      expect(await until(fails, (ok) => ok)).toBe(true);
      await set(both.id);
      expect(await until(works, (ok) => ok)).toBe(true);
      expect(await nacks(s.server, mgmt())).toBe(0);
    } finally {
      db.close();
      await set(web.id);
    }
  });
});
