import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server.js';
import { ACTIVE_CHECK_KINDS } from '../src/health/types.js';
import { COUNTED_QTYPES, COUNTED_RCODES, DNS_PROTOS } from '../src/dns/counts.js';
import { CHECK_STATUSES, VERSION } from '@beacon/core';
import { api, devServer, until } from './helpers.js';

const run = promisify(execFile);

/** Runs `promtool check metrics` on an exposition; undefined when promtool is not installed. */
async function promtoolCheck(exposition: string): Promise<{ code: number; output: string } | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(undefined) : reject(err)));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(exposition);
  });
}

/** `# TYPE` of every metric family in an exposition. */
function families(exposition: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** The metrics table of docs/operations.md: each metric, its type, and the label sets it names. */
function documentedMetrics(): { name: string; type: string; series: string[] }[] {
  const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Metrics'));
  const rows = [...section.matchAll(/^\| `(beacon_[a-z0-9_]+)(?:\{(\w+)=([^}]+)\})?` \| (\w+) \|/gm)];
  return rows.map(([, name, label, values, type]) => ({
    name: name!,
    type: type!,
    // `{kind="sse"\|"blocking"}` names one series per value, each of which must be exported.
    series: label ? values!.split('\\|').map((v) => `${name}{${label}=${v}}`) : [],
  }));
}

let server: RunningServer;
beforeAll(async () => {
  server = await devServer({ dns: { addr: '127.0.0.1:0' }, xds: { addr: '127.0.0.1:0' } });
});
afterAll(async () => {
  await server.close();
});

describe('/metrics', () => {
  it('exports every metric and label set docs/operations.md names, before any traffic', async () => {
    const text = (await api<string>(server, 'GET', '/metrics')).body;
    const types = families(text);
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(12);
    for (const m of documented) {
      expect({ name: m.name, type: types.get(m.name) }).toEqual({ name: m.name, type: m.type });
      for (const s of m.series) expect(text).toMatch(new RegExp(`^${s.replace(/[{}|"]/g, '\\$&')} 0$`, 'm'));
    }
  });

  it('starts every DNS and check-run label set at 0 and says which build runs', async () => {
    const text = (await api<string>(server, 'GET', '/metrics')).body;
    for (const proto of DNS_PROTOS)
      for (const type of COUNTED_QTYPES)
        for (const rcode of COUNTED_RCODES) expect(text).toContain(`beacon_dns_queries_total{type="${type}",rcode="${rcode}",proto="${proto}"} 0\n`);
    for (const kind of ACTIVE_CHECK_KINDS) {
      for (const result of CHECK_STATUSES) expect(text).toContain(`beacon_check_runs_total{kind="${kind}",result="${result}"} 0\n`);
      expect(text).toContain(`beacon_check_duration_seconds_count{kind="${kind}"} 0\n`);
    }
    expect(text).toContain('beacon_dns_request_duration_seconds_count 0\n');
    expect(text).toContain(`beacon_build_info{version="${VERSION}",node_version="${process.version}",commit="unknown"} 1\n`);
    expect(Number(/^beacon_store_size_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('counts DNS answers by type, rcode and transport, check runs by kind and result, and store commits', async () => {
    const dnsPort = String(server.dnsAddress!.udp.port);
    await api(server, 'PUT', '/api/v1/instances', { service: 'dnsm', address: '127.0.0.3', port: 80 });
    const before = (await api<string>(server, 'GET', '/metrics')).body;
    const count = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    await run('dig', ['+short', '+tries=1', '+time=2', '-p', dnsPort, '@127.0.0.1', 'dnsm.service.consul']);
    await run('dig', ['+tcp', '+tries=1', '+time=2', '-p', dnsPort, '@127.0.0.1', 'nothing.service.consul', 'SRV']);

    // A TCP check against a listener of the test's own, run at once on registration.
    const target = net.createServer((c) => c.end());
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    try {
      const port = (target.address() as AddressInfo).port;
      const reg = await api(server, 'PUT', '/api/v1/instances', {
        service: 'checked',
        address: '127.0.0.1',
        port,
        checks: [{ id: 'checked-tcp', kind: 'tcp', target: `127.0.0.1:${port}`, intervalMs: 60_000 }],
      });
      expect(reg.status).toBe(200);
      const after = await until(
        async () => (await api<string>(server, 'GET', '/metrics')).body,
        (t) => count(t, 'beacon_check_runs_total{kind="tcp",result="passing"}') === 1,
      );
      expect(count(after, 'beacon_check_runs_total{kind="tcp",result="passing"}')).toBe(1);
      expect(count(after, 'beacon_check_duration_seconds_count{kind="tcp"}')).toBe(1);
      expect(count(after, 'beacon_dns_queries_total{type="A",rcode="NOERROR",proto="udp"}') - count(before, 'beacon_dns_queries_total{type="A",rcode="NOERROR",proto="udp"}')).toBe(1);
      expect(count(after, 'beacon_dns_queries_total{type="SRV",rcode="NXDOMAIN",proto="tcp"}')).toBe(1);
      // Timed so far: the server's first answer only (then one in LATENCY_SAMPLE).
      expect(count(after, 'beacon_dns_request_duration_seconds_count')).toBe(1);
      // The registration and the check's status write, at least, went through the store.
      expect(count(after, 'beacon_store_commit_duration_seconds_count') - count(before, 'beacon_store_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      const check = await promtoolCheck(after);
      if (check) expect(check).toEqual({ code: 0, output: '' });
    } finally {
      await new Promise((r) => target.close(r));
    }
  });

  it('passes promtool check metrics after registrations, a blocking read, a watch, a Consul query and DNS', async (ctx) => {
    const reg = await api(server, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.1', port: 8080, ttlMs: 30_000 });
    expect(reg.status).toBe(200);
    await api(server, 'PUT', '/api/v1/instances', { service: 'web', address: '127.0.0.2', port: 8080 });
    expect((await api(server, 'DELETE', `/api/v1/instances/${reg.body.instance.id}`)).status).toBe(200);
    const index = Number((await api(server, 'GET', '/api/v1/services/web/instances')).headers.get('x-beacon-index'));
    expect((await api(server, 'GET', `/api/v1/services/web/instances?index=${index}&wait=20ms`)).status).toBe(200);
    expect((await api(server, 'GET', `/v1/catalog/services?index=${index}&wait=20ms`)).status).toBe(200);
    expect((await api(server, 'GET', '/api/v1/nothing')).status).toBe(404);
    const dig = await run('dig', ['+short', '+tries=1', '+time=2', '-p', String(server.dnsAddress!.udp.port), '@127.0.0.1', 'web.service.consul']);
    expect(dig.stdout.trim()).toBe('127.0.0.2');

    // Scraped while a watch stream is open, so the gauge is seen above 0.
    const ac = new AbortController();
    const watch = await fetch(`${server.httpUrl}/api/v1/watch?service=web`, { signal: ac.signal });
    await watch.body!.getReader().read();
    const text = (await api<string>(server, 'GET', '/metrics')).body;
    ac.abort();
    expect(text).toMatch(/^beacon_watchers\{kind="sse"\} 1$/m);
    expect(text).toMatch(/^beacon_deregistrations_total\{cause="api"\} 1$/m);
    expect(text).toMatch(/^beacon_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/services\/:name\/instances",status_code="200"\} 2$/m);
    // Each route's own hook counts it; requests no route matched are counted by the not-found handlers.
    expect(text).toMatch(/^beacon_http_request_duration_seconds_count\{method="PUT",route="\/api\/v1\/instances",status_code="200"\} [1-9]\d*$/m);
    expect(text).toMatch(/^beacon_http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} 1$/m);
    expect(text).toMatch(/^beacon_http_request_duration_seconds_bucket\{method="GET",route="unmatched",status_code="404",le="\+Inf"\} 1$/m);

    const check = await promtoolCheck(text);
    if (!check) {
      console.warn('skipped: promtool is not on PATH (Debian package prometheus)');
      return ctx.skip();
    }
    expect(check).toEqual({ code: 0, output: '' });
  });
});
