import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { beacon, spawnServer, type RunningProcess } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'beacon-snap-'));
const running: RunningProcess[] = [];

afterAll(async () => {
  for (const p of running) await p.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

async function server(name: string): Promise<string[]> {
  const p = await spawnServer(['--data-dir', join(dir, name)]);
  running.push(p);
  return ['--server', p.url];
}

describe('beacon snapshot', () => {
  it('saves from a running server with an on-disk store and restores into a fresh one; refuses a damaged file', async () => {
    const a = await server('a');
    expect((await beacon([...a, 'register', '-s', 'web', '-a', '127.0.0.1', '-p', '8080', '--ttl', '30s'])).code).toBe(0);
    const file = join(dir, 'backup.snap');
    const saved = await beacon([...a, 'snapshot', 'save', file]);
    expect(saved.stderr).toBe('');
    expect(saved.stdout).toMatch(/^saved \d+ keys and 1 leases at revision \d+ to .*backup\.snap \(\d+ bytes\)\n$/);

    const b = await server('b');
    const restored = await beacon([...b, 'snapshot', 'restore', file]);
    expect(restored.stderr).toBe('');
    expect(restored.stdout).toMatch(/^restored \d+ keys and 1 leases \(snapshot revision \d+\) from .*; the store is now at index \d+\n$/);
    expect((await beacon([...b, 'instances', 'web'])).stdout).toMatch(/web-127\.0\.0\.1-8080\s+127\.0\.0\.1:8080\s+passing\s+yes/);

    const bytes = readFileSync(file);
    const truncated = join(dir, 'truncated.snap');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 20));
    const bad = await beacon([...b, 'snapshot', 'restore', truncated]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^beacon: invalid_argument: not a valid Beacon snapshot: the checksum line at its end is missing \(the file is truncated\)\n$/);
    const missing = await beacon([...b, 'snapshot', 'restore', join(dir, 'nope.snap')]);
    expect(missing.stderr).toMatch(/invalid_argument: cannot read .*nope\.snap: ENOENT/);
  });
});
