import { connect } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, beacon, freePort, startServing } from './helpers.js';

/**
 * Safe by default: `beacon server` refuses a non-loopback HTTP or DNS address without
 * `--insecure-open`, and with it says so in its log and status. Traffic goes only to 127.0.0.1
 * (a server on 0.0.0.0 answers there too).
 */
const dir = mkdtempSync(join(tmpdir(), 'beacon-exposure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether anything accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

describe('beacon server on a non-loopback address', () => {
  it('refuses 0.0.0.0 for HTTP without --insecure-open: exit 2, one line naming the address and the flag, nothing listening', async () => {
    const port = await freePort();
    const r = await beacon(['server', '--dev', '--http-addr', `0.0.0.0:${port}`, '--dns-addr', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `beacon: invalid_argument: refusing to listen for HTTP on 0.0.0.0:${port}: not a loopback address and access control is off, so anyone who reaches it can change the catalog; pass --acl to require tokens, or --insecure-open to serve it anyway\n`,
    );
    expect(await listening(port)).toBe(false);
  });

  it('refuses :: for DNS the same way, and names both when both are open', async () => {
    const dns = await beacon(['server', '--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', '[::]:0']);
    expect(dns.code).toBe(2);
    expect(dns.stderr).toMatch(/^beacon: invalid_argument: refusing to listen for DNS on \[::\]:0: .*--insecure-open/);
    const both = await beacon(['server', '--dev', '--http-addr', '0.0.0.0:0', '--dns-addr', '0.0.0.0:0']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/refusing to listen for HTTP on 0\.0\.0\.0:0 and DNS on 0\.0\.0\.0:0: /);
    // Loopback in every spelling is fine: it starts (and --print-config proves the flags parse) without the flag.
    const local = await beacon(['server', '--http-addr', 'localhost:0', '--dns-addr', '[::1]:0', '--print-config']);
    expect(local.code).toBe(0);
  });

  it('serves with insecure-open from the config file, warning in the log, in /api/v1/status and in beacon status', async () => {
    const port = await freePort();
    const config = join(dir, 'open.yaml');
    writeFileSync(config, 'insecure-open: true\ndns-addr: 0.0.0.0:0\n');
    const url = `http://127.0.0.1:${port}`;
    const server = await startServing(process.execPath, [BIN, 'server', '--dev', '--config', config, '--http-addr', `0.0.0.0:${port}`, '--log-format', 'json'], url);
    try {
      const status = (await (await fetch(`${url}/api/v1/status`)).json()) as { insecureOpen: boolean; warnings: string[] };
      expect(status.insecureOpen).toBe(true);
      expect(status.warnings).toEqual([
        `HTTP listens on 0.0.0.0:${port} without access control (--insecure-open): anyone who reaches it can read and change everything`,
        'DNS listens on 0.0.0.0:0 without access control (--insecure-open): anyone who reaches it can read and change everything',
      ]);
      const log = server.stdout().split('\n').filter((l) => l.includes('INSECURE')).map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(log.map((l) => l.msg)).toEqual(status.warnings.map((w) => `INSECURE: ${w}`));
      expect(log.every((l) => l.level === 40)).toBe(true);
      const text = await beacon(['status', '--server', url]);
      expect(text.stdout).toContain(`WARNING: HTTP listens on 0.0.0.0:${port} without access control`);
      expect(text.stdout).toContain('WARNING: DNS listens on 0.0.0.0:0 without access control');
    } finally {
      await server.stop();
    }
  });
});
