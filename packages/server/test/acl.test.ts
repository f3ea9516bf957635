import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclServer, api, bearer, type AclTestServer } from './helpers.js';

let s: AclTestServer;
beforeAll(async () => {
  s = await aclServer();
});
afterAll(() => s.close());

describe('a server with --acl', () => {
  it('answers liveness, readiness, status and the OpenAPI document without a token', async () => {
    for (const path of ['/healthz', '/readyz', '/api/v1/status', '/api/v1/openapi.json']) expect((await api(s.server, 'GET', path)).status, path).toBe(200);
    // An unknown token does not shut an open endpoint.
    expect((await api(s.server, 'GET', '/healthz', undefined, bearer('00000000-0000-4000-8000-00000000dead'))).status).toBe(200);
    expect((await api(s.server, 'GET', '/api/v1/status')).body).toMatchObject({ insecureOpen: false, warnings: [] });
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
