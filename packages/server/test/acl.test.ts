import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { createClient } from '@beacon/client';
import { aclServer, api, bearer, devServer, openStream, until, type AclTestServer } from './helpers.js';

let s: AclTestServer;
beforeAll(async () => {
  s = await aclServer();
});
afterAll(() => s.close());

describe('a server with --acl', () => {
  it('answers liveness, readiness, status and the OpenAPI document without a token', async () => {
    for (const path of ['/healthz', '/readyz', '/api/v1/status', '/api/v1/openapi.json']) expect((await api(s.server, 'GET', path)).status, path).toBe(200);
    // The web UI's files (its pages then call the API with the user's token).
    const ui = await fetch(`${s.server.httpUrl}/`, { redirect: 'manual' });
    expect([ui.status, ui.headers.get('location')]).toEqual([302, '/ui/']);
    // An unknown token does not shut an open endpoint.
    expect((await api(s.server, 'GET', '/healthz', undefined, bearer('00000000-0000-4000-8000-00000000dead'))).status).toBe(200);
    expect((await api(s.server, 'GET', '/api/v1/status')).body).toMatchObject({ insecureOpen: false, acl: true, warnings: [] });
  });

  it('answers an unknown path 404 whatever the token, and closes a route that states no rule to all but management', async () => {
    expect((await api(s.server, 'GET', '/api/v1/nope')).status).toBe(404);
    const svc = await s.token('service_prefix "" { policy = "write" }');
    const snap = await api(s.server, 'GET', '/api/v1/snapshot', undefined, bearer(svc.secret));
    expect(snap.status).toBe(403);
    expect(snap.body.error.message).toBe('Permission denied: this endpoint needs a management token');
    expect((await api(s.server, 'GET', '/api/v1/snapshot', undefined, bearer(s.management))).status).toBe(200);
  });

  it('refuses an unknown token with Consul’s "ACL not found"', async () => {
    const r = await api(s.server, 'GET', '/api/v1/services', undefined, { 'x-consul-token': '00000000-0000-4000-8000-00000000dead' });
    expect(r.status).toBe(403);
    expect(r.body).toEqual({ error: { code: 'forbidden', message: 'ACL not found' } });
  });

  it('lets management do anything, in every place a token may be presented', async () => {
    const m = s.management;
    expect((await api(s.server, 'GET', '/api/v1/services', undefined, bearer(m))).status).toBe(200);
    expect((await api(s.server, 'GET', '/api/v1/services', undefined, { 'x-consul-token': m })).status).toBe(200);
    expect((await api(s.server, 'GET', `/api/v1/services?token=${m}`)).status).toBe(200);
    expect((await api(s.server, 'GET', '/metrics', undefined, bearer(m))).status).toBe(200);
  });

  it('needs operator:read for /metrics', async () => {
    expect((await api(s.server, 'GET', '/metrics')).status).toBe(403);
    const op = await s.token('operator = "read"');
    expect((await api(s.server, 'GET', '/metrics', undefined, bearer(op.secret))).status).toBe(200);
    const svc = await s.token('service_prefix "" { policy = "write" }');
    expect((await api(s.server, 'GET', '/metrics', undefined, bearer(svc.secret))).body).toMatchObject({ error: { code: 'forbidden', message: expect.stringMatching(/operator:read/) } });
  });

  it('bootstraps only once', async () => {
    await expect(s.server.deps.aclAdmin!.bootstrap()).rejects.toMatchObject({ code: 'forbidden', message: expect.stringMatching(/no longer allowed/) });
  });
});

