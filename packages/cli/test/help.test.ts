import { describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/main.js';
import { commandPath } from '../src/examples.js';
import { beacon } from './helpers.js';

const onPath = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const every = (c: Command): Command[] => [c, ...c.commands.flatMap(every)];
const paths = every(buildProgram()).map(commandPath);

/** Runs `script` in bash, or fails with what bash said. */
function bash(script: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['--norc', '--noprofile', '-c', script], { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(stderr || String(err))) : resolve(stdout))),
  );
}

describe('help, completion and the man page come from the command definitions', () => {
  it('every command prints examples after its --help', async () => {
    expect(paths).toEqual(expect.arrayContaining(['kv get', 'kv put', 'members', 'completion', 'man', 'server', 'agent']));
    // A few at a time: one by one, the ~30 process starts outlast the timeout on a loaded machine.
    for (let i = 0; i < paths.length; i += 4) {
      const batch = paths.slice(i, i + 4);
      const runs = await Promise.all(batch.map((path) => beacon([...(path ? path.split(' ') : []), '--help'])));
      runs.forEach((r, j) => {
        expect(r.code, `beacon ${batch[j]} --help`).toBe(0);
        expect(r.stdout, `beacon ${batch[j]} --help`).toMatch(/\nExamples:\n {2}\$ beacon /);
      });
    }
  }, 60_000);

  it('a command group without its subcommand prints its help and exits 2', async () => {
    const r = await beacon(['kv']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: beacon kv \[options\] \[command\]\n[\s\S]*Examples:\n[\s\S]*\n$/);
    expect(r.stderr).not.toMatch(/invalid_argument/);
  });

  it.skipIf(!onPath('bash'))('the bash completion is valid bash and completes commands, subcommands and option values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-completion-'));
    try {
      const file = join(dir, 'beacon.bash');
      writeFileSync(file, (await beacon(['completion', 'bash'])).stdout);
      await bash(`bash -n ${file}`);
      const complete = (...words: string[]) =>
        bash(`source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _beacon; printf '%s\\n' "\${COMPREPLY[@]}"`).then((o) => o.trim().split('\n'));
      expect(await complete('beacon', 'k')).toEqual(['kv']);
      expect(await complete('beacon', 'kv', '')).toEqual(expect.arrayContaining(['get', 'list', 'put', 'delete']));
      expect(await complete('beacon', '--server', 'http://x', 'kv', 'put', 'k', 'v', '--c')).toEqual(['--cas', '--ca', '--cert']);
      expect(await complete('beacon', 'instances', 'web', '-o', '')).toEqual(['table', 'wide', 'json', 'yaml']);
      expect(await complete('beacon', 'completion', '')).toEqual(expect.arrayContaining(['bash', 'zsh']));
      expect(await complete('beacon', 'events', '--kind', 'dereg')).toEqual(['deregistered']);
      // A free value (here a URL) is not completed with command names.
      expect(await complete('beacon', '--server', '')).toEqual(['']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!onPath('zsh'))('the zsh completion is valid zsh and offers the same words', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-completion-'));
    try {
      const file = join(dir, '_beacon');
      writeFileSync(file, (await beacon(['completion', 'zsh'])).stdout);
      execFileSync('zsh', ['-n', file]);
      // compadd stubbed to print what it is given (zsh itself then filters by what was typed).
      const offered = (...words: string[]) =>
        execFileSync('zsh', ['-f', '-c', `compadd() { shift; print -l -- "$@"; }; _files() { print -- '<files>'; }; compdef() { :; }; source ${file}; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _beacon`])
          .toString()
          .trim()
          .split('\n');
      expect(offered('beacon', 'k')).toContain('kv');
      expect(offered('beacon', 'kv', '')).toEqual(expect.arrayContaining(['get', 'list', 'put', 'delete']));
      expect(offered('beacon', 'instances', 'web', '-o', '')).toEqual(['table', 'wide', 'json', 'yaml']);
      expect(offered('beacon', '--server', '')).toEqual(['<files>']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  if (!onPath('zsh')) console.warn('skipping the zsh syntax check: no zsh on PATH');

  it.skipIf(!onPath('groff'))('the man page renders without warnings and names every command', async () => {
    const roff = (await beacon(['man'])).stdout;
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-P', '-cbou'], { input: roff });
    expect(r.stderr.toString()).toBe('');
    const text = r.stdout.toString();
    expect(text).toMatch(/^BEACON\(1\)/);
    for (const path of paths.filter(Boolean)) expect(text, path).toContain(`beacon ${path} `);
    expect(text).toContain('$ beacon kv put config/web/replicas 4 --cas 17');
  });
  if (!onPath('groff')) console.warn('skipping the man page rendering: no groff on PATH');
});
