import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Consul from 'consul';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

/**
 * Consul's ACL API. The `consul` npm client (2.x) has only `acl.bootstrap` and `acl.replication`
 * of the current API (its `acl.legacy` calls are the pre-1.4 API Consul removed); the token,
 * policy and role endpoints are exercised with plain HTTP in Consul's shapes.
 */
let server: RunningServer;
let consul: Consul;
let management: string;
beforeAll(async () => {
  server = await devServer({ acl: true });
  consul = new Consul({ host: '127.0.0.1', port: server.httpAddress.port });
});
afterAll(() => server.close());

const as = (secret: string) => ({ 'x-consul-token': secret });

describe("Consul's ACL API", () => {
  it('bootstraps once through the consul client; the second call is refused as Consul refuses it', async () => {
    const token = (await consul.acl.bootstrap()) as Record<string, unknown>;
    expect(token).toMatchObject({ Description: 'Bootstrap Token (Global Management)', Policies: [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }], Local: false });
    expect(token.SecretID).toMatch(/^[0-9a-f-]{36}$/);
    management = token.SecretID as string;
    const again = await consul.acl.bootstrap().catch((e: unknown) => e as { statusCode?: number; message: string });
    expect(again).toMatchObject({ statusCode: 403, message: expect.stringMatching(/ACL bootstrap no longer allowed/) });
    expect((await api(server, 'GET', '/v1/acl/replication')).headers.get('x-consul-default-acl-policy')).toBe('deny');
    // One datacenter: nothing replicates, as a Consul primary answers.
    expect(await consul.acl.replication()).toMatchObject({ Enabled: false, Running: false, SourceDatacenter: '' });
  });

  it('creates, reads, lists, updates and deletes policies, roles and tokens in Consul’s shapes', async () => {
    const m = as(management);
    const policy = await api(server, 'PUT', '/v1/acl/policy', { Name: 'web-write', Description: 'web', Rules: 'service "web" { policy = "write" }' }, m);
    expect(policy.status).toBe(200);
    expect(policy.body).toMatchObject({ ID: expect.any(String), Name: 'web-write', Rules: 'service "web" { policy = "write" }' });
    expect((await api(server, 'GET', '/v1/acl/policy/name/web-write', undefined, m)).body).toMatchObject({ ID: policy.body.ID });
    const list = await api(server, 'GET', '/v1/acl/policies', undefined, m);
    expect(list.body.map((p: { Name: string }) => p.Name).sort()).toEqual(['global-management', 'web-write']);
    expect(list.body[0].Rules).toBeUndefined();
    expect(Number(list.headers.get('x-consul-index'))).toBeGreaterThan(0);

    const role = await api(server, 'PUT', '/v1/acl/role', { Name: 'web', Policies: [{ Name: 'web-write' }] }, m);
    expect(role.body).toMatchObject({ Name: 'web', Policies: [{ ID: policy.body.ID, Name: 'web-write' }] });

    const token = await api(server, 'PUT', '/v1/acl/token', { Description: 'web deployer', Roles: [{ ID: role.body.ID }] }, m);
    expect(token.body).toMatchObject({ AccessorID: expect.any(String), SecretID: expect.any(String), Description: 'web deployer', Roles: [{ ID: role.body.ID, Name: 'web' }] });
    const read = await api(server, 'GET', `/v1/acl/token/${token.body.AccessorID}`, undefined, m);
    expect(read.body).toMatchObject({ AccessorID: token.body.AccessorID, Description: 'web deployer' });
    expect(read.body.SecretID).toBeUndefined();
    const self = await api(server, 'GET', '/v1/acl/token/self', undefined, as(token.body.SecretID));
    expect(self.body).toMatchObject({ AccessorID: token.body.AccessorID, SecretID: token.body.SecretID });

    const updated = await api(server, 'PUT', `/v1/acl/token/${token.body.AccessorID}`, { Description: 'renamed', Policies: [{ ID: policy.body.ID }] }, m);
    expect(updated.body).toMatchObject({ Description: 'renamed', Policies: [{ Name: 'web-write' }] });
    expect(updated.body.Roles).toBeUndefined();
    const byPolicy = await api(server, 'GET', `/v1/acl/tokens?policy=${policy.body.ID}`, undefined, m);
    expect(byPolicy.body.map((t: { AccessorID: string }) => t.AccessorID)).toEqual([token.body.AccessorID]);

    expect((await api(server, 'DELETE', `/v1/acl/token/${token.body.AccessorID}`, undefined, m)).body).toBe(true);
    expect((await api(server, 'GET', '/v1/acl/token/self', undefined, as(token.body.SecretID))).body).toBe('ACL not found');
    expect((await api(server, 'DELETE', `/v1/acl/role/${role.body.ID}`, undefined, m)).body).toBe(true);
    expect((await api(server, 'DELETE', `/v1/acl/policy/${policy.body.ID}`, undefined, m)).body).toBe(true);
    expect((await api(server, 'GET', `/v1/acl/policy/${policy.body.ID}`, undefined, m)).status).toBe(404);
  });

  it('needs acl:read to read and acl:write to write', async () => {
    const m = as(management);
    const reader = await api(server, 'PUT', '/v1/acl/policy', { Name: 'acl-reader', Rules: 'acl = "read"' }, m);
    const t = await api(server, 'PUT', '/v1/acl/token', { Policies: [{ ID: reader.body.ID }] }, m);
    const r = as(t.body.SecretID);
    expect((await api(server, 'GET', '/v1/acl/tokens', undefined, r)).status).toBe(200);
    const denied = await api(server, 'PUT', '/v1/acl/policy', { Name: 'x' }, r);
    expect(denied.status).toBe(403);
    expect(denied.body).toMatch(/acl:write/);
    expect((await api(server, 'GET', '/v1/acl/tokens')).status).toBe(403);
    // A token cannot delete itself, nor anyone the anonymous token.
    expect((await api(server, 'DELETE', '/v1/acl/token/00000000-0000-0000-0000-000000000002', undefined, m)).status).toBe(403);
  });

  it('answers 400 with the line for bad rules, and 401 "ACL support disabled" without --acl', async () => {
    const bad = await api(server, 'PUT', '/v1/acl/policy', { Name: 'bad', Rules: 'service "x" {\n  policy = "rwx"\n}' }, as(management));
    expect(bad.status).toBe(400);
    expect(bad.body).toMatch(/rules line 2: policy must be one of read, write, list, deny/);
    const plain = await devServer();
    try {
      const r = await api(plain, 'PUT', '/v1/acl/bootstrap');
      expect(r.status).toBe(401);
      expect(r.body).toBe('ACL support disabled');
    } finally {
      await plain.close();
    }
  });
});
