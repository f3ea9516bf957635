#!/usr/bin/env node
// Health-check benchmark: `npm run bench -- health [--quick] [--checks N] [--window S] [--only scale,detect] [--out FILE]`.
//
// [scale]  10,000 HTTP checks at a 10 s interval, run in THIS process by the health engine the
//          server and the agent use (HealthScheduler + CheckRunners from @beacon/server, system
//          clock, default in-flight cap 1024, a fresh connection per run as Consul does), against
//          node:http servers on 50 ports of 127.0.0.1 in a separate process (so the checker's CPU is
//          its own). Checks start spread over one interval (as on a server start); after one
//          interval of warm-up, a window of three intervals is measured: CPU of the checker
//          (process.cpuUsage), CPU of the backends, check start lateness p50/p99 (RunTiming.lateMs
//          from the scheduler's onResult: the time between a run's planned tick and its start),
//          run durations, event-loop delay, the most runs ever queued behind the in-flight cap.
//          Then the same with HTTP keep-alive (CheckRunners' httpKeepAlive, not a server flag),
//          for half the window, to show what one TCP connection per run costs.
// [detect] The time from a backend starting to fail until its instance leaves the answers, through
//          the real server process (`beacon server --dev`): instances with an HTTP check on their own
//          port, each in its own service, watched with blocking queries (`?passing&index=…`). The
//          backend starts failing at a random point of the check interval; we record when it
//          starts failing, when the deciding (failuresBeforeCritical-th) failing probe reaches it,
//          and when the blocking query returns the instance gone. Two settings: 1 s × 3 failures
//          (4 rounds of 5 instances) and the 10 s × 3 (1 round of 5 instances).
// Prints a table and writes JSON to bench/results/health.json. Every process started here is
// stopped at the end, on error too.
import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, machineTicks, procCpuMs, quantiles, round, spawnNode, stopProcess, UNLIMITED_CLIENT, waitFor } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLI = join(root, 'packages/cli/bin/beacon.js');
for (const f of ['packages/server/dist/index.js', 'packages/cli/dist/main.js']) {
  if (!existsSync(join(root, f))) {
    console.error(`build first: npx tsc -b (missing ${f})`);
    process.exit(2);
  }
}
const { HealthScheduler, CheckRunners, CheckDialer, CheckTargetPolicy } = await import('@beacon/server');
const { systemClock, systemRandom } = await import('@beacon/core');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    checks: { type: 'string' },
    window: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
  },
});
const QUICK = args.quick;
const PHASES = ['scale', 'detect'];
const only = new Set(args.only ? args.only.split(',') : PHASES);
for (const p of only) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p} (phases: ${PHASES.join(', ')})`);
const CHECKS = Number(args.checks ?? (QUICK ? 2_000 : 10_000));
const INTERVAL_MS = 10_000;
const WINDOW_MS = Number(args.window ?? (QUICK ? 10 : 30)) * 1000;
const BACKEND_PORTS = 50;
const OUT = resolve(args.out ?? join(root, 'bench/results/health.json'));
const TARGETS = { lateP99Ms: 100, detectOverheadMs: 100 };

// ---- processes ---------------------------------------------------------------------------------








// ---- statistics --------------------------------------------------------------------------------



// ---- [scale] 10,000 checks in the health engine -------------------------------------------------

async function scale({ keepAlive, windowMs }) {
  const backends = spawnNode('backends', [join(here, 'backends.mjs'), String(BACKEND_PORTS)]);
  try {
    const { ports } = await waitFor(
      'backends to listen',
      () => {
        const line = backends.tail.find((l) => l.startsWith('{'));
        return line ? JSON.parse(line) : undefined;
      },
      10_000,
      backends,
    );
    const runners = new CheckRunners({ clock: systemClock, dial: new CheckDialer(new CheckTargetPolicy()).dial, httpKeepAlive: keepAlive });
    let measuring = false;
    const late = [];
    const durations = [];
    const statuses = { passing: 0, warning: 0, critical: 0 };
    let sampleFailure;
    let changes = 0;
    const scheduler = new HealthScheduler({
      clock: systemClock,
      random: systemRandom,
      runners,
      listener: {
        onStatusChange: () => {
          changes++;
        },
        onResult: (_id, result, timing) => {
          if (!measuring) return;
          late.push(timing.lateMs);
          durations.push(result.durationMs);
          statuses[result.status]++;
          if (result.status !== 'passing') sampleFailure ??= result.output;
        },
      },
    });
    const t0 = performance.now();
    for (let i = 0; i < CHECKS; i++) {
      const port = ports[i % ports.length];
      scheduler.add(
        {
          id: `bench-${i}`,
          name: `bench ${i}`,
          kind: 'http',
          role: 'liveness',
          url: `http://127.0.0.1:${port}/health/${i}`,
          method: 'GET',
          intervalMs: INTERVAL_MS,
          timeoutMs: 2_000,
          successesBeforePassing: 1,
          failuresBeforeWarning: 1,
          failuresBeforeCritical: 1,
        },
        { status: 'passing', start: 'spread' },
      );
    }
    const addMs = performance.now() - t0;
    console.error(`[scale${keepAlive ? ', keep-alive' : ''}] ${CHECKS} checks added in ${round(addMs, 0)} ms; warming up for one interval (${INTERVAL_MS / 1000} s)`);
    await sleep(INTERVAL_MS);

    console.error(`[scale] measuring for ${windowMs / 1000} s`);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const stats0 = scheduler.stats();
    const cpu0 = process.cpuUsage();
    const b0 = procCpuMs(backends.child.pid);
    const k0 = machineTicks();
    const w0 = performance.now();
    measuring = true;
    // Where lateness comes from: the in-flight cap (queued runs) or a busy event loop (late timers).
    let maxInFlight = 0;
    let maxQueued = 0;
    const perSecond = [];
    let lateFrom = 0;
    const sampler = setInterval(() => {
      const st = scheduler.stats();
      maxInFlight = Math.max(maxInFlight, st.inFlight);
      maxQueued = Math.max(maxQueued, st.queued);
    }, 50);
    for (let s = 0; s < windowMs / 1000; s++) {
      await sleep(1000);
      perSecond.push(quantiles(late.slice(lateFrom)).p99);
      lateFrom = late.length;
    }
    clearInterval(sampler);
    measuring = false;
    const wall = performance.now() - w0;
    const cpu = process.cpuUsage(cpu0);
    const backendCpuMs = procCpuMs(backends.child.pid) - b0;
    const k = machineTicks();
    const stats1 = scheduler.stats();
    loop.disable();
    await scheduler.close();
    await runners.close();

    const checkerCpuPct = ((cpu.user + cpu.system) / 1000 / wall) * 100;
    const backendCpuPct = (backendCpuMs / wall) * 100;
    const machinePct = ((k.busy - k0.busy) / Math.max(1, k.total - k0.total)) * 100 * cpus().length;
    const runs = stats1.runs - stats0.runs;
    return {
      engine: `in-process HealthScheduler + CheckRunners (@beacon/server), system clock, maxInFlight 1024 (the default), ${keepAlive ? 'HTTP keep-alive (CheckRunners httpKeepAlive: true; not a server flag)' : 'a fresh connection per run (the server default)'}`,
      keepAlive,
      checks: CHECKS,
      intervalMs: INTERVAL_MS,
      backendPorts: BACKEND_PORTS,
      windowMs: round(wall, 0),
      runs,
      runsPerSec: round(runs / (wall / 1000), 0),
      expectedRunsPerSec: round(CHECKS / (INTERVAL_MS / 1000), 0),
      skippedTicks: stats1.skipped - stats0.skipped,
      statuses,
      statusChanges: changes,
      sampleFailure,
      checkerCpuPct: round(checkerCpuPct, 1),
      checkerCpuUsPerRun: round(((cpu.user + cpu.system) / Math.max(1, runs)), 0),
      backendCpuPct: round(backendCpuPct, 1),
      otherCpuPct: round(Math.max(0, machinePct - checkerCpuPct - backendCpuPct), 0),
      lateMs: quantiles(late),
      durationMs: quantiles(durations),
      maxInFlight,
      maxQueued,
      lateP99PerSecondMs: perSecond,
      eventLoopDelayMs: { p50: round(loop.percentile(50) / 1e6, 2), p99: round(loop.percentile(99) / 1e6, 2), max: round(loop.max / 1e6, 2) },
      addMs: round(addMs, 0),
    };
  } finally {
    await stopProcess(backends);
  }
}

