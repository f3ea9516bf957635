import { readFileSync } from 'node:fs';
import { LIMITS, systemClock, type CheckSpec } from '@beacon/core';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckRunners } from './factory.js';
import { exitCodeToCheck } from './script.js';
import { CheckDialer } from '../dial.js';
import { CheckTargetPolicy } from '../target-policy.js';

/** The real run-time gate, with the default policy (loopback is a fine target for these tests). */
const dial = new CheckDialer(new CheckTargetPolicy()).dial;

const node = process.execPath;

function spec(args: string[], timeoutMs = 5000): CheckSpec {
  return {
    id: 's1', name: 's1', kind: 'script', role: 'liveness', args, timeoutMs,
    successesBeforePassing: 1, failuresBeforeWarning: 1, failuresBeforeCritical: 1,
  };
}

describe('script check runner (real processes)', () => {
  const runners = new CheckRunners({ clock: systemClock, dial, enableScriptChecks: true });
  afterAll(() => runners.close());

  it('maps exit codes: 0 passing, 1 warning, else critical', () => {
    expect(exitCodeToCheck(0)).toBe('passing');
    expect(exitCodeToCheck(1)).toBe('warning');
    expect(exitCodeToCheck(2)).toBe('critical');
    expect(exitCodeToCheck(null)).toBe('critical');
  });

  it('refuses to build a script runner unless script checks are enabled', async () => {
    const off = new CheckRunners({ clock: systemClock, dial });
    expect(() => off.create(spec([node, '-e', '0']))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    await off.close();
  });

  it('exit 0 is passing, with stdout and stderr in the output', async () => {
    const r = await runners.create(spec([node, '-e', 'process.stdout.write("up "); process.stderr.write("and running")'])).run();
    expect(r.status).toBe('passing');
    expect(r.output).toContain('up ');
    expect(r.output).toContain('and running');
  });

  it('exit 1 is warning, exit 2 critical', async () => {
    expect((await runners.create(spec([node, '-e', 'process.exit(1)'])).run()).status).toBe('warning');
    expect((await runners.create(spec([node, '-e', 'process.exit(2)'])).run()).status).toBe('critical');
  });

  it('runs without a shell: metacharacters are plain arguments', async () => {
    const r = await runners.create(spec([node, '-e', 'console.log(process.argv[1])', '$(echo pwned); echo x'])).run();
    expect(r.status).toBe('passing');
    expect(r.output.trim()).toBe('$(echo pwned); echo x');
  });

  it('a missing program is critical', async () => {
    const r = await runners.create(spec(['/nonexistent/beacon-check'])).run();
    expect(r.status).toBe('critical');
    expect(r.output).toContain('ENOENT');
  });

  it('a command that outlives its timeout is killed and critical', async () => {
    const r = await runners.create(spec([node, '-e', 'console.log("started"); setTimeout(() => {}, 60000)'], 300)).run();
    expect(r.status).toBe('critical');
    expect(r.output).toMatch(/^Timed out \(300 ms\) running check/);
  });

  it('kills the whole process group on timeout, children included', async () => {
    // The child spawns a grandchild that keeps the pipes open and prints its pid.
    const script =
      'const c = require("child_process").spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "inherit" });' +
      'console.log("grandchild " + c.pid); setTimeout(() => {}, 60000);';
    const r = await runners.create(spec([node, '-e', script], 1500)).run();
    expect(r.status).toBe('critical');
    const pid = Number(/grandchild (\d+)/.exec(r.output)?.[1]);
    expect(pid).toBeGreaterThan(0);
    // SIGKILL is delivered at once; the orphan then shows as gone, or as a zombie when this
    // container's init does not reap orphans.
    const state = (): string => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      } catch {
        return 'gone';
      }
    };
    // Tearing a killed process down can take a while on a loaded machine; allow a few seconds.
    let last = state();
    for (let i = 0; i < 100 && last !== 'gone' && last !== 'Z'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      last = state();
    }
    const alive = last !== 'gone' && last !== 'Z';
    expect(alive, `grandchild ${pid} state ${last}`).toBe(false);
  });

  it('caps a flood of output without failing the check', async () => {
    const r = await runners.create(spec([node, '-e', 'process.stdout.write("y".repeat(1 << 20))'])).run();
    expect(r.status).toBe('passing');
    expect(Buffer.byteLength(r.output)).toBe(LIMITS.checkOutput);
  });
});
