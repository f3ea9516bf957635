/**
 * The Dockerfile and the systemd units under packaging/. No container engine runs here, so the
 * image is never built in this suite: the Dockerfile is checked for what it must do (stages,
 * pinned bases, a non-root user, ports, a health check, every workspace copied). The units are
 * checked by `systemd-analyze verify` where systemd is installed, the alert rules by promtool.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from '../../../test-support/pack.js';
import { BIN } from './helpers.js';

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** `key=value` lines of a unit's sections, as a map of key → every value given. */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

describe('Dockerfile', () => {
  const all = instructions(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  const args = new Map(all.filter((i) => i.op === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=') as [string, string]));
  const stages: Instruction[][] = [];
  for (const i of all) {
    if (i.op === 'FROM') stages.push([]);
    stages.at(-1)?.push(i);
  }
  const final = stages.at(-1)!;

  it('builds in one stage and runs from another, on pinned Node 20 images', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const image = stage[0]!.args.split(/\s+/)[0]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args.get(name) ?? '');
      expect(image).toMatch(/^node:20[\w.-]*$/);
      expect(image).not.toMatch(/:latest$/);
    }
    expect(final.some((i) => i.op === 'COPY' && i.args.startsWith('--from=build'))).toBe(true);
    // Development dependencies stay in the build stage.
    expect(stages[0]!.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.args))).toBe(true);
    expect(stages[0]!.some((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args))).toBe(true);
  });

  it('runs as a user other than root, with the ports, the data volume and a health check', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(final.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).sort()).toEqual(['8500', '8600/tcp', '8600/udp']);
    expect(final.some((i) => i.op === 'VOLUME' && i.args.includes('/var/lib/beacon'))).toBe(true);
    expect(final.find((i) => i.op === 'HEALTHCHECK')?.args).toMatch(/127\.0\.0\.1:8500\/healthz/);
    expect(final.find((i) => i.op === 'CMD')?.args).toContain('0.0.0.0:8500');
    // Beacon refuses 0.0.0.0 without it (docs/security.md).
    expect(final.find((i) => i.op === 'CMD')?.args).toContain('--insecure-open');
  });

  it('copies every workspace and every file it names, and the build context leaves installs out', () => {
    const { workspaces } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { workspaces: string[] };
    const copies = all.filter((i) => i.op === 'COPY');
    for (const w of workspaces) {
      expect(copies.some((i) => i.args.includes(`${w}/package.json`))).toBe(true);
      expect(final.some((i) => i.op === 'COPY' && i.args.includes(`${w}/dist`))).toBe(true);
    }
    for (const c of copies.filter((i) => !i.args.startsWith('--from'))) {
      const sources = c.args.split(/\s+/).slice(0, -1);
      for (const s of sources) expect(existsSync(join(REPO, s)), s).toBe(true);
    }
    const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']));
  });
});

describe('systemd units', () => {
  const server = readFileSync(join(REPO, 'packaging', 'systemd', 'beacon.service'), 'utf8');
  const agent = readFileSync(join(REPO, 'packaging', 'systemd', 'beacon-agent.service'), 'utf8');

  it('run as the beacon user, restart on failure, and are hardened; the agent reloads on SIGHUP', () => {
    for (const unit of [server, agent]) {
      const k = unitKeys(unit);
      expect(k.get('User')).toEqual(['beacon']);
      expect(k.get('Restart')).toEqual(['on-failure']);
      for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'RestrictAddressFamilies', 'SystemCallFilter', 'CapabilityBoundingSet']) expect(k.has(key), key).toBe(true);
    }
    expect(unitKeys(server).get('StateDirectory')).toEqual(['beacon']);
    expect(unitKeys(server).get('ExecStart')![0]).toContain('--data-dir /var/lib/beacon');
    expect(unitKeys(agent).get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(readFileSync(join(REPO, 'packaging', 'systemd', 'beacon.sysusers'), 'utf8')).toMatch(/^u beacon /m);
  });

  it('pass systemd-analyze verify', async (ctx) => {
    const found = await run('systemd-analyze', ['--version']).catch(() => undefined);
    if (!found) {
      console.warn('skipped: systemd-analyze is not on PATH (Debian package systemd)');
      return ctx.skip();
    }
    // verify wants the command to exist: point the units at the repository's built CLI.
    const dir = mkdtempSync(join(tmpdir(), 'beacon-units-'));
    try {
      const files = [
        ['beacon.service', server],
        ['beacon-agent.service', agent],
      ].map(([name, text]) => {
        const path = join(dir, name!);
        writeFileSync(path, text!.replaceAll('/usr/local/bin/beacon', BIN));
        return path;
      });
      const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', ...files]);
      expect(stdout + stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Prometheus alert rules', () => {
  it('pass promtool check rules, and fire (or not) on the series of promtool test rules', async (ctx) => {
    const found = await run('promtool', ['--version']).catch(() => undefined);
    if (!found) {
      console.warn('skipped: promtool is not on PATH (Debian package prometheus)');
      return ctx.skip();
    }
    const dir = join(REPO, 'packaging', 'prometheus');
    expect((await run('promtool', ['check', 'rules', 'beacon-alerts.yml'], { cwd: dir })).stdout).toContain('SUCCESS: 5 rules found');
    expect((await run('promtool', ['test', 'rules', 'beacon-alerts.test.yml'], { cwd: dir })).stdout).toContain('SUCCESS');
  });
});

