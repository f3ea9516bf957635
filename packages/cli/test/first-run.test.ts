import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, beacon, freePort, startServing } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Runs a command to its end, or kills it after `ms`; resolves with what it printed and how long it took. */
function run(cmd: string, args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string; tookMs: number }> {
  const started = Date.now();
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, tookMs: Date.now() - started });
    }),
  );
}

describe('the README start command', () => {
  it('is `npm start`, and its promised defaults are the server defaults', async () => {
    const first = /```sh\n([\s\S]*?)```/.exec(README)![1]!;
    expect(first).toMatch(/npm install && npm start\s+# a server: HTTP on 127\.0\.0\.1:8500, DNS on 127\.0\.0\.1:8600, data in \.\/beacon-data/);
    const help = await beacon(['server', '--help']);
    expect(help.stdout).toMatch(/--http-addr <host:port>\s+HTTP API address \(default: "127\.0\.0\.1:8500", env: BEACON_HTTP_ADDR\)/);
    expect(help.stdout).toMatch(/--dns-addr <host:port>\s+DNS address, UDP and TCP \(default:\s+"127\.0\.0\.1:8600",\s+env:\s+BEACON_DNS_ADDR\)/);
    expect(help.stdout).toMatch(/--data-dir <dir>\s+directory of the embedded store \(default:\s+"\.\/beacon-data",\s+env:\s+BEACON_DATA_DIR\)/);
  });

  it('`npm start` serves until SIGTERM, then exits 0', async () => {
    const [http, dns] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'beacon-start-'));
    const url = `http://127.0.0.1:${http}`;
    try {
      // Flags through npm keep the test off 8500/8600, which other programs here may hold. The bug
      // this holds: `npm start` exited 0 after a second with nothing listening (startServing fails).
      const npm = await startServing('npm', ['start', '--silent', '--', '--http-addr', `127.0.0.1:${http}`, '--dns-addr', `127.0.0.1:${dns}`, '--data-dir', dir, '--log-level', 'warn'], url, { cwd: ROOT, group: true });
      try {
        // SIGTERM to npm's process reaches the server (the script execs it) and it stops cleanly.
        expect(await npm.stop('SIGTERM')).toBe(0);
        expect(npm.stderr()).toBe('');
        await expect(fetch(`${url}/api/v1/status`)).rejects.toThrow();
      } finally {
        npm.killGroup();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('beacon server whose log reader has gone', () => {
  it('still stops on SIGTERM (pino flushing at exit retried EPIPE forever)', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const server = await startServing(process.execPath, [BIN, 'server', '--dev', '--http-addr', `127.0.0.1:${port}`, '--dns-addr', '127.0.0.1:0', '--log-level', 'info'], url);
    try {
      // The reading end of its stdout closes, as when `beacon server | head` has read enough.
      server.proc.stdout!.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const hung = new Promise<string>((r) => setTimeout(() => r('still running after 5 s'), 5_000));
      expect(await Promise.race([server.stop('SIGTERM'), hung])).toBe(0);
    } finally {
      server.killGroup();
    }
  });
});

describe('beacon server on a taken port', () => {
  for (const listener of ['http', 'dns'] as const) {
    it(`exits at once with one line naming the ${listener.toUpperCase()} address and --${listener}-addr`, async () => {
      const port = await freePort();
      // A TCP listener takes the HTTP port; a UDP socket the DNS one (DNS binds UDP first).
      const holder =
        listener === 'http'
          ? await new Promise<{ close(): void }>((r) => {
              const s = createServer().listen(port, '127.0.0.1', () => r(s));
            })
          : await new Promise<{ close(): void }>((r) => {
              const s = createSocket('udp4');
              s.bind(port, '127.0.0.1', () => r(s));
            });
      const dir = mkdtempSync(join(tmpdir(), 'beacon-busy-'));
      try {
        const addrs = listener === 'http' ? ['--http-addr', `127.0.0.1:${port}`, '--dns-addr', '127.0.0.1:0'] : ['--http-addr', '127.0.0.1:0', '--dns-addr', `127.0.0.1:${port}`];
        const r = await run(process.execPath, [BIN, 'server', '--data-dir', dir, '--log-level', 'warn', ...addrs], 15_000);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(`beacon: unavailable: cannot listen for ${listener.toUpperCase()} on 127.0.0.1:${port}: the address is already in use (choose another with --${listener}-addr)\n`);
        // Nothing logged as an error on the way out (was: four 'mirror watch failed' stack traces).
        expect(r.stdout).toBe('');
        // Start-up included: the process used to linger for ~9 s after the failure.
        expect(r.tookMs).toBeLessThan(5_000);
      } finally {
        holder.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
