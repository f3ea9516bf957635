import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMITS, systemClock, type CheckSpec } from '@beacon/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckRunners } from './factory.js';
import { httpStatusToCheck } from './http.js';
import { CheckDialer, staticResolver } from '../dial.js';
import { CheckTargetPolicy } from '../target-policy.js';

/** The real run-time gate, with the default policy (loopback is a fine target for these tests). */
const dial = new CheckDialer(new CheckTargetPolicy()).dial;

function spec(url: string, extra: Partial<CheckSpec> = {}): CheckSpec {
  return {
    id: 'c1', name: 'c1', kind: 'http', role: 'readiness', url, timeoutMs: 2000,
    successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1, ...extra,
  };
}

function listen(server: Server | NetServer, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as { port: number }).port)));
}

describe('HTTP check runner (real server on loopback)', () => {
  const sockets = new Set<Socket>();
  let connections = 0;
  let seen: { method: string; headers: IncomingMessage['headers']; body: string } | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen = { method: req.method!, headers: req.headers, body: Buffer.concat(chunks).toString() };
      switch (req.url) {
        case '/ok': return void res.writeHead(200).end('all good');
        case '/busy': return void res.writeHead(429).end('slow down');
        case '/fail': return void res.writeHead(500).end('boom');
        case '/redirect': return void res.writeHead(302, { location: 'http://10.0.0.1/' }).end();
        case '/big': return void res.writeHead(200).end('x'.repeat(100_000));
        case '/hang': return; // accepts and never answers
        default: return void res.writeHead(404).end();
      }
    });
  });
  server.on('connection', (s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Accepts TCP connections and never says a word.
  const silent = createNetServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let base = '';
  let silentPort = 0;
  let refusedPort = 0;
  const runners = new CheckRunners({ clock: systemClock, dial });

  beforeAll(async () => {
    base = `http://127.0.0.1:${await listen(server)}`;
    silentPort = await listen(silent);
    const tmp = createNetServer();
    refusedPort = await listen(tmp);
    await new Promise((r) => tmp.close(r));
  });

  afterAll(async () => {
    await runners.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    await new Promise((r) => silent.close(r));
  });

  it('maps status codes the Consul way', () => {
    expect(httpStatusToCheck(200)).toBe('passing');
    expect(httpStatusToCheck(204)).toBe('passing');
    expect(httpStatusToCheck(299)).toBe('passing');
    expect(httpStatusToCheck(429)).toBe('warning');
    expect(httpStatusToCheck(301)).toBe('critical');
    expect(httpStatusToCheck(404)).toBe('critical');
    expect(httpStatusToCheck(503)).toBe('critical');
  });

  it('200 is passing, with the status line and body in the output', async () => {
    const before = Date.now();
    const r = await runners.create(spec(`${base}/ok`)).run();
    expect(r.status).toBe('passing');
    expect(r.output).toBe(`HTTP GET ${base}/ok: 200 OK Output: all good`);
    expect(r.at).toBeGreaterThanOrEqual(before);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('429 is warning', async () => {
    const r = await runners.create(spec(`${base}/busy`)).run();
    expect(r.status).toBe('warning');
    expect(r.output).toContain('429 Too Many Requests Output: slow down');
  });

  it('500 is critical', async () => {
    const r = await runners.create(spec(`${base}/fail`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('500 Internal Server Error Output: boom');
  });

  it('does not follow redirects (a 3xx is critical)', async () => {
    const r = await runners.create(spec(`${base}/redirect`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('302 Found');
  });

  it('caps the output at LIMITS.checkOutput bytes', async () => {
    const r = await runners.create(spec(`${base}/big`)).run();
    expect(r.status).toBe('passing');
    expect(Buffer.byteLength(r.output)).toBe(LIMITS.checkOutput);
  });

  it('sends method, headers and body, with default User-Agent and Accept', async () => {
    const r = await runners
      .create(spec(`${base}/ok`, { method: 'post', headers: { 'X-Probe': ['a', 'b'], Accept: ['application/json'] }, body: '{"ping":1}' }))
      .run();
    expect(r.status).toBe('passing');
    expect(r.output.startsWith(`HTTP POST ${base}/ok: 200`)).toBe(true);
    expect(seen!.method).toBe('POST');
    expect(seen!.body).toBe('{"ping":1}');
    expect(seen!.headers['x-probe']).toBe('a, b');
    expect(seen!.headers.accept).toBe('application/json');
    expect(seen!.headers['user-agent']).toBe('Beacon Health Check');
  });

  it('connects to the address the dialer vetted, keeping the name in the Host header', async () => {
    const port = new URL(base).port;
    const named = new CheckRunners({
      clock: systemClock,
      dial: new CheckDialer(new CheckTargetPolicy(), staticResolver({ 'svc.test': ['127.0.0.1'], 'meta.test': ['169.254.169.254'] })).dial,
    });
    try {
      const r = await named.create(spec(`http://svc.test:${port}/ok`)).run();
      expect(r.status).toBe('passing');
      expect(seen!.headers.host).toBe(`svc.test:${port}`);
      const refused = await named.create(spec(`http://meta.test:${port}/ok`, { method: 'PUT', body: 'x' })).run();
      expect(refused.status).toBe('critical');
      expect(refused.output).toContain('meta.test resolves to 169.254.169.254, which is a link-local address');
    } finally {
      await named.close();
    }
  });

  it('a server that accepts and never answers is critical after the timeout', async () => {
    const r = await runners.create(spec(`${base}/hang`, { timeoutMs: 150 })).run();
    expect(r.status).toBe('critical');
    expect(r.output).toBe(`HTTP GET ${base}/hang: timed out after 150 ms`);
  });

  it('a raw TCP server that never speaks HTTP is critical after the timeout', async () => {
    const url = `http://127.0.0.1:${silentPort}/`;
    const r = await runners.create(spec(url, { timeoutMs: 150 })).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('timed out after 150 ms');
  });

  it('a refused port is critical with the error', async () => {
    const r = await runners.create(spec(`http://127.0.0.1:${refusedPort}/`)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('ECONNREFUSED');
  });

  it('a cancelled run ends at once as critical', async () => {
    const ac = new AbortController();
    const p = runners.create(spec(`${base}/hang`, { timeoutMs: 10_000 })).run(ac.signal);
    ac.abort();
    const r = await p;
    expect(r.status).toBe('critical');
    expect(r.output).toContain('cancelled');
  });

  it('opens a fresh connection per run by default, and reuses one with keep-alive', async () => {
    const runOnce = async (f: CheckRunners, n: number): Promise<number> => {
      const before = connections;
      const runner = f.create(spec(`${base}/ok`));
      for (let i = 0; i < n; i++) expect((await runner.run()).status).toBe('passing');
      return connections - before;
    };
    expect(await runOnce(runners, 5)).toBe(5);
    const keep = new CheckRunners({ clock: systemClock, dial, httpKeepAlive: true });
    try {
      // undici may open a second socket while the first is being returned to the pool.
      expect(await runOnce(keep, 5)).toBeLessThanOrEqual(2);
    } finally {
      await keep.close();
    }
  });
});

describe('HTTPS check runner', () => {
  let dir = '';
  let url = '';
  let server: ReturnType<typeof createHttpsServer> | undefined;
  const runners = new CheckRunners({ clock: systemClock, dial });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'beacon-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) =>
      res.writeHead(200).end('tls ok'),
    );
    url = `https://127.0.0.1:${await listen(server)}/`;
  });

  afterAll(async () => {
    await runners.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a self-signed certificate by default', async () => {
    const r = await runners.create(spec(url)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toMatch(/self[- ]signed/i);
  });

  it('accepts it with tlsSkipVerify', async () => {
    const r = await runners.create(spec(url, { tlsSkipVerify: true })).run();
    expect(r.status).toBe('passing');
    expect(r.output).toContain('200 OK Output: tls ok');
  });
});
