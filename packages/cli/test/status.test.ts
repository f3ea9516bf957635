import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusText } from '../src/commands/status.js';
import { beacon, spawnServer, type RunningProcess } from './helpers.js';

describe('beacon status', () => {
  let server: RunningProcess;
  beforeAll(async () => {
    server = await spawnServer(['--dev', '--node', 'status-node']);
  });
  afterAll(() => server?.stop());

  it("prints a live server's state and its readiness checks", async () => {
    const r = await beacon(['status', '--server', server.url]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^node:\s+status-node\n/);
    expect(r.stdout).toMatch(/^store:\s+embedded, index \d+$/m);
    expect(r.stdout).toMatch(/^catalog:\s+current$/m);
    expect(r.stdout).toMatch(/^ready:\s+yes$/m);
    expect(r.stdout).toMatch(/^ {2}\[\+\] listeners {2}listening: http, dns$/m);
    const json = await beacon(['--json', 'status', '--server', server.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ node: 'status-node', stale: false, readiness: { status: 'ready' }, insecureOpen: false, warnings: [] });
    expect(r.stdout).not.toMatch(/WARNING/);
  });

  it('says how long the catalog has been stale and which check fails', () => {
    const text = statusText({
      version: '0.1.0',
      node: 'n1',
      index: 7,
      store: 'etcd',
      uptimeMs: 90_000,
      services: 2,
      instances: 3,
      stale: true,
      staleForMs: 4_000,
      insecureOpen: true,
      warnings: ['HTTP listens on 0.0.0.0:8500 without access control (--insecure-open): anyone who reaches it can read and change everything'],
      readiness: {
        status: 'not_ready',
        checks: [
          { name: 'store', ok: false, reason: 'unreachable: no answer within 800ms' },
          { name: 'catalog', ok: false, reason: 'stale: its store watch could not be confirmed current' },
          { name: 'listeners', ok: true, reason: 'listening: http' },
        ],
      },
    });
    expect(text).toBe(
      [
        'node:     n1',
        'version:  0.1.0',
        'store:    etcd, index 7',
        'catalog:  STALE for 4s (reads may be behind the store)',
        'services: 2 (3 instances)',
        'uptime:   1m30s',
        'ready:    NO',
        '  [-] store      unreachable: no answer within 800ms',
        '  [-] catalog    stale: its store watch could not be confirmed current',
        '  [+] listeners  listening: http',
        'WARNING: HTTP listens on 0.0.0.0:8500 without access control (--insecure-open): anyone who reaches it can read and change everything',
        '',
      ].join('\n'),
    );
  });
});
