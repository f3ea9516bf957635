import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, spawnServer } from './helpers.js';

/**
 * `beacon agent` as a real process against a real `beacon server` process, with the services'
 * health endpoints as real HTTP servers on 127.0.0.1. Short leases (2 s) and intervals (200 ms)
 * keep each test within a few seconds.
 */

let server: Awaited<ReturnType<typeof spawnServer>>;
beforeAll(async () => {
  server = await spawnServer(['--dev']);
});
afterAll(async () => {
  await server.stop('SIGTERM');
});

interface AgentProc {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function configDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-agent-e2e-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function startAgent(dir: string, extra: string[] = []): AgentProc {
  const proc = spawn(process.execPath, [BIN, 'agent', '--config-dir', dir, '--server', server.url, '--lease-ttl', '2s', '--drain-grace', '500ms', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  return { proc, output: () => out, exited };
}

/** A service's health endpoint whose answer the test flips. */
async function backend(): Promise<{ port: number; setHealthy(v: boolean): void }> {
  let healthy = true;
  const s: Server = createServer((_req, res) => {
    res.statusCode = healthy ? 200 : 503;
    res.end(healthy ? 'ok' : 'unavailable');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return { port: (s.address() as AddressInfo).port, setHealthy: (v) => (healthy = v) };
}

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`);
  return { status: res.status, body: await res.json() };
}

const passing = async (service: string): Promise<string[]> => (await get(`/api/v1/services/${service}/instances?passing`)).body.instances?.map((i: { id: string }) => i.id) ?? [];

/** Polls until `ok` holds (or 10 s pass), then returns the last value for the assertion to judge. */
async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('beacon agent', () => {
  it('registers a definition, runs its HTTP check next to the service, and follows the endpoint', async () => {
    const b = await backend();
    const dir = configDir();
    writeFileSync(
      join(dir, 'web.json'),
      JSON.stringify({ service: 'agent-web', address: '127.0.0.1', port: b.port, tags: ['v1'], checks: [{ kind: 'http', url: `http://127.0.0.1:${b.port}/health`, interval: '200ms' }] }),
    );
    const agent = startAgent(dir);
    const id = `agent-web-127.0.0.1-${b.port}`;
    expect(await until(() => passing('agent-web'), (l) => l.length === 1)).toEqual([id]);
    const inst = (await get(`/api/v1/instances/${id}`)).body;
    expect(inst).toMatchObject({ source: 'agent', ttlMs: 2000, tags: ['v1'] });
    expect(inst.checks[0]).toMatchObject({ kind: 'http', status: 'passing' });
    expect(inst.checks[0].output).toMatch(/200/);

    b.setHealthy(false);
    expect(await until(() => passing('agent-web'), (l) => l.length === 0)).toEqual([]);
    const failed = (await get(`/api/v1/instances/${id}`)).body;
    expect(failed.checks[0]).toMatchObject({ status: 'critical' });
    expect(failed.checks[0].output).toMatch(/503/);

    b.setHealthy(true);
    expect(await until(() => passing('agent-web'), (l) => l.length === 1)).toEqual([id]);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('applies edited, added and removed files while running (Beacon YAML and Consul JSON)', async () => {
    const b = await backend();
    const dir = configDir();
    const yaml = (tag: string) => `service: agent-cache\naddress: 127.0.0.1\nport: ${b.port}\ntags: [${tag}]\nchecks:\n  - kind: tcp\n    target: 127.0.0.1:${b.port}\n    interval: 200ms\n`;
    writeFileSync(join(dir, 'cache.yaml'), yaml('old'));
    const agent = startAgent(dir);
    const cacheId = `agent-cache-127.0.0.1-${b.port}`;
    expect(await until(() => passing('agent-cache'), (l) => l.length === 1)).toEqual([cacheId]);

    writeFileSync(join(dir, 'cache.yaml'), yaml('new'));
    const consul = { service: { Name: 'agent-api', ID: 'agent-api-1', Port: b.port, Check: { HTTP: `http://127.0.0.1:${b.port}/`, Interval: '200ms' } } };
    writeFileSync(join(dir, 'api.json'), JSON.stringify(consul));
    const tags = await until(
      async () => (await get(`/api/v1/instances/${cacheId}`)).body.tags,
      (t) => t?.[0] === 'new',
    );
    expect(tags).toEqual(['new']);
    expect(await until(() => passing('agent-api'), (l) => l.length === 1)).toEqual(['agent-api-1']);
    const api = (await get('/api/v1/instances/agent-api-1')).body;
    expect(api).toMatchObject({ source: 'agent', address: '127.0.0.1', port: b.port });
    expect(api.checks[0]).toMatchObject({ id: 'service:agent-api-1', name: "Service 'agent-api' check", kind: 'http', status: 'passing' });

    // A broken file is reported by name and changes nothing; removing a file deregisters its service.
    writeFileSync(join(dir, 'broken.json'), '{"service": "agent-broken",');
    unlinkSync(join(dir, 'cache.yaml'));
    expect((await until(() => get(`/api/v1/instances/${cacheId}`), (r) => r.status === 404)).status).toBe(404);
    expect(await passing('agent-api')).toEqual(['agent-api-1']);
    expect(agent.output()).toMatch(/broken\.json: invalid JSON/);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('reloads on SIGHUP', async () => {
    const b = await backend();
    const dir = configDir();
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ service: 'agent-hup', port: b.port, meta: { version: '1' } }));
    const agent = startAgent(dir, ['--no-watch']);
    const id = `agent-hup-127.0.0.1-${b.port}`;
    expect((await until(() => get(`/api/v1/instances/${id}`), (r) => r.status === 200)).body.meta).toEqual({ version: '1' });
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ service: 'agent-hup', port: b.port, meta: { version: '2' } }));
    agent.proc.kill('SIGHUP');
    const meta = await until(
      async () => (await get(`/api/v1/instances/${id}`)).body.meta,
      (m) => m?.version === '2',
    );
    expect(meta).toEqual({ version: '2' });
    expect(agent.output()).toMatch(/"why":"SIGHUP"/);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('on SIGTERM drains first, then deregisters, and exits 0', async () => {
    const b = await backend();
    const dir = configDir();
    writeFileSync(join(dir, 'svc.json'), JSON.stringify([{ service: 'agent-term', port: b.port, checks: [{ kind: 'http', url: `http://127.0.0.1:${b.port}/`, interval: '200ms' }] }]));
    const agent = startAgent(dir, ['--drain-grace', '1s']);
    const id = `agent-term-127.0.0.1-${b.port}`;
    expect(await until(() => passing('agent-term'), (l) => l.length === 1)).toEqual([id]);

    agent.proc.kill('SIGTERM');
    // During the grace the instance is still registered, but terminating and out of the answers.
    const draining = await until(
      () => get(`/api/v1/instances/${id}`),
      (r) => r.body?.conditions?.terminating === true,
    );
    expect(draining.body.conditions).toMatchObject({ ready: false, terminating: true });
    expect(await passing('agent-term')).toEqual([]);
    expect(await agent.exited).toBe(0);
    expect((await get(`/api/v1/instances/${id}`)).status).toBe(404);
    const kinds = (await get(`/api/v1/events?instance=${id}`)).body.events.map((e: { kind: string }) => e.kind);
    expect(kinds.slice(-2)).toEqual(['drain', 'deregistered']);
  });

  it("a SIGKILLed agent's instances leave the answers after their lease", async () => {
    const b = await backend();
    const dir = configDir();
    writeFileSync(join(dir, 'svc.json'), JSON.stringify({ service: 'agent-kill', port: b.port, checks: [{ kind: 'http', url: `http://127.0.0.1:${b.port}/`, interval: '200ms' }] }));
    const agent = startAgent(dir);
    const id = `agent-kill-127.0.0.1-${b.port}`;
    expect(await until(() => passing('agent-kill'), (l) => l.length === 1)).toEqual([id]);
    // Outlive one lease first: heartbeats keep it.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await passing('agent-kill')).toEqual([id]);

    agent.proc.kill('SIGKILL');
    await agent.exited;
    expect((await until(() => get(`/api/v1/instances/${id}`), (r) => r.status === 404)).status).toBe(404);
    expect(await passing('agent-kill')).toEqual([]);
    const events = (await get(`/api/v1/events?instance=${id}&kind=deregistered`)).body.events;
    expect(events.at(-1)).toMatchObject({ kind: 'deregistered', cause: 'lease_expired' });
  });
});
