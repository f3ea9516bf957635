import { execFile, spawn } from 'node:child_process';
import { BIN } from './helpers.js';

/**
 * Replays the ```console blocks of a document against a real server and reports what the
 * product printed, so a doc transcript can be compared with (or rewritten from) a real run.
 */

export interface Block {
  /** Offsets of the block's body in the document. */
  start: number;
  end: number;
  body: string;
}

export interface Step {
  command: string;
  expected: string;
  actual: string;
}

export interface Target {
  httpUrl: string;
  dnsPort: number;
}

export function consoleBlocks(doc: string): Block[] {
  const out: Block[] = [];
  for (const m of doc.matchAll(/```console\n([\s\S]*?)```/g)) {
    const start = m.index + '```console\n'.length;
    out.push({ start, end: start + m[1]!.length, body: m[1]! });
  }
  return out;
}

/** The document with each console block's transcript replaced by what a run printed (`BEACON_WRITE_DOCS=1`). */
export function rewriteBlocks(doc: string, blocks: readonly Block[], actual: readonly (readonly { command: string; actual: string }[])[]): string {
  let out = doc;
  for (let b = blocks.length - 1; b >= 0; b--) {
    const body = actual[b]!.map((s) => `$ ${s.command}\n${s.actual}`).join('');
    out = out.slice(0, blocks[b]!.start) + body + out.slice(blocks[b]!.end);
  }
  return out;
}

/** A block's commands (`$ …`) with the lines printed after each. */
export function commandsOf(block: Block): { command: string; expected: string }[] {
  const out: { command: string; expected: string }[] = [];
  for (const line of block.body.split('\n')) {
    if (line.startsWith('$ ')) out.push({ command: line.slice(2), expected: '' });
    else if (out.length && line !== '') out.at(-1)!.expected += line + '\n';
  }
  return out;
}

/** Splits a command line the way sh would for the simple quoting a document uses. */
export function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** The program and arguments to run for a documented command, pointed at `target`. */
export function argvFor(command: string, target: Target): { file: string; args: string[] } {
  const w = words(command);
  const beaconArgs = w[0] === 'npx' && w[1] === 'beacon' ? w.slice(2) : w[0] === 'beacon' ? w.slice(1) : undefined;
  if (beaconArgs) {
    if (beaconArgs[0] === 'server') {
      // A documented server start: on the test's own (busy) HTTP address, DNS on a free port,
      // and nothing written to the working directory.
      const args = beaconArgs.map((a, k) => (beaconArgs[k - 1] === '--http-addr' ? new URL(target.httpUrl).host : a));
      return { file: process.execPath, args: [BIN, ...args, '--dns-addr', '127.0.0.1:0', '--dev'] };
    }
    return { file: process.execPath, args: [BIN, '--server', target.httpUrl, ...beaconArgs] };
  }
  if (w[0] === 'dig') {
    const args = w.slice(1);
    const p = args.indexOf('-p');
    if (p >= 0) args[p + 1] = String(target.dnsPort);
    return { file: 'dig', args: [...args, '+time=2', '+tries=1'] };
  }
  throw new Error(`cannot replay ${JSON.stringify(command)}`);
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a documented command (`a | b` pipes through sh) and returns what it printed, the test's addresses written back as documented. */
export function runCommand(command: string, target: Target, env: Record<string, string> = {}): Promise<string> {
  const bar = command.indexOf(' | ');
  const { file, args } = argvFor(bar < 0 ? command : command.slice(0, bar), target);
  const [f, a] = bar < 0 ? [file, args] : ['sh', ['-c', `${[file, ...args].map(shellQuote).join(' ')} ${command.slice(bar + 1)}`]];
  return new Promise((resolve) =>
    execFile(f, a, { timeout: 15_000, env: { ...process.env, ...env } }, (_err, stdout, stderr) => resolve((stdout + stderr).replaceAll(new URL(target.httpUrl).host, '127.0.0.1:8500'))),
  );
}

/** Starts a long-running documented command (`watch`); `stop()` ends it and returns what it printed. */
export function startCommand(command: string, target: Target): { output(): string; stop(): Promise<string> } {
  const { file, args } = argvFor(command, target);
  const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    output: () => out,
    async stop() {
      proc.kill('SIGINT');
      await exited;
      return out;
    },
  };
}

/**
 * What a transcript must keep: ids, indexes, statuses, ready flags, headers and answers. Times,
 * ages and lease remainders change from run to run, column widths follow them, and DNS answers
 * come in a shuffled order.
 */
export function essentials(command: string, text: string): string {
  let lines = text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/\b\d[\dhms]* ago\b/g, '<ago>')
    .replace(/\b\d[\dhms]* left of\b/g, '<left> of')
    .split('\n')
    .map((l) => l.replace(/ {2,}/g, '  ').trimEnd())
    .filter((l) => l !== '');
  if (words(command)[0] === 'dig') lines = lines.sort();
  return lines.join('\n');
}
