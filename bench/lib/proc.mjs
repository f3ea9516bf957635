// Shared by the benchmarks: child processes that are always stopped, waiting for readiness, and
// the CPU / memory / latency figures every benchmark reports the same way.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

// Every process started here is killed when the benchmark exits, however it exits.
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * Starts `node argv…`, keeping its output (`lines`) and the last 30 lines (`tail`) for error messages.
 * `via` runs node under another program (`['valgrind', '--tool=callgrind', …]`); the child's pid is
 * then that program's, which for valgrind is also the guest's.
 */
export function spawnNode(name, argv, { via = [] } = {}) {
  const [cmd, ...pre] = [...via, process.execPath];
  const child = spawn(cmd, [...pre, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines = [];
  const tail = [];
  const keep = (d) => {
    for (const l of String(d).split('\n')) {
      if (!l) continue;
      lines.push(l);
      tail.push(l);
      if (tail.length > 30) tail.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('exit', () => children.delete(child));
  return { name, child, lines, tail };
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(p, graceMs = 15_000) {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const t = sleep(graceMs).then(() => 'timeout');
  if ((await Promise.race([exited, t])) === 'timeout') {
    p.child.kill('SIGKILL');
    await exited;
  }
}

export async function freePort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Polls `fn` until it returns something truthy; fails early when process `p` exits. */
export async function waitFor(what, fn, timeoutMs, p, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* not yet */
    }
    if (p && p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}) before ${what}:\n${p.tail.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${p ? `:\n${p.tail.join('\n')}` : ''}`);
    await sleep(intervalMs);
  }
}

/** User + system CPU time of a process, in ms (all its threads). */
export function procCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // CLK_TCK = 100
}

/**
 * CPU time in ms of a process (all its threads), to the nanosecond: the scheduler's run time from
 * /proc/PID/task/TID/schedstat. \`procCpuMs\` counts 10 ms ticks, too coarse for one fan-out of
 * ~100 ms. Threads that ended in between are not counted (a server's threads live as long as it).
 */
export function procCpuExactMs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended while we listed them
    }
  }
  return ns / 1e6;
}

/**
 * User + system CPU time, in ms, of a process and every process below it (a server and the
 * worker processes it forked): read from /proc, so it works for any program, not only node.
 */
export function treeCpuMs(pid) {
  const parents = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  let total = 0;
  const walk = (p) => {
    try {
      total += procCpuMs(p);
    } catch {
      return;
    }
    for (const [child, parent] of parents) if (parent === p) walk(child);
  };
  walk(pid);
  return total;
}

/** Resident memory now and at its peak, in MB; `anonMb` + `fileMb` (+ shmem) make up `rssMb`. */
export function procMemMb(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssMb: round(kb('VmRSS') / 1024), hwmMb: round(kb('VmHWM') / 1024), anonMb: round(kb('RssAnon') / 1024), fileMb: round(kb('RssFile') / 1024) };
}

/** Busy and total jiffies of the whole machine (all cores). */
export function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * CPU used over a phase, in % of one core: by the server `pid`, by the load generator (this
 * process, plus `loadgenPid` when it runs apart), and by everything else on the machine (other
 * work sharing the cores).
 */
export function cpuMeter(pid, loadgenPid) {
  const s0 = procCpuMs(pid);
  const g0 = loadgenPid ? procCpuMs(loadgenPid) : 0;
  const m0 = process.cpuUsage();
  const k0 = machineTicks();
  const t0 = performance.now();
  return () => {
    const wall = performance.now() - t0;
    const m = process.cpuUsage(m0);
    const k = machineTicks();
    const serverCpuPct = round(((procCpuMs(pid) - s0) / wall) * 100, 0);
    const apart = loadgenPid ? procCpuMs(loadgenPid) - g0 : 0;
    const loadgenCpuPct = round((((m.user + m.system) / 1000 + apart) / wall) * 100, 0);
    const machinePct = ((k.busy - k0.busy) / Math.max(1, k.total - k0.total)) * 100 * cpus().length;
    return { serverCpuPct, loadgenCpuPct, otherCpuPct: Math.max(0, round(machinePct - serverCpuPct - loadgenCpuPct, 0)) };
  };
}

/** The machine a run was measured on, for every benchmark's `conditions`. */
export function machine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGb: round(totalmem() / 2 ** 30, 1),
    loadAvgAtStart: loadavg().map((x) => round(x, 2)),
  };
}

export function round(x, digits = 2) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** n, min, p50, p99, max (nearest rank), rounded to `digits`. */
export function quantiles(values, digits = 2) {
  if (values.length === 0) return { n: 0, min: NaN, p50: NaN, p99: NaN, max: NaN };
  const a = Float64Array.from(values).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(p * a.length) - 1))];
  return { n: a.length, min: round(a[0], digits), p50: round(q(0.5), digits), p99: round(q(0.99), digits), max: round(a[a.length - 1], digits) };
}

/**
 * `beacon server` flags that lift the per-client limits: a bench drives thousands of writes and
 * watches a second from the one address 127.0.0.1, which the defaults (sized for one real client
 * per address) are meant to stop.
 */
export const UNLIMITED_CLIENT = [
  '--limit-write-rate', '0',
  '--limit-watch-rate', '0',
  '--limit-watches-per-client', '0',
  '--limit-blocking-per-client', '0',
  // Per-token buckets apply only with --acl; a bench sends everything with one token.
  '--limit-token-write-rate', '0',
  '--limit-token-watch-rate', '0',
];

/**
 * Bytes a process's V8 heap took in over the `--trace-gc` lines given: for each collection, the
 * heap before it minus the heap after the previous one (the first line only sets the start), in
 * the trace's 0.1 MB steps — over thousands of operations the rounding averages out.
 */
export function gcAllocation(lines) {
  let bytes = 0;
  let collections = 0;
  let after;
  for (const l of lines) {
    const m = /: (?:Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Sweep)\b[^\d]*([\d.]+) \([\d.]+\) -> ([\d.]+)/.exec(l);
    if (!m) continue;
    collections++;
    if (after !== undefined) bytes += Math.max(0, Number(m[1]) - after) * 1024 * 1024;
    after = Number(m[2]);
  }
  return { bytes, collections };
}
