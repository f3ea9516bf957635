import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, beacon, spawnServer, type RunningProcess } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'beacon-acl-'));
let server: RunningProcess;
let at: string[];
let management: string;
beforeAll(async () => {
  // From the config file, as an operator would keep it.
  const config = join(dir, 'server.yaml');
  writeFileSync(config, 'dev: true\nacl: true\n');
  server = await spawnServer(['--config', config]);
  at = ['--server', server.url];
});
afterAll(async () => {
  await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const as = (secret: string) => ({ BEACON_TOKEN: secret });

// Each test is a dozen CLI runs one after another: generous on a loaded machine.
describe('beacon acl', { timeout: 60_000 }, () => {
  it('bootstraps once: the SecretID is printed, the second attempt fails', async () => {
    const boot = await beacon([...at, 'acl', 'bootstrap', '-o', 'json']);
    expect(boot.code).toBe(0);
    const token = JSON.parse(boot.stdout);
    expect(token).toMatchObject({ description: 'Bootstrap Token (Global Management)', policies: [{ name: 'global-management' }] });
    management = token.secretId;
    const again = await beacon([...at, 'acl', 'bootstrap']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('beacon: forbidden: Permission denied: ACL bootstrap no longer allowed\n');
  });

  it('creates a policy and a token with it; the token may write its service and nothing else', async () => {
    const policy = await beacon([...at, 'acl', 'policy', 'create', '--name', 'web-write', '--rules', 'service "web" { policy = "write" }'], as(management));
    expect(policy.stdout).toMatch(/^ID: +[0-9a-f-]{36}\nName: +web-write\nDescription: +\nRules:\nservice "web" \{ policy = "write" \}\n$/);
    const created = await beacon([...at, 'acl', 'token', 'create', '--description', 'web deployer', '--policy-name', 'web-write', '-o', 'json'], as(management));
    const web = JSON.parse(created.stdout);
    expect(web).toMatchObject({ description: 'web deployer', policies: [{ name: 'web-write' }], secretId: expect.any(String) });

    const reg = ['register', '-s', 'web', '-a', '127.0.0.1', '-p', '8080', '--ttl', '30s'];
    expect((await beacon([...at, '--token', web.secretId, ...reg])).code).toBe(0);
    const noToken = await beacon([...at, ...reg]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^beacon: forbidden: Permission denied: token lacks service:write on "web"/);
    const other = await beacon([...at, 'register', '-s', 'api', '-a', '127.0.0.1', '-p', '8081'], as(web.secretId));
    expect(other.stderr).toMatch(/service:write on "api"/);

    const file = join(dir, 'web.token');
    writeFileSync(file, `${web.secretId}\n`, { mode: 0o600 });
    const listed = await beacon([...at, '--token-file', file, 'services', '-o', 'json']);
    expect(JSON.parse(listed.stdout).map((s: { name: string }) => s.name)).toEqual(['web']);
    const self = await beacon([...at, '--token-file', file, 'acl', 'token', 'read', '--self']);
    expect(self.stdout).toMatch(new RegExp(`^AccessorID: +${web.accessorId}\\n`));
    expect(self.stdout).toMatch(/Policies:\n {3}[0-9a-f-]{36} - web-write\n/);

    const list = await beacon([...at, 'acl', 'token', 'list'], as(management));
    expect(list.stdout).toMatch(/^ACCESSOR-ID +DESCRIPTION +POLICIES +ROLES\n/);
    expect(list.stdout).toMatch(/web deployer +web-write +-/);
    expect((await beacon([...at, 'acl', 'token', 'list'], as(web.secretId))).stderr).toMatch(/acl:read/);

    expect((await beacon([...at, 'acl', 'token', 'delete', web.accessorId], as(management))).stdout).toBe(`deleted token ${web.accessorId}\n`);
    expect((await beacon([...at, '--token-file', file, 'services'])).stderr).toBe('beacon: forbidden: ACL not found\n');
  });

  it('gives the anonymous token a policy, and manages policies and roles by name', async () => {
    await beacon([...at, 'acl', 'policy', 'create', '--name', 'public-read', '--rules', '{"service_prefix": {"": {"policy": "read"}}}'], as(management));
    const anon = await beacon([...at, 'acl', 'token', 'update', '00000000-0000-0000-0000-000000000002', '--policy-name', 'public-read'], as(management));
    expect(anon.stdout).toMatch(/Description: +Anonymous Token\n/);
    expect((await beacon([...at, 'services'])).stdout).toMatch(/^SERVICE .*\nweb /);
    const role = await beacon([...at, 'acl', 'role', 'create', '--name', 'readers', '--policy-name', 'public-read'], as(management));
    expect(role.stdout).toMatch(/Name: +readers\nDescription: +\nPolicies:\n {3}[0-9a-f-]{36} - public-read\n/);
    expect((await beacon([...at, 'acl', 'role', 'list'], as(management))).stdout).toMatch(/readers +public-read\n/);
    expect((await beacon([...at, 'acl', 'policy', 'read', 'public-read', '-o', 'json'], as(management))).stdout).toMatch(/"rules": "\{\\"service_prefix\\"/);
    const names = (await beacon([...at, 'acl', 'policy', 'list', '-o', 'json'], as(management))).stdout;
    expect(JSON.parse(names).map((p: { name: string }) => p.name).sort()).toEqual(['global-management', 'public-read', 'web-write']);
    expect((await beacon([...at, 'acl', 'policy', 'delete', 'web-write'], as(management))).stdout).toBe('deleted policy web-write\n');
    const gone = await beacon([...at, 'acl', 'policy', 'read', 'web-write'], as(management));
    expect(gone.code).toBe(4);
  });
});

describe('beacon agent with a token', () => {
  it('registers its definitions with BEACON_TOKEN, and deregisters them on SIGTERM', async () => {
    await beacon([...at, 'acl', 'policy', 'create', '--name', 'agent-svc', '--rules', 'service "agent-svc" { policy = "write" }'], as(management));
    const token = JSON.parse((await beacon([...at, 'acl', 'token', 'create', '--policy-name', 'agent-svc', '-o', 'json'], as(management))).stdout);
    const defs = join(dir, 'agent.d');
    mkdirSync(defs);
    writeFileSync(join(defs, 'svc.json'), JSON.stringify({ service: 'agent-svc', address: '127.0.0.1', port: 7100 }));
    const proc = spawn(process.execPath, [BIN, 'agent', '--config-dir', defs, '--server', server.url, '--lease-ttl', '2s', '--drain-grace', '100ms'], {
      stdio: 'ignore',
      env: { ...process.env, BEACON_TOKEN: token.secretId },
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      const instances = async () =>
        ((await (await fetch(`${server.url}/api/v1/services/agent-svc/instances`, { headers: { authorization: `Bearer ${management}` } })).json()) as { instances: unknown[] }).instances.length;
      const end = Date.now() + 10_000;
      while ((await instances()) !== 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      expect(await instances()).toBe(1);
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await instances()).toBe(0);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    }
  });
});
