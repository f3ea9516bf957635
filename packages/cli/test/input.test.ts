import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VERSION } from '@beacon/core';
import { BIN, beacon, freePort } from './helpers.js';

// Nothing listens here: every case below must be refused before a request is sent, or fail cleanly.
const nowhere = async () => ['--server', `127.0.0.1:${await freePort()}`];

describe('beacon refuses bad flags where they are typed', () => {
  it.each([
    [['-p', 'notaport'], `option '-p, --port <port>' argument 'notaport' is invalid. Expected a whole number from 0 to 65535.`],
    [['-p', '80', '--weight', 'abc'], `option '--weight <n>' argument 'abc' is invalid. Expected a whole number from 0 to 65535.`],
    [['-p', '80', '--ttl', '30'], `option '--ttl <duration>' argument '30' is invalid. Give a unit: 30s, 30ms, 30m (from 1s to 24h).`],
    [['-p', '80', '--check-ttl', '100ms'], `option '--check-ttl <duration>' argument '100ms' is invalid. Expected a duration from 1s to 24h.`],
    [['-p', '80', '--port-name', 'grpc=x'], `option '--port-name <name=port>' argument 'grpc=x' is invalid. Expected a whole number from 0 to 65535.`],
    [['-p', '80', '-m', 'team'], `option '-m, --meta <key=value>' argument 'team' is invalid. Expected key=value for --meta.`],
  ])('register %j', async (flags, message) => {
    const r = await beacon([...(await nowhere()), 'register', '-s', 'web', '-a', '127.0.0.1', ...flags]);
    expect(r.code).toBe(2);
    // One line and a pointer to the help, not the whole help.
    expect(r.stderr).toBe(`beacon: ${message}\n(run 'beacon register --help' for usage)\n`);
    expect(r.stdout).toBe('');
  });

  it('answers usage errors as JSON under --json', async () => {
    const r = await beacon([...(await nowhere()), '--json', 'check', 'bogus', 'x']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toEqual({
      error: { code: 'invalid_argument', message: "command-argument value 'bogus' is invalid for argument 'verb'. Allowed choices are pass, warn, fail." },
    });
  });

  it('refuses a server URL of another scheme instead of dialing http://ftp://…', async () => {
    const r = await beacon(['--server', 'ftp://127.0.0.1', 'services']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`beacon: invalid_argument: --server: Beacon servers are http:// or https:// URLs (or host:port), got "ftp://127.0.0.1"\n`);
  });

  it('refuses an agent config directory that does not exist', async () => {
    const r = await beacon(['agent', '--config-dir', '/nonexistent/beacon.d']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^beacon: option '--config-dir <dir>' argument '\/nonexistent\/beacon\.d' is invalid\. No such directory\.\n/);
  });

  it('refuses a bad server flag before opening anything', async () => {
    const r = await beacon(['server', '--dev', '--member-ttl', '1s']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^beacon: option '--member-ttl <duration>' argument '1s' is invalid\. Expected a duration from 2s to 24h\.\n/);
    const ttl = await beacon(['server', '--dev', '--dns-node-ttl', '1500ms']);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toMatch(/^beacon: option '--dns-node-ttl <duration>' argument '1500ms' is invalid\. Expected whole seconds \(30\) or a duration \(1m\)/);
  });
});

describe('beacon version', () => {
  it('prints the version as a command, a flag and JSON', async () => {
    // Nothing listens there: the command still answers with the CLI's own version.
    const nowhere = ['--server', `127.0.0.1:${await freePort()}`];
    expect((await beacon([...nowhere, 'version'])).stdout).toMatch(new RegExp(`^cli {6}${VERSION.replaceAll('.', '\\.')}\n`));
    expect((await beacon(['--version'])).stdout).toBe(`${VERSION}\n`);
    expect(JSON.parse((await beacon([...nowhere, '--json', 'version'])).stdout)).toMatchObject({ version: VERSION, node: process.version });
  });
});

describe('beacon pointed at something that is not a Beacon server', () => {
  it('says so instead of printing the other program’s page as not_found', async () => {
    const other = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body><h1>404 Not Found</h1><hr>nginx</body></html>'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const r = await beacon(['--server', url, 'instances', 'web']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`beacon: unavailable: ${url}: HTTP 404 (text/html) is not a Beacon answer; is ${url} a Beacon server?\n`);
      const j = await beacon(['--server', url, '--json', 'instances', 'web']);
      expect(JSON.parse(j.stderr).error.code).toBe('unavailable');
    } finally {
      other.close();
    }
  });

  it('watch with the server down names the cause and keeps trying', async () => {
    const proc = spawn(process.execPath, [BIN, ...(await nowhere()), 'watch', 'web'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => (err += d));
    try {
      for (const end = Date.now() + 10_000; !err.includes('\n') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 25));
      expect(err).toMatch(/^watch: http:\/\/127\.0\.0\.1:\d+: fetch failed \(ECONNREFUSED\); retrying\n/);
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill('SIGINT');
    }
  });
});
