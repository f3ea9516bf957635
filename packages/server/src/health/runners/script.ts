import { spawn } from 'node:child_process';
import type { CheckStatus, Clock } from '@beacon/core';
import { deadline } from '../deadline.js';
import { OutputBuffer } from '../output.js';
import type { CheckResult, CheckRunner } from '../types.js';
import { describeError, finish } from './result.js';

export interface ScriptCheckConfig {
  /** argv: the program and its arguments. Never run through a shell. */
  args: readonly string[];
  timeoutMs: number;
}

/** Nagios/Consul convention: 0 passing, 1 warning, anything else critical. */
export function exitCodeToCheck(code: number | null): CheckStatus {
  if (code === 0) return 'passing';
  if (code === 1) return 'warning';
  return 'critical';
}

/**
 * A script check. The command gets its own process group so a timeout kills it and anything
 * it started; stdout and stderr are merged and capped, the excess discarded without stopping
 * the command.
 */
export class ScriptCheckRunner implements CheckRunner {
  readonly kind = 'script' as const;

  constructor(
    private readonly config: ScriptCheckConfig,
    private readonly deps: { clock: Clock },
  ) {
    if (config.args.length === 0) throw new TypeError('script check needs at least a program');
  }

  run(signal?: AbortSignal): Promise<CheckResult> {
    const { clock } = this.deps;
    const { args, timeoutMs } = this.config;
    const at = clock.now();
    const d = deadline(clock, timeoutMs, signal);
    const out = new OutputBuffer();
    return new Promise<CheckResult>((resolve) => {
      let done = false;
      let exit: { code: number | null; sig: NodeJS.Signals | null } | undefined;
      const child = spawn(args[0]!, args.slice(1), { shell: false, stdio: ['ignore', 'pipe', 'pipe'], detached: true, windowsHide: true });
      const killGroup = (): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const end = (status: CheckStatus, output: string): void => {
        if (done) return;
        done = true;
        d.dispose();
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve(finish(clock, at, status, output));
      };
      child.stdout?.on('data', (c: Buffer) => out.push(c));
      child.stderr?.on('data', (c: Buffer) => out.push(c));
      child.once('error', (err) => end('critical', `failed to run ${JSON.stringify(args[0])}: ${describeError(err)}`));
      let abortedWhy: string | undefined;
      const abortedOutput = (): string => {
        const text = out.text();
        return text ? `${abortedWhy}\n${text}` : abortedWhy!;
      };
      child.once('exit', (code, sig) => {
        exit = { code, sig };
        // Killed on timeout: answer as soon as the process is gone, without waiting for pipes
        // that a descendant outside the group might still hold.
        if (abortedWhy) end('critical', abortedOutput());
      });
      // 'close' waits for the pipes too, so the output is complete.
      child.once('close', (code, sig) => {
        if (abortedWhy) return end('critical', abortedOutput());
        const c = exit?.code ?? code;
        const s = exit?.sig ?? sig;
        end(exitCodeToCheck(c), s && c === null ? `killed by ${s}\n${out.text()}` : out.text());
      });
      const onAbort = (): void => {
        // Kill the whole group: the command, and anything still holding its pipes open.
        killGroup();
        if (exit) {
          // It had finished; only its descendants kept the pipes open.
          end(exitCodeToCheck(exit.code), out.text());
          return;
        }
        abortedWhy = d.cause === 'timeout' ? `Timed out (${timeoutMs} ms) running check` : 'cancelled';
        if (child.pid === undefined) end('critical', abortedOutput());
      };
      if (d.signal.aborted) onAbort();
      else d.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
