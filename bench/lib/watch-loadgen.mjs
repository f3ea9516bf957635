// Drives watch-loadgen.c (see there for why it is C): builds it with the C compiler on first use,
// opens the streams, and for each write arms it with a token and reads back when each stream
// carried it. Times are CLOCK_MONOTONIC nanoseconds, the clock of process.hrtime.bigint().
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, 'watch-loadgen.c');
const binary = join(here, '..', 'results', '.build', 'watch-loadgen');

/** Path of the built generator, or a reason it could not be built. */
export function buildWatchLoadgen() {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return { binary };
  mkdirSync(dirname(binary), { recursive: true });
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', binary, source], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) return { reason: `${cc}: ${r.error.message}` };
  if (r.status !== 0) return { reason: `${cc} exited ${r.status}` };
  return { binary };
}

/**
 * Opens `count` watches on `127.0.0.1:port` `path` — `mode` 'sse' (event streams) or 'blocking'
 * (blocking queries re-armed with the answer's `indexHeader`) — and resolves once each has
 * started. `expect(token, send)` arms every watch, calls `send()` (the write), and resolves with
 * the generator's CPU and, per watch, when it carried the token (0n = never).
 */
export async function openCLoadgen(binary, { mode, port, path, count, indexHeader }) {
  const argv = [mode, String(port), path, String(count), ...(mode === 'blocking' ? [indexHeader] : [])];
  const child = spawn(binary, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  const early = [];
  let exited;
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : early.push(l)));
  child.on('exit', (code, signal) => {
    exited = `watch-loadgen exited ${code ?? signal}`;
    for (const w of waiting.splice(0)) w(`error ${exited}`);
  });
  const next = () =>
    new Promise((resolveLine, rejectLine) => {
      const take = (l) => (l.startsWith('error') ? rejectLine(new Error(`watch-loadgen: ${l.slice(6)}`)) : resolveLine(l));
      if (early.length) take(early.shift());
      else if (exited) rejectLine(new Error(exited));
      else waiting.push(take);
    });
  await next(); // ready
  return {
    pid: child.pid,
    async expect(token, send) {
      child.stdin.write(`expect ${token}\n`);
      await next(); // armed
      await send();
      const [, cpu, ...times] = (await next()).split(' ');
      return { cpuMs: Number(cpu), times: times.map((t) => BigInt(t)) };
    },
    close() {
      if (exited) return Promise.resolve();
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin.end('quit\n');
      const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
      return gone.finally(() => clearTimeout(kill));
    },
  };
}
