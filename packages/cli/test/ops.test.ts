import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, beacon, freePort, spawnServer } from './helpers.js';

let server: Awaited<ReturnType<typeof spawnServer>>;
beforeAll(async () => {
  server = await spawnServer(['--dev', '--node', 'ops-node']);
});
afterAll(async () => {
  await server.stop();
});

async function until(read: () => string, re: RegExp): Promise<void> {
  const end = Date.now() + 10_000;
  while (!re.test(read()) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  expect(read()).toMatch(re);
}

describe('beacon members, events, version and the output formats', () => {
  it('members lists the embedded server with what it owns', async () => {
    const s = ['--server', server.url];
    await beacon([...s, 'register', '-s', 'owned', '-a', '127.0.0.1', '-p', '7001', '--check-ttl', '30s']);
    const r = await beacon([...s, 'members']);
    expect(r.stdout).toMatch(/^NODE\s+ADDRESS\s+ROLE\s+INSTANCES\s+CHECKS\s+LAST-SEEN\n/);
    expect(r.stdout).toMatch(new RegExp(`ops-node \\*\\s+${server.url}\\s+leader\\s+1\\s+0\\s+\\d+ms ago`));
    expect((await beacon([...s, 'members', '-o', 'wide', '--no-headers'])).stdout).toMatch(/^ops-node \*\s+\S+\s+leader\s+1\s+0\s+0\.1\.0\s+\d{4}-\d\d-\d\dT/);
    const json = JSON.parse((await beacon([...s, 'members', '-o', 'json'])).stdout);
    expect(json.members).toEqual([expect.objectContaining({ node: 'ops-node', self: true, leader: true, instances: 1, checks: 0 })]);
  });

  it('-o wide adds columns, --no-headers drops the header, -o yaml prints the answer', async () => {
    const s = ['--server', server.url];
    await beacon([...s, 'register', '-s', 'fmt', '-a', '127.0.0.1', '-p', '7002', '-m', 'team=core']);
    const wide = (await beacon([...s, 'instances', 'fmt', '-o', 'wide'])).stdout;
    expect(wide).toMatch(/^ID\s+ADDRESS\s+STATUS\s+READY\s+ZONE\s+WEIGHT\s+NODE\s+SOURCE\s+CHECKS\s+META\s+TAGS\n/);
    expect(wide).toMatch(/fmt-127\.0\.0\.1-7002\s.*\sapi\s+-\s+team=core\s+-\n/);
    expect((await beacon([...s, 'services', '--no-headers'])).stdout).not.toMatch(/SERVICE/);
    expect((await beacon([...s, 'instances', 'fmt', '-o', 'yaml'])).stdout).toMatch(/^service: fmt\nindex: \d+\ndatacenter: dc1\ninstances:\n {2}- id: fmt-127\.0\.0\.1-7002\n/);
    const bad = await beacon([...s, 'services', '-o', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/argument 'xml' is invalid. Allowed choices are table, wide, json, yaml/);
    // -o json asks for JSON errors as --json does.
    expect(JSON.parse((await beacon([...s, '-o', 'json', 'heartbeat', 'nope'])).stderr).error.code).toBe('not_found');
  });

  it('events filters by --kind and --since (an index or a duration) and --follow prints new ones as they happen', async () => {
    const s = ['--server', server.url];
    const reg = JSON.parse((await beacon([...s, '--json', 'register', '-s', 'ev', '-a', '127.0.0.1', '-p', '7003'])).stdout);
    await beacon([...s, 'deregister', reg.instance.id]);
    const kinds = await beacon([...s, 'events', '--service', 'ev', '--kind', 'deregistered']);
    expect(kinds.stdout).toMatch(/^\S+ {2}#\d+ {2}ev\/ev-127\.0\.0\.1-7003 {2}deregistered: deregistered through the API\n$/);
    expect((await beacon([...s, 'events', '--service', 'ev', '--since', String(reg.index)])).stdout.trim().split('\n')).toHaveLength(1);
    expect((await beacon([...s, 'events', '--service', 'ev', '--since', '1h'])).stdout.trim().split('\n')).toHaveLength(2);
    expect((await beacon([...s, 'events', '--service', 'ev', '--since', '1ms'])).stdout).toBe('no events\n');
    expect((await beacon([...s, 'events', '--since', 'yesterday'])).code).toBe(2);

    const proc = spawn(process.execPath, [BIN, ...s, 'events', '--follow', '--service', 'ev', '--kind', 'registered', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    try {
      // The history first (one registration), then the new one, and not the deregistration between.
      await until(() => out, /"kind":"registered"/);
      await beacon([...s, 'register', '-s', 'ev', '-a', '127.0.0.1', '-p', '7004']);
      await until(() => out, /ev-127\.0\.0\.1-7004/);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((e) => [e.kind, e.instanceId])).toEqual([
        ['registered', 'ev-127.0.0.1-7003'],
        ['registered', 'ev-127.0.0.1-7004'],
      ]);
    } finally {
      proc.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it("version prints the CLI's, Node's and the server's versions, and still answers when no server does", async () => {
    const up = JSON.parse((await beacon(['--server', server.url, 'version', '-o', 'json'])).stdout);
    expect(up).toMatchObject({ version: '0.1.0', node: process.version, server: { url: server.url, version: '0.1.0', node: 'ops-node' } });
    const down = await beacon(['--server', `127.0.0.1:${await freePort()}`, 'version']);
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/^cli {6}0\.1\.0\ncommit {3}\S+.*\nnode {5}v\d+\.\d+\.\d+\nserver {3}unreachable: .*ECONNREFUSED/);
  });
});
