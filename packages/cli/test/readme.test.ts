import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnServer } from './helpers.js';
import { commandsOf, consoleBlocks, essentials, rewriteBlocks, runCommand, startCommand, words, type Step, type Target } from './transcript.js';

/**
 * The README's first ten minutes and the examples of docs/cli.md, each replayed against a fresh
 * server: every console block's commands run in order (`watch` in the background while the next
 * block runs) and their output must match the transcript in everything but times and ages.
 *
 * After a deliberate change of output, rewrite the transcripts from a real run:
 *   BEACON_WRITE_DOCS=1 npx vitest run packages/cli/test/readme.test.ts
 */
const ROOT = new URL('../../../', import.meta.url);

async function replay(doc: string, target: Target): Promise<{ blocks: ReturnType<typeof consoleBlocks>; actual: Step[][] }> {
  const blocks = consoleBlocks(doc);
  const actual: Step[][] = [];
  let background: { step: Step; run: ReturnType<typeof startCommand> } | undefined;
  for (const block of blocks) {
    const steps: Step[] = [];
    actual.push(steps);
    for (const { command, expected } of commandsOf(block)) {
      const step: Step = { command, expected, actual: '' };
      steps.push(step);
      if (words(command).includes('watch')) {
        // Runs while the next block changes things; its first answer (the reset) comes first.
        const run = startCommand(command, target);
        for (const end = Date.now() + 10_000; !run.output().includes('\n') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
        background = { step, run };
        continue;
      }
      step.actual = await runCommand(command, target);
    }
    if (background && background.step !== steps.at(-1)) {
      const want = background.step.expected.split('\n').filter(Boolean).length;
      const { run } = background;
      for (const end = Date.now() + 10_000; run.output().split('\n').filter(Boolean).length < want && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      background.step.actual = await run.stop();
      background = undefined;
    }
  }
  return { blocks, actual };
}

describe.each([
  ['README.md', 'the first ten minutes'],
  ['docs/cli.md', 'the client command examples'],
])('%s: %s', (file) => {
  const path = fileURLToPath(new URL(file, ROOT));
  let server: Awaited<ReturnType<typeof spawnServer>>;
  let target: Target;
  const dir = mkdtempSync(join(tmpdir(), 'beacon-docs-'));
  beforeAll(async () => {
    const dnsPort = await freePort();
    // As the README starts it: an embedded store in a fresh data directory.
    server = await spawnServer(['--data-dir', dir, '--dns-addr', `127.0.0.1:${dnsPort}`]);
    target = { httpUrl: server.url, dnsPort };
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Each step spawns the CLI (about 0.3 s on a quiet machine); docs/cli.md has dozens.
  it('prints what the transcript shows', { timeout: 90_000 }, async () => {
    const doc = readFileSync(path, 'utf8');
    const { blocks, actual } = await replay(doc, target);
    expect(actual.flat().length).toBeGreaterThanOrEqual(8);
    if (process.env.BEACON_WRITE_DOCS === '1') {
      writeFileSync(path, rewriteBlocks(doc, blocks, actual));
      return;
    }
    for (const step of actual.flat()) expect(essentials(step.command, step.actual), `$ ${step.command}`).toBe(essentials(step.command, step.expected));
  });
});