// ---- [detect] failure to out-of-answers, through the real server --------------------------------

async function api(base, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return { body: text ? JSON.parse(text) : undefined, index: Number(res.headers.get('x-beacon-index') ?? 0) };
}

/** A health endpoint on its own port that answers 503 once told to fail, noting when each failing probe arrived. */
async function flakyBackend() {
  const b = { failing: false, failedAt: 0, probes: [], server: undefined, port: 0 };
  b.server = createServer((req, res) => {
    if (b.failing) {
      b.probes.push(performance.now());
      res.writeHead(503).end('failing');
    } else res.writeHead(200).end('ok');
  });
  await new Promise((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = b.server.address().port;
  return b;
}

/** Blocks on the service's passing instances until `pred(count)` holds; returns when it did (performance.now()). */
async function watchUntil(base, service, pred, deadline) {
  let index = 0;
  for (;;) {
    const wait = Math.max(1, Math.min(30, Math.ceil((deadline - performance.now()) / 1000)));
    const r = await api(base, 'GET', `/api/v1/services/${service}/instances?passing&index=${index}&wait=${wait}s`);
    const at = performance.now();
    if (pred(r.body.instances.length)) return at;
    if (at > deadline) throw new Error(`${service}: still ${r.body.instances.length} passing after the deadline`);
    index = r.index;
  }
}

async function detect(base, { intervalMs, failures, instances, rounds, tag }) {
  const samples = [];
  for (let round = 0; round < rounds; round++) {
    const backends = await Promise.all(Array.from({ length: instances }, flakyBackend));
    // A fresh service per instance and round: flap damping never sees a history.
    const names = backends.map((_, k) => `bench-${tag}-r${round}-i${k}`);
    try {
      await Promise.all(
        backends.map((b, k) =>
          api(base, 'PUT', '/api/v1/instances', {
            service: names[k],
            address: '127.0.0.1',
            port: b.port,
            checks: [{ kind: 'http', url: `http://127.0.0.1:${b.port}/health`, intervalMs, timeoutMs: Math.min(1_000, intervalMs / 2), failuresBeforeCritical: failures }],
          }),
        ),
      );
      await Promise.all(names.map((n) => watchUntil(base, n, (c) => c === 1, performance.now() + 10_000)));
      const bound = intervalMs * (failures + 1) + 5_000;
      await Promise.all(
        backends.map(async (b, k) => {
          const watching = (async () => {
            // Armed before the failure starts, so the answer that drops the instance is caught as it is sent.
            await sleep(Math.random() * intervalMs);
            b.failing = true;
            b.failedAt = performance.now();
          })();
          const left = await watchUntil(base, names[k], (c) => c === 0, performance.now() + intervalMs + bound);
          await watching;
          const deciding = b.probes[failures - 1];
          samples.push({
            leaveMs: left - b.failedAt,
            decidingProbeMs: deciding === undefined ? NaN : deciding - b.failedAt,
            overheadMs: deciding === undefined ? NaN : left - deciding,
            probes: b.probes.length,
          });
        }),
      );
    } finally {
      await Promise.allSettled(names.map((n, k) => api(base, 'DELETE', `/api/v1/instances/${n}-127.0.0.1-${backends[k].port}`)));
      await Promise.all(backends.map((b) => new Promise((r) => b.server.close(r))));
    }
    console.error(`[detect ${tag}] round ${round + 1}/${rounds}: ${samples.slice(-instances).map((s) => round2(s.leaveMs)).join(', ')} ms`);
  }
  const budgetMs = intervalMs * failures + TARGETS.detectOverheadMs;
  return {
    intervalMs,
    failuresBeforeCritical: failures,
    samples: samples.length,
    budgetMs,
    leaveMs: quantiles(samples.map((s) => s.leaveMs)),
    decidingProbeMs: quantiles(samples.map((s) => s.decidingProbeMs)),
    overheadMs: quantiles(samples.map((s) => s.overheadMs)),
    withinBudget: samples.filter((s) => s.leaveMs <= budgetMs).length,
  };
}

const round2 = (x) => Math.round(x);

async function detection() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawnNode('server', [CLI, 'server', '--dev', '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--no-dns', ...UNLIMITED_CLIENT]);
  try {
    await waitFor('the server', async () => (await fetch(`${base}/api/v1/status`)).ok, 20_000, server);
    const out = [await detect(base, { intervalMs: 1_000, failures: 3, instances: 5, rounds: QUICK ? 1 : 4, tag: 'short' })];
    if (!QUICK) out.push(await detect(base, { intervalMs: 10_000, failures: 3, instances: 5, rounds: 1, tag: 'spec' }));
    return out;
  } finally {
    await stopProcess(server);
  }
}

// ---- main --------------------------------------------------------------------------------------

const started = performance.now();
const load0 = loadavg();
const result = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memGb: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadavgBefore: load0.map((x) => round(x, 2)),
    note: 'shared machine: other work (other helpers’ builds and tests) ran on the same 2 cores during the run; see otherCpuPct',
  },
  targets: TARGETS,
};
try {
  if (only.has('scale')) result.scale = await scale({ keepAlive: false, windowMs: WINDOW_MS });
  // The same load with connections reused: how much of the cost is one TCP connection per run.
  if (only.has('scale') && !QUICK) result.scaleKeepAlive = await scale({ keepAlive: true, windowMs: WINDOW_MS / 2 });
  if (only.has('detect')) result.detection = await detection();
} finally {
  result.machine.loadavgAfter = loadavg().map((x) => round(x, 2));
  result.durationS = round((performance.now() - started) / 1000, 0);
}