describe('the native API with --acl', () => {
  const reg = (service: string, id: string) => ({ id, service, address: '127.0.0.1', port: 9000, ttlMs: 60_000, checks: [{ id: `${id}-ttl`, kind: 'ttl', ttlMs: 60_000 }] });
  let a: string;
  let b: string;
  beforeAll(async () => {
    a = (await s.token('service "svc-a" { policy = "write" }')).secret;
    b = (await s.token('service "svc-b" { policy = "write" }')).secret;
    expect((await api(s.server, 'PUT', '/api/v1/instances', reg('svc-a', 'a-1'), bearer(a))).status).toBe(200);
    expect((await api(s.server, 'PUT', '/api/v1/instances', reg('svc-b', 'b-1'), bearer(b))).status).toBe(200);
  });

  it("refuses a token for service A every write on service B (403), and a takeover of A's instance id (409)", async () => {
    expect((await api(s.server, 'PUT', '/api/v1/instances', reg('svc-b', 'b-2'), bearer(a))).status).toBe(403);
    for (const [method, path, body] of [
      ['DELETE', '/api/v1/instances/b-1', undefined],
      ['PUT', '/api/v1/instances/b-1/heartbeat', undefined],
      ['PUT', '/api/v1/instances/b-1/maintenance', { reason: 'x' }],
      ['PUT', '/api/v1/instances/b-1/drain', {}],
      ['PUT', '/api/v1/checks/b-1-ttl/fail', {}],
    ] as const) {
      const r = await api(s.server, method, path, body, bearer(a));
      expect({ path, status: r.status, code: r.body.error?.code }).toEqual({ path, status: 403, code: 'forbidden' });
    }
    const takeover = await api(s.server, 'PUT', '/api/v1/instances', reg('svc-b', 'a-1'), bearer(b));
    expect(takeover.status).toBe(409);
    expect(takeover.body.error.message).toMatch(/registered for service "svc-a"/);
    expect((await api(s.server, 'GET', '/api/v1/instances/a-1', undefined, bearer(s.management))).body.service).toBe('svc-a');
    // Its own writes go through.
    expect((await api(s.server, 'PUT', '/api/v1/instances/a-1/heartbeat', undefined, bearer(a))).status).toBe(200);
    expect((await api(s.server, 'PUT', '/api/v1/checks/a-1-ttl/pass', {}, bearer(a))).status).toBe(200);
  });

  it('filters lists and the history to what the token may read, and refuses reads of the rest', async () => {
    const names = (await api(s.server, 'GET', '/api/v1/services', undefined, bearer(a))).body.map((x: { name: string }) => x.name);
    expect(names).toEqual(['svc-a']);
    expect((await api(s.server, 'GET', '/api/v1/services', undefined, bearer(s.management))).body.map((x: { name: string }) => x.name)).toEqual(['svc-a', 'svc-b']);
    expect((await api(s.server, 'GET', '/api/v1/services/svc-b/instances', undefined, bearer(a))).status).toBe(403);
    expect((await api(s.server, 'GET', '/api/v1/instances/b-1', undefined, bearer(a))).status).toBe(403);
    const events = (await api(s.server, 'GET', '/api/v1/events', undefined, bearer(a))).body.events as { service: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.service))).toEqual(new Set(['svc-a']));
    // No token: the anonymous token, with no policy yet, sees nothing.
    expect((await api(s.server, 'GET', '/api/v1/services')).body).toEqual([]);
    expect((await api(s.server, 'GET', '/api/v1/snapshot', undefined, bearer(a))).status).toBe(403);
    expect((await api(s.server, 'GET', '/api/v1/members', undefined, bearer(a))).status).toBe(403);
    expect((await api(s.server, 'GET', '/api/v1/services/svc-b/diff?from=0', undefined, bearer(a))).status).toBe(403);
    expect((await api(s.server, 'GET', '/api/v1/services/svc-a/diff?from=0', undefined, bearer(a))).status).toBe(200);
  });

  it('streams only readable services, and ends the stream within 1 s of the token being deleted', async () => {
    const t = await s.token('service "svc-a" { policy = "read" }');
    const ac = new AbortController();
    const stream = await openStream(`${s.server.httpUrl}/api/v1/watch`, bearer(t.secret), ac.signal);
    try {
      await until(async () => stream.events.length, (n) => n >= 1);
      expect(stream.events[0]!.event).toBe('reset');
      expect(JSON.parse(stream.events[0]!.data).instances.map((i: { id: string }) => i.id)).toEqual(['a-1']);
      await api(s.server, 'PUT', '/api/v1/instances/b-1/maintenance', { reason: 'b changes' }, bearer(b));
      await api(s.server, 'PUT', '/api/v1/instances/a-1/maintenance', { reason: 'a changes' }, bearer(a));
      await until(async () => stream.events.length, (n) => n >= 2);
      expect(stream.events.slice(1).map((e) => JSON.parse(e.data).service)).toEqual(['svc-a']);
      const started = Date.now();
      await s.server.deps.aclAdmin!.deleteToken(t.accessorId);
      await stream.ended;
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      ac.abort();
    }
  });

  it('answers a parked blocking query 403 within 1 s of its token being deleted', async () => {
    const t = await s.token('service "svc-a" { policy = "read" }');
    const first = await api(s.server, 'GET', '/api/v1/services/svc-a/instances', undefined, bearer(t.secret));
    const parked = api(s.server, 'GET', `/api/v1/services/svc-a/instances?index=${first.body.index}&wait=60s`, undefined, bearer(t.secret));
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await s.server.deps.aclAdmin!.deleteToken(t.accessorId);
    const r = await parked;
    expect(Date.now() - started).toBeLessThan(1000);
    expect(r.status).toBe(403);
    expect(r.body.error.message).toBe('ACL not found');
  });

  it('judges each request of a keep-alive connection by the ACL state of its moment: a policy edit, then the token deletion, apply to the next request', async () => {
    const admin = s.server.deps.aclAdmin!;
    const policy = await admin.createPolicy({ name: 'keep-alive-reader', rules: 'service "svc-a" { policy = "read" }' });
    const token = await admin.createToken({ description: 'keep-alive', policies: [{ id: policy.id }] });
    const conn = new Pool(s.server.httpUrl, { connections: 1, pipelining: 1 });
    let connects = 0;
    conn.on('connect', () => connects++);
    const read = async (service: string, headers = bearer(token.secretId!)) => {
      const r = await conn.request({ path: `/api/v1/services/${service}/instances`, method: 'GET', headers });
      return { status: r.statusCode, body: (await r.body.json()) as { error?: { message: string } } };
    };
    try {
      expect((await read('svc-a')).status).toBe(200);
      expect((await read('svc-b')).status).toBe(403);
      // Another token on the same connection is judged as itself, in either header.
      expect((await read('svc-b', bearer(s.management))).status).toBe(200);
      expect((await read('svc-b', { ...bearer(token.secretId!), 'x-consul-token': s.management })).status).toBe(200);
      expect((await read('svc-b', bearer('00000000-0000-4000-8000-00000000dead'))).status).toBe(403);
      expect((await read('svc-b')).status).toBe(403);
      await admin.updatePolicy(policy.id, { name: 'keep-alive-reader', rules: 'service "svc-b" { policy = "read" }' });
      expect((await read('svc-a')).status).toBe(403);
      expect((await read('svc-b')).status).toBe(200);
      await admin.deleteToken(token.accessorId);
      expect(await read('svc-b')).toEqual({ status: 403, body: { error: { code: 'forbidden', message: 'ACL not found' } } });
      expect(connects).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('serves what the anonymous token is given to requests without a token', async () => {
    const admin = s.server.deps.aclAdmin!;
    const p = await admin.createPolicy({ name: 'public-read', rules: 'service_prefix "svc-a" { policy = "read" }' });
    await admin.updateToken('00000000-0000-0000-0000-000000000002', { policies: [{ id: p.id }] });
    try {
      expect((await api(s.server, 'GET', '/api/v1/services')).body.map((x: { name: string }) => x.name)).toEqual(['svc-a']);
      expect((await api(s.server, 'PUT', '/api/v1/instances', reg('svc-a', 'a-9'))).status).toBe(403);
    } finally {
      await admin.updateToken('00000000-0000-0000-0000-000000000002', { policies: [] });
    }
  });
});

describe('the native ACL API', () => {
  it('bootstraps once over HTTP, then manages policies, roles and tokens; a token reads itself', async () => {
    const fresh = await devServer({ acl: true });
    try {
      const boot = await api(fresh, 'PUT', '/api/v1/acl/bootstrap');
      expect(boot.status).toBe(200);
      expect(boot.body).toMatchObject({ secretId: expect.any(String), policies: [{ name: 'global-management' }] });
      expect((await api(fresh, 'PUT', '/api/v1/acl/bootstrap')).status).toBe(403);
      const m = bearer(boot.body.secretId);
      const policy = await api(fresh, 'POST', '/api/v1/acl/policies', { name: 'web', rules: 'service "web" { policy = "write" }' }, m);
      expect(policy.body).toMatchObject({ name: 'web', rules: 'service "web" { policy = "write" }', datacenters: [] });
      const role = await api(fresh, 'POST', '/api/v1/acl/roles', { name: 'web-role', policies: [{ name: 'web' }] }, m);
      expect(role.body.policies).toEqual([{ id: policy.body.id, name: 'web' }]);
      const token = await api(fresh, 'POST', '/api/v1/acl/tokens', { description: 'deployer', roles: [{ id: role.body.id }] }, m);
      expect(token.status).toBe(200);
      const self = await api(fresh, 'GET', '/api/v1/acl/tokens/self', undefined, bearer(token.body.secretId));
      expect(self.body).toMatchObject({ accessorId: token.body.accessorId, roles: [{ name: 'web-role' }] });
      expect((await api(fresh, 'GET', '/api/v1/acl/tokens', undefined, bearer(token.body.secretId))).status).toBe(403);
      expect((await api(fresh, 'GET', '/api/v1/acl/policies/name/web', undefined, m)).body.id).toBe(policy.body.id);
      expect((await api(fresh, 'POST', '/api/v1/acl/policies', { name: 'web' }, m)).status).toBe(409);
      expect((await api(fresh, 'POST', '/api/v1/acl/policies', { name: 'x', rules: 'nope' }, m)).body.error).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/line 1/) });
      expect((await api(fresh, 'DELETE', `/api/v1/acl/tokens/${token.body.accessorId}`, undefined, m)).body).toEqual({ deleted: true });
      expect((await api(fresh, 'GET', '/api/v1/acl/tokens', undefined, m)).body.map((t: { description: string }) => t.description).sort()).toEqual(['Anonymous Token', 'Bootstrap Token (Global Management)']);
    } finally {
      await fresh.close();
    }
    const plain = await devServer();
    try {
      expect((await api(plain, 'GET', '/api/v1/acl/tokens')).body.error).toEqual({ code: 'unauthorized', message: 'ACL support disabled' });
    } finally {
      await plain.close();
    }
  });
});

