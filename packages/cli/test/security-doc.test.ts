import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, spawnServer } from './helpers.js';
import { commandsOf, consoleBlocks, essentials, rewriteBlocks, runCommand, type Step, type Target } from './transcript.js';

/**
 * The ACL walkthrough of docs/security.md, replayed against a fresh `beacon server --acl`: after
 * `beacon acl bootstrap` the commands run with its SecretID in BEACON_TOKEN (as the page says to
 * export it), and `$SECRET` in a command stands for the SecretID `acl token create` printed last. Ids and secrets
 * differ from run to run, so UUIDs other than the built-in ones compare as `<uuid>`.
 *
 * After a deliberate change of output, rewrite the transcript from a real run:
 *   BEACON_WRITE_DOCS=1 npx vitest run packages/cli/test/security-doc.test.ts
 */
const PATH = fileURLToPath(new URL('../../../docs/security.md', import.meta.url));
const SECTION = '## Access control';

const anyUuid = (text: string) => text.replace(/\b(?!00000000-0000-0000-0000-00000000000\d)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>');

// Some twenty CLI runs one after another: generous on a loaded machine.
describe('docs/security.md: the access control walkthrough', { timeout: 60_000 }, () => {
  let server: Awaited<ReturnType<typeof spawnServer>>;
  let target: Target;
  beforeAll(async () => {
    server = await spawnServer(['--dev', '--acl']);
    target = { httpUrl: server.url, dnsPort: await freePort() };
  });
  afterAll(() => server.stop());

  it('prints what the transcript shows', async () => {
    const doc = readFileSync(PATH, 'utf8');
    const from = doc.indexOf(SECTION);
    const to = doc.indexOf('\n## ', from + SECTION.length);
    const blocks = consoleBlocks(doc).filter((b) => b.start > from && (to < 0 || b.end < to));
    const env: Record<string, string> = {};
    let secret = '';
    const actual: Step[][] = [];
    for (const block of blocks) {
      const steps: Step[] = [];
      actual.push(steps);
      for (const { command, expected } of commandsOf(block)) {
        const out = await runCommand(command.replaceAll('$SECRET', secret), target, env);
        steps.push({ command, expected, actual: out });
        const printed = /SecretID: +(\S+)/.exec(out)?.[1];
        if (printed && command.startsWith('beacon acl token create')) secret = printed;
        if (printed && command === 'beacon acl bootstrap') env.BEACON_TOKEN = printed;
      }
    }
    expect(actual.flat().length).toBeGreaterThanOrEqual(8);
    if (process.env.BEACON_WRITE_DOCS === '1') {
      writeFileSync(PATH, rewriteBlocks(doc, blocks, actual));
      return;
    }
    for (const step of actual.flat()) expect(anyUuid(essentials(step.command, step.actual)), `$ ${step.command}`).toBe(anyUuid(essentials(step.command, step.expected)));
  });
});
