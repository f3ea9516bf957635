import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, freePort, spawnServer, type RunningProcess } from './helpers.js';
import { commandsOf, consoleBlocks, essentials, rewriteBlocks } from './transcript.js';

/**
 * docs/federation.md's walk-through, replayed against three real servers started as the document
 * starts them (on free ports, written back as the document's): every console block's commands run
 * in order, eu-west is stopped between the first block and the second (as the text says), and the
 * output must match in everything but round-trip times, ages and the order of equally near DCs.
 *
 *   BEACON_WRITE_DOCS=1 npx vitest run packages/cli/test/federation-docs.test.ts
 * rewrites the transcripts from a real run.
 */
const DOC = fileURLToPath(new URL('../../../docs/federation.md', import.meta.url));
const DOC_PORTS = { us: 18500, eu: 18510, ap: 18520, dns: 18600 };

/** The programs the walk-through runs besides beacon. */
const missing = ['dig', 'jq', 'curl'].filter((cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
if (missing.length) console.log(`docs/federation.md replay skipped: ${missing.join(', ')} not on PATH`);

describe.skipIf(missing.length > 0)('docs/federation.md: the three-datacenter walk-through', () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-fed-docs-'));
  let eu: RunningProcess;
  let ap: RunningProcess;
  let us: RunningProcess;
  let ports: typeof DOC_PORTS;

  beforeAll(async () => {
    // `beacon` on PATH, as the reader has it.
    writeFileSync(join(dir, 'beacon'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(dir, 'beacon'), 0o755);
    eu = await spawnServer(['--dev', '--datacenter', 'eu-west', '--no-dns']);
    ap = await spawnServer(['--dev', '--datacenter', 'ap-south', '--no-dns']);
    const dns = await freePort();
    us = await spawnServer([
      '--dev',
      '--datacenter',
      'us-east',
      '--dns-addr',
      `127.0.0.1:${dns}`,
      '--federate',
      `eu-west=${eu.url}`,
      '--federate',
      `ap-south=${ap.url}`,
      '--failover',
      'web=nearest:2',
      '--federate-ping-interval',
      '1s',
    ]);
    ports = { us: portOf(us.url), eu: portOf(eu.url), ap: portOf(ap.url), dns };
    // Both views have arrived, with their round-trip times.
    for (const end = Date.now() + 10_000; Date.now() < end; ) {
      const dcs = (await (await fetch(`${us.url}/api/v1/datacenters`)).json()) as { synced: boolean; rttMs?: number }[];
      if (dcs.every((d) => d.synced && d.rttMs !== undefined)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    await us?.stop();
    await ap?.stop();
    await eu?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints what the transcript shows', async () => {
    const doc = readFileSync(DOC, 'utf8');
    const blocks = consoleBlocks(doc);
    expect(blocks.length).toBe(2);
    const actual: { command: string; expected: string; actual: string }[][] = [];
    for (const [b, block] of blocks.entries()) {
      if (b === 1) {
        await eu.stop();
        // "A moment later": its pings have failed.
        for (const end = Date.now() + 10_000; Date.now() < end; ) {
          const dcs = (await (await fetch(`${us.url}/api/v1/datacenters`)).json()) as { name: string; rttMs?: number }[];
          if (dcs.find((d) => d.name === 'eu-west')?.rttMs === undefined) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const steps = [];
      for (const { command, expected } of commandsOf(block)) steps.push({ command, expected, actual: await run(command) });
      actual.push(steps);
    }
    if (process.env.BEACON_WRITE_DOCS === '1') {
      writeFileSync(DOC, rewriteBlocks(doc, blocks, actual));
      return;
    }
    for (const step of actual.flat()) expect(normal(step.command, step.actual), `$ ${step.command}`).toBe(normal(step.command, step.expected));
  });

  /** Runs a documented command through sh with the document's ports mapped to the test's, and back. */
  function run(command: string): Promise<string> {
    const toTest = (s: string) =>
      s
        .replaceAll(`127.0.0.1:${DOC_PORTS.eu}`, `127.0.0.1:${ports.eu}`)
        .replaceAll(`127.0.0.1:${DOC_PORTS.ap}`, `127.0.0.1:${ports.ap}`)
        .replaceAll(`127.0.0.1:${DOC_PORTS.us}`, `127.0.0.1:${ports.us}`)
        .replaceAll(`-p ${DOC_PORTS.dns}`, `-p ${ports.dns} +time=2 +tries=1`);
    const toDoc = (s: string) =>
      s
        .replaceAll(`127.0.0.1:${ports.eu}`, `127.0.0.1:${DOC_PORTS.eu}`)
        .replaceAll(`127.0.0.1:${ports.ap}`, `127.0.0.1:${DOC_PORTS.ap}`)
        .replaceAll(`127.0.0.1:${ports.us}`, `127.0.0.1:${DOC_PORTS.us}`);
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, BEACON_HTTP_ADDR: `http://127.0.0.1:${ports.us}` };
    return new Promise((resolve) => execFile('sh', ['-c', toTest(command)], { env, timeout: 15_000 }, (_e, stdout, stderr) => resolve(toDoc(stdout + stderr))));
  }
});

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** What must match: everything but measured times, ages, and the order of DCs of equal standing. */
function normal(command: string, text: string): string {
  const lines = essentials(command, text)
    .replace(/\b\d+(\.\d+)?ms\b/g, '<rtt>')
    .replace(/stale \d+s/g, 'stale <age>')
    .replace(/(x-beacon-stale-age:) [\d.]+/gi, '$1 <age>')
    .split('\n');
  return (command.startsWith('beacon datacenters') ? lines.sort() : lines).join('\n');
}