describe('GET /api/v1/acl/authorize', () => {
  it("answers whether the request's own token may do something, with the routes' decision", async () => {
    const web = await s.token('service_prefix "web" { policy = "read" }\nservice "web-admin" { policy = "write" }\nkey_prefix "app/" { policy = "write" }');
    const ask = (q: string, headers?: Record<string, string>) => api(s.server, 'GET', `/api/v1/acl/authorize?${q}`, undefined, headers);
    const checks: [string, boolean][] = [
      ['resource=service&name=web&access=read', true],
      ['resource=service&name=web&access=write', false],
      ['resource=service&name=web-admin&access=write', true],
      ['resource=service&name=api&access=read', false],
      ['resource=key&name=app%2Fconfig&access=write', true],
      ['resource=operator&access=read', false],
    ];
    for (const [q, allowed] of checks) {
      expect((await ask(q, bearer(web.secret))).body, q).toEqual({ allowed });
      expect((await ask(q, bearer(s.management))).body, q).toEqual({ allowed: true });
      // No token asks about the anonymous one, which may do nothing here.
      expect((await ask(q)).body, q).toEqual({ allowed: false });
    }
    expect((await ask(checks[0]![0], bearer('00000000-0000-4000-8000-00000000dead'))).body.error.message).toBe('ACL not found');
    // Bad input is a 400: an unknown resource or access, a named kind without a name, a global one with one.
    for (const bad of ['resource=nope&name=x&access=read', 'resource=service&name=x&access=admin', 'resource=service&access=read', 'resource=acl&name=x&access=read']) {
      expect((await ask(bad, bearer(web.secret))).body.error.code, bad).toBe('invalid_argument');
    }
    const plain = await devServer();
    try {
      expect((await api(plain, 'GET', '/api/v1/acl/authorize?resource=service&name=web&access=write')).body.error).toEqual({ code: 'unauthorized', message: 'ACL support disabled' });
    } finally {
      await plain.close();
    }
  });
});

