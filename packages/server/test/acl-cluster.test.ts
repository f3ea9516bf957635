/**
 * ACLs in clustered mode: two Beacon servers over one real etcd share the tokens, bootstrap
 * once between them, and a token deleted on one stops working on the other within a second.
 * Skipped, with the reason printed, where no `etcd` binary is on PATH.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '@beacon/client';
import { startServer, type RunningServer } from '../src/server.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { api, bearer, until } from './helpers.js';

const skipReason = etcdUnavailableReason();
if (skipReason) console.warn(`skipping the clustered ACL tests: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('ACLs over etcd', () => {
  let etcd: EtcdCluster;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    etcd = await startEtcdCluster({ members: 1 });
    for (let i = 0; i < 2; i++)
      servers.push(await startServer({ storeUrl: `etcd://${etcd.endpoints.join(',')}/acl-test`, httpAddr: '127.0.0.1:0', nodeName: `beacon-${i + 1}`, acl: true, dns: false }));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    await etcd?.stop();
  }, 30_000);

  it('bootstraps once across servers, shares tokens, and a deletion on one ends a stream on the other within 1 s', async () => {
    const [a, b] = servers as [RunningServer, RunningServer];
    // Concurrent bootstraps on both servers: one winner.
    const tries = await Promise.all([a, b, a, b].map((s) => api(s, 'PUT', '/api/v1/acl/bootstrap')));
    expect(tries.map((t) => t.status).sort()).toEqual([200, 403, 403, 403]);
    const management = tries.find((t) => t.status === 200)!.body.secretId as string;

    // Made on A, known to B.
    const m = bearer(management);
    const policy = await api(a, 'POST', '/api/v1/acl/policies', { name: 'web-read', rules: 'service "web" { policy = "read" }' }, m);
    const token = await api(a, 'POST', '/api/v1/acl/tokens', { policies: [{ id: policy.body.id }] }, m);
    const onB = await until(() => api(b, 'GET', '/api/v1/services/web/instances', undefined, bearer(token.body.secretId)), (r) => r.status === 200);
    expect(onB.status).toBe(200);

    const ac = new AbortController();
    const res = await fetch(`${a.httpUrl}/api/v1/watch?service=web`, { headers: { accept: 'text/event-stream', ...bearer(token.body.secretId) }, signal: ac.signal });
    expect(res.status).toBe(200);
    const events: SseEvent[] = [];
    const ended = (async () => {
      for await (const e of parseSse(res.body!)) events.push(e);
    })();
    try {
      await until(async () => events.length, (n) => n > 0);
      const started = Date.now();
      expect((await api(b, 'DELETE', `/api/v1/acl/tokens/${token.body.accessorId}`, undefined, m)).status).toBe(200);
      await ended;
      expect(Date.now() - started).toBeLessThan(1000);
      expect((await api(a, 'GET', '/api/v1/services/web/instances', undefined, bearer(token.body.secretId))).body.error.message).toBe('ACL not found');
    } finally {
      ac.abort();
    }
  });
});
