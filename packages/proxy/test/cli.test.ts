import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, beacon as runBeacon, freePort } from '../../cli/test/helpers.js';
import { backend, register, spawnServer, until, type RunningProcess } from './helpers.js';

let server: RunningProcess;
const dir = mkdtempSync(join(tmpdir(), 'beacon-proxy-cli-'));
beforeAll(async () => {
  server = await spawnServer(['--dev']);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function get(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    request(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    })
      .on('error', (err) => resolve({ status: 0, text: (err as NodeJS.ErrnoException).code ?? err.message }))
      .end();
  });
}

describe('beacon proxy and beacon exec (the built CLI)', () => {
  it('beacon proxy --config: a bad file is a usage error naming the line', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'listeners:\n  - listen: 127.0.0.1:0\n    service: x\n    policy:\n      retries: { max: 99 }\n');
    const r = await runBeacon(['proxy', '--server', server.url, '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:5: listeners/0/policy/retries/max:`);
  });

  it('beacon proxy --failover that reaches no listener is a usage error', async () => {
    const r = await runBeacon(['proxy', '--server', server.url, '--listen', '127.0.0.1:0=web', '--failover', 'api=nearest:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no listener or route sends to api');
  });

  it('beacon proxy drains on SIGTERM: the request under way finishes, new connections are refused', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await backend('slow', (req, res) => {
      req.resume();
      void gate.then(() => res.end('finished'));
    });
    await register(server, 'slowpoke', slow.port);
    const port = await freePort();
    const admin = await freePort();
    const proxy = spawn(process.execPath, [BIN, 'proxy', '--server', server.url, '--listen', `127.0.0.1:${port}=slowpoke`, '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => proxy.once('exit', (code) => r(code)));
    try {
      await until(() => get(`http://127.0.0.1:${admin}/routes`), (r) => r.text.includes(`"port": ${slow.port}`), 10_000);
      const inflight = get(`http://127.0.0.1:${port}/`);
      await until(() => get(`http://127.0.0.1:${admin}/routes`), (r) => r.text.includes('"inflight": 1'));
      proxy.kill('SIGTERM');
      expect((await until(() => get(`http://127.0.0.1:${admin}/healthz`), (r) => r.status === 503)).text).toContain('draining');
      expect((await get(`http://127.0.0.1:${port}/`)).text).toBe('ECONNREFUSED');
      release();
      expect(await inflight).toEqual({ status: 200, text: 'finished' });
      expect(await exited).toBe(0);
    } finally {
      release();
      proxy.kill('SIGKILL');
      await slow.close();
    }
  });

  it('beacon exec: the program reaches the service through $PAYMENTS_URL, and its exit code comes back', async () => {
    const pay = await backend('payments');
    await register(server, 'payments', pay.port);
    try {
      const program = "fetch(process.env.PAYMENTS_URL + '/charge').then(r => r.json()).then(b => { console.log(process.env.PAYMENTS_SERVICE_HOST, b.by, b.path); process.exit(7); })";
      const r = await runBeacon(['exec', '--server', server.url, '--service', 'payments', '--', process.execPath, '-e', program]);
      expect(r.stdout).toBe('127.0.0.1 payments /charge\n');
      expect(r.code).toBe(7);
    } finally {
      await pay.close();
    }
  });

  it('beacon exec passes SIGTERM to the program and exits with its status', async () => {
    const program = "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(42); }); console.log('up'); setInterval(() => {}, 1000);";
    const child = spawn(process.execPath, [BIN, 'exec', '--server', server.url, '--service', 'payments', '--', process.execPath, '-e', program], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await until(async () => out, (o) => o.includes('up'), 10_000);
      child.kill('SIGTERM');
      expect(await exited).toBe(42);
      expect(out).toBe('up\ngot SIGTERM\n');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
