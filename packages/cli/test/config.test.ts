import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, beacon, freePort } from './helpers.js';

/**
 * `beacon server --config FILE`, BEACON_* variables, `--print-config` and `--log-format`, through
 * the built CLI: precedence (flag > env > file > default), errors naming file, line and key, and
 * a server that really listens where its file says.
 */
const dir = mkdtempSync(join(tmpdir(), 'beacon-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** `key: value  # source` lines of --print-config, as a map (commented-out keys are unset). */
function settings(out: string): Map<string, string> {
  return new Map([...out.matchAll(/^([a-z-]+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('beacon server --config', () => {
  it('takes flag over env over file over default, and says where each value came from', async () => {
    const path = file('prec.yaml', 'http-addr: 127.0.0.1:9001\ndatacenter: file-dc\nlog-level: warn\nstore-wait: 5s\ncheck-allow: [10.0.0.0/8, 192.168.0.0/16]\ndns: false\n');
    const r = await beacon(['server', '--config', path, '--datacenter', 'flag-dc', '--print-config'], { BEACON_LOG_LEVEL: 'debug', BEACON_DATACENTER: 'env-dc' });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const s = settings(r.stdout);
    expect(s.get('datacenter')).toBe('flag-dc  # flag');
    expect(s.get('log-level')).toBe('debug  # env BEACON_LOG_LEVEL');
    expect(s.get('http-addr')).toBe('127.0.0.1:9001  # file');
    expect(s.get('store-wait')).toBe('5s  # file');
    expect(s.get('check-allow')).toBe('[ 10.0.0.0/8, 192.168.0.0/16 ]  # file');
    expect(s.get('dns')).toBe('false  # file');
    expect(s.get('member-ttl')).toBe('3s  # default');
    expect(r.stdout).toMatch(/^# node:$/m);
    const json = await beacon(['--json', 'server', '--config', path, '--print-config'], { BEACON_LOG_LEVEL: 'debug' });
    const list = JSON.parse(json.stdout) as { key: string; value: unknown; source: string; env?: string }[];
    expect(list.find((e) => e.key === 'log-level')).toEqual({ key: 'log-level', value: 'debug', source: 'env', env: 'BEACON_LOG_LEVEL' });
    expect(list.find((e) => e.key === 'check-allow')).toEqual({ key: 'check-allow', value: ['10.0.0.0/8', '192.168.0.0/16'], source: 'file' });
    expect(list.find((e) => e.key === 'node')).toBeUndefined();
  });

  it('prints a configuration that loads back to the same settings (JSON files too)', async () => {
    const first = await beacon(['server', '--http-addr', '127.0.0.1:9002', '--dns-node-ttl', '1m', '--check-allow', '10.0.0.0/8', '--print-config']);
    const back = await beacon(['server', '--config', file('printed.yaml', first.stdout), '--print-config']);
    const strip = (out: string) => [...settings(out)].map(([k, v]) => `${k}: ${v.replace(/ {2}# \w+.*$/, '')}`);
    expect(back.code).toBe(0);
    expect(strip(back.stdout)).toEqual(strip(first.stdout));
    expect(settings(back.stdout).get('dns-node-ttl')).toBe('1m  # file');
    const json = await beacon(['server', '--config', file('c.json', '{\n  "http-addr": "127.0.0.1:9003",\n  "dns-udp-processes": 2\n}\n'), '--print-config']);
    expect(settings(json.stdout).get('dns-udp-processes')).toBe('2  # file');
  });

  it.each([
    ['unknown.yaml', 'http-addr: 127.0.0.1:9000\nhttp-adr: 1\n', `unknown.yaml:2: unknown key "http-adr" (the keys are the flags of 'beacon server --help' without the --)`],
    ['type.json', '{\n  "dev": "yes"\n}\n', 'type.json:2: dev: expected true or false, got "yes".'],
    ['unit.yaml', 'store-wait: 10\n', 'unit.yaml:1: store-wait: Give a unit: 10s, 10ms, 10m (from 0ms to 1h).'],
    ['choice.yaml', '\nlog-level: loud\n', 'choice.yaml:2: log-level: Allowed choices are trace, debug, info, warn, error.'],
    ['list.yaml', '- http-addr\n', 'list.yaml:1: expected a mapping of settings (key: value)'],
    ['dup.yaml', 'node: a\nnode: b\n', 'dup.yaml:2: Map keys must be unique'],
    ['nested.yaml', 'config: other.yaml\n', 'nested.yaml:1: unknown key "config"'],
  ])('refuses %s with the file, line and key, as a usage error', async (name, text, message) => {
    const path = file(name, text);
    const r = await beacon(['server', '--config', path, '--print-config']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toContain(`beacon: ${path.slice(0, -name.length)}${message}`);
  });

  it('runs a server listening where the file says, with the log format it asks for', async () => {
    const [http, dns] = [await freePort(), await freePort()];
    const path = file('run.yaml', `dev: true\nhttp-addr: 127.0.0.1:${http}\ndns-addr: 127.0.0.1:${dns}\nlog-format: pretty\n`);
    const out = await serve(['--config', path], {}, async () => {
      const ready = await fetch(`http://127.0.0.1:${http}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: { reason: string }[] }).checks[2]!.reason).toBe('listening: http, dns');
    });
    expect(out).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO  beacon server ready http=http://127\\.0\\.0\\.1:${http} dns=127\\.0\\.0\\.1:${dns} store=embedded dataDir=null maxWatchStreams=\\d+ maxBlockingQueries=\\d+ nofile=.+$`, 'm'));
    expect(out).toMatch(/ INFO {2}shutting down: draining connections signal=SIGTERM$/m);
  });

  it('logs JSON when stdout is not a terminal, and finds its address in BEACON_HTTP_ADDR (a URL, as clients take it)', async () => {
    const http = await freePort();
    const out = await serve(['--dev', '--dns-addr', '127.0.0.1:0'], { BEACON_HTTP_ADDR: `http://127.0.0.1:${http}` }, async () => {
      expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
    });
    const ready = out.split('\n').map((l) => JSON.parse(l || '{}') as { msg?: string; http?: string }).find((l) => l.msg === 'beacon server ready');
    expect(ready?.http).toBe(`http://127.0.0.1:${http}`);
  });
});

/**
 * Runs `beacon server ARGS` until it logs that it is ready, calls `meanwhile`, stops it with
 * SIGTERM (it must exit 0) and returns what it wrote to stdout.
 */
async function serve(args: string[], env: Record<string, string>, meanwhile: () => Promise<void>): Promise<string> {
  const proc = spawn(process.execPath, [BIN, 'server', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', r));
  try {
    for (let i = 0; i < 300 && !out.includes('beacon server ready') && proc.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    expect(out, err).toContain('beacon server ready');
    await meanwhile();
  } finally {
    proc.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
  return out;
}
