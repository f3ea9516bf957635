import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server.js';
import { api, devServer } from './helpers.js';

let server: RunningServer;
beforeAll(async () => {
  server = await devServer();
});
afterAll(async () => {
  await server.close();
});

describe('GET /api/v1/members (embedded mode)', () => {
  it('lists the one server, which owns every instance and active check, seen now', async () => {
    await api(server, 'PUT', '/api/v1/instances', { id: 'm-1', service: 'm', address: '127.0.0.1', port: 1, checks: [{ kind: 'tcp', target: '127.0.0.1:1', intervalMs: 60_000 }] });
    await api(server, 'PUT', '/api/v1/instances', { id: 'm-2', service: 'm', address: '127.0.0.1', port: 2, checks: [{ kind: 'ttl', ttlMs: 60_000 }] });
    const before = Date.now();
    const r = await api(server, 'GET', '/api/v1/members');
    expect(r.status).toBe(200);
    expect(r.body.members).toEqual([
      expect.objectContaining({ node: 'test-node', httpUrl: server.httpUrl, self: true, leader: true, joinedIndex: 0, instances: 2, checks: 1 }),
    ]);
    expect(r.body.members[0].lastSeenAt).toBeGreaterThanOrEqual(before - 1000);
  });

  it("answers Consul's /v1/agent/members with the same server in Serf's shape", async () => {
    const r = await api(server, 'GET', '/v1/agent/members');
    expect(r.body).toEqual([expect.objectContaining({ Name: 'test-node', Addr: '127.0.0.1', Port: 8301, Status: 1, Tags: expect.objectContaining({ role: 'consul', dc: 'dc1' }) })]);
  });
});