describe('the SDK with a token', () => {
  it('registers and discovers with its token (registration, heartbeats and the watch stream all carry it)', async () => {
    const t = await s.token('service "sdk-svc" { policy = "write" }');
    const client = createClient({ servers: [s.server.httpUrl], token: t.secret });
    const stranger = createClient({ servers: [s.server.httpUrl] });
    try {
      const reg = await client.register({ service: 'sdk-svc', address: '127.0.0.1', port: 7000 }, { ttlMs: 10_000, drainGraceMs: 0 });
      const view = client.discover('sdk-svc');
      await view.ready();
      expect(view.instances().map((i) => i.port)).toEqual([7000]);
      await expect(stranger.register({ service: 'sdk-svc', address: '127.0.0.1', port: 7001 })).rejects.toMatchObject({ code: 'forbidden' });
      await reg.close();
    } finally {
      await client.close();
      await stranger.close();
    }
  });
});

describe('snapshots with --acl', () => {
  it('carry the ACL state; restoring one without it brings back the built-ins and the tokens of the snapshot only', async () => {
    const plain = await devServer();
    const fresh = await aclServer();
    try {
      const snap = await fetch(`${plain.httpUrl}/api/v1/snapshot`);
      const body = Buffer.from(await snap.arrayBuffer());
      const m = bearer(fresh.management);
      // Taken with ACLs on, a snapshot holds the tokens.
      const own = Buffer.from(await (await fetch(`${fresh.server.httpUrl}/api/v1/snapshot`, { headers: m })).arrayBuffer());
      expect(own.includes(Buffer.from('/beacon/acl/tokens/'))).toBe(true);
      const r = await fetch(`${fresh.server.httpUrl}/api/v1/snapshot`, { method: 'PUT', body, headers: { ...m, 'content-type': 'application/octet-stream' } });
      expect(r.status).toBe(200);
      expect((await api(fresh.server, 'GET', '/api/v1/acl/tokens/self')).body).toMatchObject({ accessorId: '00000000-0000-0000-0000-000000000002', secretId: 'anonymous' });
      expect((await api(fresh.server, 'GET', '/api/v1/services', undefined, m)).body.error.message).toBe('ACL not found');
      // The snapshot had not been bootstrapped: the store can be again.
      expect((await api(fresh.server, 'PUT', '/api/v1/acl/bootstrap')).status).toBe(200);
    } finally {
      await fresh.close();
      await plain.close();
    }
  });
});
