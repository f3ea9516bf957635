/**
 * The orchestrator probes and the staleness they report: /healthz, /readyz, /api/v1/status and
 * Consul's X-Consul-KnownLeader / X-Consul-LastContact, on a dev server (embedded store closed
 * under it) and on a server over a real etcd that becomes unreachable through a cut proxy
 * (skipped, with the reason printed, where no `etcd` binary is on PATH).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@beacon/core';
import { startServer, type RunningServer } from '../src/server.js';
import { readiness, STORE_PROBE_MS } from '../src/http/readiness.js';
import { etcdUnavailableReason, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { api, devServer, until } from './helpers.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

describe('readiness checks', () => {
  it('names the store unreachable when it does not answer within the probe deadline', async () => {
    const clock = new ManualClock(0);
    const pending = readiness({
      store: { currentRevision: () => new Promise<number>(() => undefined) },
      catalog: { stale: true },
      clock,
      listeners: () => [{ name: 'http', listening: true }, { name: 'dns', listening: false }],
    });
    clock.advance(STORE_PROBE_MS);
    expect(await pending).toEqual({
      status: 'not_ready',
      checks: [
        { name: 'store', ok: false, reason: `unreachable: no answer within ${STORE_PROBE_MS}ms` },
        { name: 'catalog', ok: false, reason: 'stale: its store watch could not be confirmed current' },
        { name: 'listeners', ok: false, reason: 'not listening: dns' },
      ],
    });
  });
});

describe('health endpoints on the embedded store', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await devServer({ dns: { addr: '127.0.0.1:0' } });
  });
  afterAll(() => server?.close());

  it('is alive and ready while healthy, and Consul sees a known leader', async () => {
    const live = await api(server, 'GET', '/healthz');
    expect(live).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await api(server, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(ready.body.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ['store', true],
      ['catalog', true],
      ['listeners', true],
    ]);
    expect(ready.body.checks[2].reason).toBe('listening: http, dns');
    const text = await api(server, 'GET', '/readyz?verbose');
    expect(text.body).toBe('[+]store ok\n[+]catalog ok\n[+]listeners ok\nreadyz check passed\n');
    const consul = await api(server, 'GET', '/v1/catalog/services');
    expect(consul.headers.get('x-consul-knownleader')).toBe('true');
    expect(consul.headers.get('x-consul-lastcontact')).toBe('0');
  });

  it('turns 503 with the reason once the store is closed, while /healthz stays 200', async () => {
    await server.store.close();
    const ready = await api(server, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('not_ready');
    expect(ready.body.checks[0]).toEqual({ name: 'store', ok: false, reason: 'unreachable: the store is closed' });
    expect((await api(server, 'GET', '/readyz?verbose')).body).toContain('[-]store failed: unreachable: the store is closed\n');
    expect((await api(server, 'GET', '/healthz')).status).toBe(200);
  });
});

const skipReason = etcdUnavailableReason();
if (skipReason) console.warn(`skipping the etcd readiness test: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('health endpoints over etcd', () => {
  let etcd: EtcdCluster;
  let proxy: TcpProxy;
  let server: RunningServer;

  beforeAll(async () => {
    etcd = await startEtcdCluster({ members: 1 });
    proxy = await startTcpProxy(etcd.endpoints[0]!);
    server = await startServer({ storeUrl: `etcd://${proxy.address}/ready-${randomUUID().slice(0, 8)}`, httpAddr: '127.0.0.1:0', nodeName: 'ready' });
  }, 60_000);

  afterAll(async () => {
    proxy?.restore();
    await server?.close();
    await proxy?.close();
    await etcd?.stop();
  }, 30_000);

  it('is not ready while etcd is unreachable, says why, and is ready again once it is back', async () => {
    expect((await api(server, 'GET', '/readyz')).status).toBe(200);
    proxy.cut();
    const down = await until(() => api(server, 'GET', '/readyz'), (r) => r.status === 503 && r.body.checks[1].ok === false, 10_000);
    expect(down.status).toBe(503);
    expect(down.body.checks[0]).toMatchObject({ name: 'store', ok: false });
    expect(down.body.checks[0].reason).toMatch(/^unreachable: /);
    expect(down.body.checks[1]).toMatchObject({ name: 'catalog', ok: false });
    const status = await api(server, 'GET', '/api/v1/status');
    expect(status.body.stale).toBe(true);
    expect(status.body.staleForMs).toBeGreaterThanOrEqual(0);
    const consul = await api(server, 'GET', '/v1/catalog/services?stale');
    expect(consul.headers.get('x-consul-knownleader')).toBe('false');
    expect(Number(consul.headers.get('x-consul-lastcontact'))).toBeGreaterThanOrEqual(0);
    expect((await api(server, 'GET', '/healthz')).status).toBe(200);
    // The CLI says so too, and exits 1 so that scripts can test it like /readyz.
    const cli = await beaconStatus(server.httpUrl);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/^ready:\s+NO$/m);

    proxy.restore();
    const up = await until(() => api(server, 'GET', '/readyz'), (r) => r.status === 200, 15_000);
    expect(up.status).toBe(200);
    expect((await api(server, 'GET', '/api/v1/status')).body).toMatchObject({ stale: false });
    expect((await api(server, 'GET', '/api/v1/status')).body.staleForMs).toBeUndefined();
    expect((await beaconStatus(server.httpUrl)).code).toBe(0);
  }, 40_000);
});

/** The built `beacon status` (the end-to-end tests run the CLI from packages/cli/dist). */
function beaconStatus(url: string): Promise<{ code: number; stdout: string }> {
  const bin = fileURLToPath(new URL('../../cli/bin/beacon.js', import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'status', '--server', url], { timeout: 10_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout });
    });
  });
}
