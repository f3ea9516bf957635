import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, beacon, spawnServer } from './helpers.js';

let server: Awaited<ReturnType<typeof spawnServer>>;
const dir = mkdtempSync(join(tmpdir(), 'beacon-kv-'));
beforeAll(async () => {
  server = await spawnServer(['--dev']);
});
afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI with `input` on its standard input. */
function withStdin(args: string[], input: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

describe('beacon kv', () => {
  it('writes from an argument, a file and stdin; reads, lists and deletes; values round-trip byte for byte', async () => {
    const s = ['--server', server.url];
    expect((await beacon([...s, 'kv', 'put', 'app/name', 'beacon'])).stdout).toBe('wrote app/name (6 bytes)\n');
    const file = join(dir, 'cert.pem');
    writeFileSync(file, 'line 1\nline 2\n');
    expect((await beacon([...s, 'kv', 'put', 'app/cert', `@${file}`])).stdout).toBe('wrote app/cert (14 bytes)\n');
    const binary = Buffer.from([0, 255, 1, 254]);
    expect((await withStdin([...s, 'kv', 'put', 'app/bin', '-'], binary)).stdout).toBe('wrote app/bin (4 bytes)\n');

    expect((await beacon([...s, 'kv', 'get', 'app/name'])).stdout).toBe('beacon\n');
    expect((await beacon([...s, 'kv', 'get', 'app/cert'])).stdout).toBe('line 1\nline 2\n');
    const bin = JSON.parse((await beacon([...s, 'kv', 'get', 'app/bin', '-o', 'json'])).stdout);
    expect(bin).toMatchObject({ key: 'app/bin', value: null, valueBase64: binary.toString('base64') });

    const list = await beacon([...s, 'kv', 'list', 'app/']);
    expect(list.stdout.split('\n')[0]).toMatch(/^KEY\s+MODIFY-INDEX\s+VALUE$/);
    expect(list.stdout).toMatch(/app\/bin\s+\d+\s+\(4 bytes, not text\)/);
    expect(list.stdout).toMatch(/app\/cert\s+\d+\s+line 1\n/);
    expect((await beacon([...s, 'kv', 'get', '--recurse', 'app/', '--no-headers', '-o', 'wide'])).stdout.trim().split('\n')).toHaveLength(3);
    expect((await beacon([...s, '-o', 'yaml', 'kv', 'get', 'app/name'])).stdout).toMatch(/^key: app\/name\nvalue: beacon\n/);

    expect((await beacon([...s, 'kv', 'delete', 'app/name'])).stdout).toBe('deleted app/name\n');
    const gone = await beacon([...s, 'kv', 'get', 'app/name']);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toBe('beacon: not_found: key app/name does not exist\n');
    expect((await beacon([...s, 'kv', 'delete', '--recurse', 'app/'])).code).toBe(0);
    expect((await beacon([...s, 'kv', 'list'])).stdout).toBe('no keys under ""\n');
  });

  it('--cas writes only over the index read, and refuses otherwise without changing the value', async () => {
    const s = ['--server', server.url];
    expect((await beacon([...s, 'kv', 'put', 'cas/k', 'one', '--cas', '0'])).code).toBe(0);
    const again = await beacon([...s, 'kv', 'put', 'cas/k', 'two', '--cas', '0']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/precondition_failed: cas\/k already exists/);
    const { modifyIndex } = JSON.parse((await beacon([...s, '--json', 'kv', 'get', 'cas/k'])).stdout);
    expect((await beacon([...s, 'kv', 'put', 'cas/k', 'two', '--cas', String(modifyIndex)])).code).toBe(0);
    const stale = await beacon([...s, '--json', 'kv', 'put', 'cas/k', 'three', '--cas', String(modifyIndex)]);
    expect(stale.code).toBe(1);
    expect(JSON.parse(stale.stderr).error.code).toBe('precondition_failed');
    expect((await beacon([...s, 'kv', 'delete', 'cas/k', '--cas', String(modifyIndex)])).code).toBe(1);
    expect((await beacon([...s, 'kv', 'get', 'cas/k'])).stdout).toBe('two\n');
  });

  it('names what is wrong with a value it cannot read, and sends nothing', async () => {
    const r = await beacon(['--server', server.url, 'kv', 'put', 'x/y', `@${join(dir, 'missing')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid_argument: cannot read .*missing: ENOENT/);
    expect((await beacon(['--server', server.url, 'kv', 'get', 'x/y'])).code).toBe(4);
  });
});
