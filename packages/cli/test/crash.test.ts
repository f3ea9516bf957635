import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'beacon-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('durability', () => {
  it('keeps every acknowledged registration without a lease across a SIGKILL', async () => {
    const first = await spawnServer(['--data-dir', dir]);
    const acknowledged: string[] = [];
    let stop = false;
    // Eight writers register as fast as they can; the server is killed under them.
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let k = 0; !stop && k < 5_000; k++) {
        try {
          const res = await fetch(`${first.url}/api/v1/instances`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ service: 'crash', address: `10.${w}.${k >> 8}.${k & 255}`, port: 80 }),
          });
          if (res.status === 200) acknowledged.push(((await res.json()) as { instance: { id: string } }).instance.id);
          else await res.body?.cancel();
        } catch {
          return; // the server is gone
        }
      }
    });
    while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 5));
    first.proc.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await first.stop();

    const second = await spawnServer(['--data-dir', dir]);
    try {
      const res = await fetch(`${second.url}/api/v1/services/crash/instances`);
      const body = (await res.json()) as { instances: { id: string }[] };
      const present = new Set(body.instances.map((i) => i.id));
      const lost = acknowledged.filter((id) => !present.has(id));
      expect(acknowledged.length).toBeGreaterThanOrEqual(300);
      expect(lost).toEqual([]);
    } finally {
      await second.stop();
    }
  });
});
