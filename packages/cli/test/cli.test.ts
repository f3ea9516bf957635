import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, beacon, spawnServer } from './helpers.js';

let server: Awaited<ReturnType<typeof spawnServer>>;
beforeAll(async () => {
  server = await spawnServer(['--dev']);
});
afterAll(async () => {
  const code = await server.stop('SIGTERM');
  expect(code).toBe(0); // SIGTERM drains and exits cleanly
});

describe('beacon CLI against a real server', () => {
  it('registers, lists, explains and deregisters', async () => {
    const s = ['--server', server.url];
    const r = await beacon([...s, 'register', '-s', 'web', '-a', '127.0.0.1', '-p', '8080', '-t', 'v1', '-m', 'team=core', '--ttl', '30s']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^registered web-127\.0\.0\.1-8080/);
    const list = await beacon([...s, 'instances', 'web']);
    expect(list.stdout).toMatch(/ID\s+ADDRESS\s+STATUS\s+READY/);
    expect(list.stdout).toMatch(/web-127\.0\.0\.1-8080\s+127\.0\.0\.1:8080\s+passing\s+yes/);
    const json = JSON.parse((await beacon([...s, '--json', 'instances', 'web', '--meta', 'team=core'])).stdout);
    expect(json.instances[0].meta).toEqual({ team: 'core' });
    expect((await beacon([...s, 'services'])).stdout).toMatch(/web\s+1\s+1\s+1\s+0\s+0\s+v1/);
    expect((await beacon([...s, 'heartbeat', 'web-127.0.0.1-8080'])).stdout).toMatch(/lease renewed/);
    await beacon([...s, 'maintenance', 'web-127.0.0.1-8080', '-r', 'patching']);
    const ex = await beacon([...s, 'explain', 'web-127.0.0.1-8080']);
    expect(ex.stdout).toMatch(/NOT in answers/);
    expect(ex.stdout).toMatch(/in maintenance: patching/);
    expect((await beacon([...s, 'events', '--instance', 'web-127.0.0.1-8080'])).stdout).toMatch(/maintenance: maintenance on: patching/);
    expect((await beacon([...s, 'deregister', 'web-127.0.0.1-8080'])).stdout).toMatch(/deregistered/);
  });

  it('finds the server through BEACON_HTTP_ADDR and reports errors with an exit code', async () => {
    const env = { BEACON_HTTP_ADDR: server.url.replace('http://', '') };
    const hb = await beacon(['heartbeat', 'missing'], env);
    expect(hb.code).toBe(4);
    expect(hb.stderr).toMatch(/not_found: instance missing is not registered/);
    const bad = await beacon(['register', '-s', 'Bad', '-a', 'x', '-p', '1'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid_argument/);
  });

  it('watch prints changes live', async () => {
    const proc = spawn(process.execPath, [BIN, '--server', server.url, 'watch', 'live'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    try {
      const until = async (re: RegExp) => {
        const end = Date.now() + 10_000;
        while (!re.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
        expect(out).toMatch(re);
      };
      await until(/# index \d+: 0 instances/);
      await beacon(['--server', server.url, 'register', '-s', 'live', '-a', '127.0.0.2', '-p', '1']);
      await until(/live\/live-127\.0\.0\.2-1\s+registered: registered by api\s+\[passing, ready\]/);
    } finally {
      proc.kill('SIGINT');
    }
  });
});