const rows = [];
for (const s of [result.scale, result.scaleKeepAlive].filter(Boolean)) {
  rows.push([`checker CPU (${s.checks} HTTP checks / ${s.intervalMs / 1000} s${s.keepAlive ? ', keep-alive' : ''})`, `${s.checkerCpuPct} % of one core (${s.checkerCpuUsPerRun} µs/run)`, '-']);
  rows.push(['runs/s achieved (expected)', `${s.runsPerSec} (${s.expectedRunsPerSec}), ${s.skippedTicks} ticks skipped`, '-']);
  rows.push(['check start lateness p50 / p99 / max', `${s.lateMs.p50} / ${s.lateMs.p99} / ${s.lateMs.max} ms (loop delay p99 ${s.eventLoopDelayMs.p99} ms, max queued ${s.maxQueued})`, `p99 ≤ ${TARGETS.lateP99Ms} ms ${s.lateMs.p99 <= TARGETS.lateP99Ms ? 'ok' : 'MISSED'}`]);
  rows.push(['check duration p50 / p99', `${s.durationMs.p50} / ${s.durationMs.p99} ms`, '-']);
  rows.push(['results passing / warning / critical', `${s.statuses.passing} / ${s.statuses.warning} / ${s.statuses.critical}`, '-']);
  rows.push(['backends CPU / other work on the machine', `${s.backendCpuPct} % / ${s.otherCpuPct} %`, '-']);
}
for (const d of result.detection ?? []) {
  const name = `fail → out of answers (${d.intervalMs / 1000} s × ${d.failuresBeforeCritical}, n=${d.samples})`;
  rows.push([name, `p50 ${round(d.leaveMs.p50, 0)} / max ${round(d.leaveMs.max, 0)} ms`, `≤ ${d.budgetMs} ms: ${d.withinBudget}/${d.samples}`]);
  rows.push(['  deciding probe → out of answers', `p50 ${d.overheadMs.p50} / max ${d.overheadMs.max} ms`, `≤ ${TARGETS.detectOverheadMs} ms ${d.overheadMs.max <= TARGETS.detectOverheadMs ? 'ok' : 'MISSED'}`]);
}
const widths = [0, 1, 2].map((k) => Math.max(...rows.map((r) => r[k].length), ['metric', 'value', 'target'][k].length));
const line = (r) => r.map((c, k) => c.padEnd(widths[k])).join('  ').trimEnd();
console.log(line(['metric', 'value', 'target']));
for (const r of rows) console.log(line(r));
console.log(`machine: ${result.machine.cpus} cores, load ${result.machine.loadavgBefore.join(' ')} → ${result.machine.loadavgAfter.join(' ')}; shared with other work; ${result.durationS} s`);
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${OUT}`);
