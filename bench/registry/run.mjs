#!/usr/bin/env node
// Registry benchmark: `npm run bench -- registry [--quick] [--only a,b] [--watchers sse,blocking]
//   [--cpu-prof DIR] [--out FILE] [--instances N] [--duration S] [--concurrency N]
//   [--server-node-args "--flag=v …"] [--gc-trace]`.
// `--gc-trace`: the server runs with `--trace-gc`, and the register phase reports the bytes its
// heap took in per registration (each collection's heap before, minus the previous one's after) and
// how many collections ran: allocation, unlike time, does not move with the machine's load.
// `--server-node-args`: node/V8 flags for the server process (A/B of GC settings: the server's own
// `--heap-growing-percent` default yields to one given here).
//
// Beacon runs as its own process (the built CLI: `beacon server --data-dir <tmp>`, the embedded
// SQLite store on a file, WAL + synchronous=FULL with group commit), so its CPU time and resident
// memory are its own. The load generator (undici for the throughput figures in this process, the
// C watch-loadgen for the watchers) shares the machine's cores with the server: every figure is
// "server + load generator on the same cores", and each phase records both processes' CPU use.
//
// Phases, in order (`--only` picks some; ids in brackets):
//   [query]     GET /api/v1/services/:name/instances of a 10-instance service, closed loop, against
//               Beacon and, alternating in the same run, a bare node:http process sending the same
//               bytes and headers; best window of each and the ratio.
//   [fanout]    change delivery to 1 and 1,000 watchers, SSE and blocking queries.
//   [heartbeat] 10,000 instances with a lease, then PUT …/heartbeat round robin.
//   [register]  durable registrations (no lease: the record is the only state) at concurrency 64.
//   [memory]    registrations until the catalog holds 100,000 instances, then VmRSS of the server.
// Prints a table and writes JSON to bench/results/registry.json. Every loop is bounded in time or
// count, and every process started here is stopped at the end, on error too.
import { parseArgs } from 'node:util';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { printHeapSummary, summarizeHeapSnapshot } from '../lib/heap-summary.mjs';
import { loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, Client } from 'undici';
import { cpuMeter, freePort, gcAllocation, machine, procCpuMs, procMemMb, quantiles as quantilesTo, round, spawnNode, stopProcess, UNLIMITED_CLIENT, waitFor } from '../lib/proc.mjs';
import { closedLoop, registerOpts, registration } from '../lib/load.mjs';
import { openWatchSet } from '../lib/watchers.mjs';

const quantiles = (values) => quantilesTo(values, 3);

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLI = join(root, 'packages/cli/bin/beacon.js');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'server-node-args': { type: 'string' },
    'heap-snapshot': { type: 'string' },
    'gc-trace': { type: 'boolean', default: false },
    out: { type: 'string' },
    instances: { type: 'string' },
    duration: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    watchers: { type: 'string', default: 'sse,blocking' },
    loadgen: { type: 'string', default: 'c' },
  },
});
const QUICK = args.quick;
const PHASES = ['query', 'fanout', 'heartbeat', 'register', 'memory'];
const only = args.only ? new Set(args.only.split(',')) : new Set(PHASES);
for (const p of only) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p} (phases: ${PHASES.join(', ')})`);
const WINDOW_MS = Number(args.duration ?? (QUICK ? 2 : 5)) * 1000;
const CONCURRENCY = Number(args.concurrency);
const TARGET_INSTANCES = Number(args.instances ?? (QUICK ? 20_000 : 100_000));
const HEARTBEAT_INSTANCES = QUICK ? 2_000 : 10_000;
const OUT = resolve(args.out ?? join(root, 'bench/results/registry.json'));

const TARGETS = {
  // Issue 17, item 5 ("no regressions"): all three in the same run.
  registrationsPerSec: 6_000,
  heartbeatsPerSec: 20_000,
  queryRatio: 0.85,
  fanoutP99Ms1: 5,
  // Issue 17: 1,000 SSE streams p99 ≤ 20 ms, 1,000 blocking queries p99 ≤ 25 ms (ack → delivery).
  fanoutP99Ms1000: { sse: 20, blocking: 25 },
  rssMb: 250,
};

// ---- processes ---------------------------------------------------------------------------------










const cpuNote = (x) =>
  `CPU: server ${x.serverCpuPct} %, loadgen ${x.loadgenCpuPct} %, other ${x.otherCpuPct} %` +
  (x.serverCpuUsPerOp ? `; ${x.serverCpuUsPerOp} µs server CPU/op (≈ ${Math.round(1e6 / x.serverCpuUsPerOp)}/s per core of server CPU)` : '');

/** V8's heap by space from the server's own /metrics (prom-client's default metrics): used and held, MB. */
async function heapSpaces(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^beacon_nodejs_heap_space_size_(used|total)_bytes\{space="([a-z_]+)"\} (\d+)/gm)) {
    const e = (out[m[2]] ??= { usedMb: 0, totalMb: 0 });
    e[m[1] === 'used' ? 'usedMb' : 'totalMb'] = round(Number(m[3]) / 2 ** 20, 1);
  }
  return out;
}

/** Asks the server (started with --heapsnapshot-signal) for a heap snapshot; resolves with its path once written. */
async function heapSnapshot(p, dir) {
  const before = new Set(readdirSync(dir));
  p.child.kill('SIGUSR2');
  const file = await waitFor('the heap snapshot', () => readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)), 120_000, p, 200);
  const path = join(dir, file);
  // Written in pieces: complete once its size stops changing and it ends the JSON.
  await waitFor('the heap snapshot to be written', async () => {
    const a = statSync(path).size;
    await sleep(500);
    const size = statSync(path).size;
    if (a !== size || size < 2) return false;
    const fd = openSync(path, 'r');
    const end = Buffer.alloc(2);
    readSync(fd, end, 0, 2, size - 2);
    closeSync(fd);
    return end.toString().trim().endsWith('}');
  }, 300_000, p, 0);
  return path;
}

// ---- statistics --------------------------------------------------------------------------------


const round3 = (x) => round(x, 3);


// ---- the workload ------------------------------------------------------------------------------

async function registerAll(dispatcher, pid, bodies, concurrency = CONCURRENCY, timeLimitMs = 120_000) {
  let k = 0;
  return closedLoop({ dispatcher, concurrency, durationMs: timeLimitMs, maxCount: bodies.length, next: () => registerOpts(bodies[k++]), pid });
}


async function blockingParked(base) {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  return Number(/^beacon_watchers\{kind="blocking"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

/**
 * Sends `writes` updates of one instance (each with a new meta.seq, one durable write) and records,
 * for every watcher, when the change reached it. Latencies from the moment the write was *sent*
 * and from the moment its *acknowledgement* (the response headers) arrived.
 */
/** Monotonic µs spans of each fan-out write (V8's profile clock), written beside --cpu-prof's profiles. */
const profileWindows = {};

async function fanout({ base, writer, watch, writes, kind, pid }) {
  const fromSend = [];
  const fromAck = [];
  const lastFromSend = [];
  const lastFromAck = [];
  const ackMs = [];
  let missed = 0;
  // Server CPU from each write being sent to its last delivery: the write, the catalog update and
  // the answers to every watcher (for blocking queries, not the re-armed queries that follow).
  let fanoutCpuMs = 0;
  let loadgenCpuMs = 0;
  const meter = cpuMeter(pid, watch.pid);
  for (let k = 0; k < writes; k++) {
    if (kind === 'blocking') {
      // Every watcher must be parked again before the next change, or it would not be waiting for it.
      // (/metrics is not free for the server: ask only once every watcher has sent its next query.)
      await watch.rearmed();
      await sleep(watch.count > 1 ? 10 : 1);
      await waitFor('blocking watchers to park', async () => (await blockingParked(base)) >= watch.count, 5_000, undefined, 10);
    }
    const seq = `f${process.pid}-${k}`;
    let cpu0, spanStart, tSend, tAck;
    const got = await watch.measure(`"seq":"${seq}"`, async () => {
      cpu0 = procCpuMs(pid);
      spanStart = Number(process.hrtime.bigint() / 1000n);
      tSend = performance.now();
      const res = await writer.request(registerOpts(registration('fan', 'fan-0', 0, { meta: { version: '2.14.1', team: 'payments', seq } })));
      tAck = performance.now();
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`fan-out write answered ${res.statusCode}`);
    });
    ackMs.push(tAck - tSend);
    fanoutCpuMs += procCpuMs(pid) - cpu0;
    loadgenCpuMs += got.cpuMs;
    (profileWindows[`fanout-${kind}-${watch.count}`] ??= []).push({ start: spanStart, end: Number(process.hrtime.bigint() / 1000n) });
    let last = -Infinity;
    for (const at of got.arrivals) {
      if (at === 0) {
        missed++;
        continue;
      }
      fromSend.push(at - tSend);
      fromAck.push(at - tAck);
      last = Math.max(last, at - tSend);
    }
    if (last > -Infinity) {
      lastFromSend.push(last);
      lastFromAck.push(last - (tAck - tSend));
    }
    await sleep(watch.count > 1 ? 20 : 2 + (k % 5));
  }
  return {
    watchers: watch.count,
    loadgen: watch.kind,
    writes,
    deliveries: fromSend.length,
    missed,
    fromSendMs: quantiles(fromSend),
    fromAckMs: quantiles(fromAck),
    lastWatcherFromSendMs: quantiles(lastFromSend),
    lastWatcherFromAckMs: quantiles(lastFromAck),
    // Per write, in order: a slow write holds 1/writes of the deliveries, enough to set the p99.
    lastWatcherFromAckPerWriteMs: lastFromAck.map((x) => round(x, 1)),
    writeAckMs: quantiles(ackMs),
    // /proc counts CPU in 10 ms ticks: summed over all writes, then divided.
    serverCpuMsPerWrite: round(fanoutCpuMs / writes, 2),
    serverCpuUsPerDelivery: round((fanoutCpuMs * 1000) / Math.max(1, fromSend.length), 1),
    // The load generator over the same spans: receiving, parsing and (for blocking) re-arming.
    loadgenCpuMsPerWrite: round(loadgenCpuMs / writes, 2),
    ...meter(),
  };
}

// ---- main --------------------------------------------------------------------------------------

const results = {
  benchmark: 'registry',
  date: new Date().toISOString(),
  conditions: {
    ...machine(),
    shared: 'server and load generator share the same cores; other work on the machine may too',
    server: 'beacon server (built CLI), own process, embedded SQLite store on a file (WAL, synchronous=FULL, group commit), --log-level warn, --no-dns',
    loadGenerator: `this process: undici ${JSON.parse(readFileSync(join(root, 'node_modules/undici/package.json'), 'utf8')).version} Pool for throughput; watchers in bench/lib/watch-loadgen.c (--loadgen node: raw sockets here)`,
    concurrency: CONCURRENCY,
    windowSeconds: WINDOW_MS / 1000,
    quick: QUICK,
  },
  results: {},
  targets: TARGETS,
};

const dataDir = mkdtempSync(join(tmpdir(), 'beacon-bench-'));
let server;
let bare;
const pools = [];
/** Stops the watchers of the fan-out phase (the C load generator or Node's sockets). */
const closers = [];
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const nodeArgs = (args['server-node-args'] ?? '').split(/\s+/).filter(Boolean);
  results.conditions.serverNodeArgs = nodeArgs;
  if (args['cpu-prof']) {
    mkdirSync(args['cpu-prof'], { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`);
  }
  if (args['gc-trace']) nodeArgs.push('--trace-gc');
  if (args['heap-snapshot']) {
    mkdirSync(args['heap-snapshot'], { recursive: true });
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${resolve(args['heap-snapshot'])}`);
  }
  server = spawnNode('beacon server', [...nodeArgs, CLI, 'server', '--data-dir', dataDir, '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--node', 'bench', '--no-dns', ...UNLIMITED_CLIENT]);
  const status = await waitFor('the server to answer', async () => (await fetch(`${base}/api/v1/status`)).ok && (await fetch(`${base}/api/v1/status`)).json(), 20_000, server);
  const pid = server.child.pid;
  results.conditions.storeKind = status.store ?? status.storeKind;
  results.results.idleRss = procMemMb(pid);
  const pool = new Pool(base, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 60_000 });
  pools.push(pool);
  let instances = 0;
  const say = (s) => process.stderr.write(`[registry bench] ${s}\n`);

  // -- query throughput, side by side with a bare node:http server ---------------------------
  if (only.has('query')) {
    say('query: 10-instance service, Beacon vs bare node:http');
    const bodies = Array.from({ length: 10 }, (_, i) => registration('orders', `orders-${i}`, i));
    const r = await registerAll(pool, pid, bodies);
    if (r.ok !== 10) throw new Error(`could not register the query service: ${JSON.stringify(r)}`);
    instances += 10;
    const path = '/api/v1/services/orders/instances';
    const sample = await fetch(`${base}${path}`);
    const body = Buffer.from(await sample.arrayBuffer());
    const headers = { 'content-type': sample.headers.get('content-type'), 'x-beacon-index': sample.headers.get('x-beacon-index') };
    const answerFile = join(dataDir, 'answer.json');
    writeFileSync(answerFile, JSON.stringify({ headers, body: body.toString('base64') }));
    bare = spawnNode('bare node:http', [join(here, 'bare.mjs'), answerFile, '0']);
    const barePort = await waitFor('the bare server', () => bare.lines.map((l) => /^ready (\d+)/.exec(l)?.[1]).find(Boolean), 10_000, bare);
    const bareBase = `http://127.0.0.1:${barePort}`;
    const bareBody = Buffer.from(await (await fetch(`${bareBase}${path}`)).arrayBuffer());
    if (!bareBody.equals(body)) throw new Error('the bare server does not answer the same bytes');
    // Both targets get the same client shape; pipelining gets more from one load-generator thread.
    const shape = { connections: 32, pipelining: 4 };
    const beaconPool = new Pool(base, { ...shape, keepAliveTimeout: 60_000 });
    const barePool = new Pool(bareBase, { ...shape, keepAliveTimeout: 60_000 });
    pools.push(beaconPool, barePool);
    const concurrency = shape.connections * shape.pipelining;
    const get = { path, method: 'GET' };
    // Short windows taking turns, so both servers see the same conditions on a shared machine.
    const pairs = QUICK ? 3 : 8;
    const windowMs = QUICK ? 1_000 : 1_500;
    await closedLoop({ dispatcher: beaconPool, concurrency, durationMs: 2_000, next: () => get, pid });
    await closedLoop({ dispatcher: barePool, concurrency, durationMs: 2_000, next: () => get, pid: bare.child.pid });
    const rounds = [];
    for (let round = 0; round < pairs; round++) {
      const runBeacon = () => closedLoop({ dispatcher: beaconPool, concurrency, durationMs: windowMs, next: () => get, pid });
      const runBare = () => closedLoop({ dispatcher: barePool, concurrency, durationMs: windowMs, next: () => get, pid: bare.child.pid });
      const first = round % 2 === 0 ? await runBeacon() : await runBare();
      const second = round % 2 === 0 ? await runBare() : await runBeacon();
      const [b, n] = round % 2 === 0 ? [first, second] : [second, first];
      rounds.push({ beacon: b, bare: n, ratio: round3(b.perSec / n.perSec) });
      say(`  pair ${round + 1}: beacon ${b.perSec}/s (${cpuNote(b)}); bare ${n.perSec}/s (${cpuNote(n)})`);
    }
    const best = (k) => rounds.map((r) => r[k]).reduce((a, b) => (b.perSec > a.perSec ? b : a));
    const bb = best('beacon');
    const nb = best('bare');
    const sum = (k, f) => rounds.reduce((acc, r) => acc + f(r[k]), 0);
    results.results.query = {
      answerBytes: body.length,
      client: { ...shape, concurrency },
      rounds,
      windowSeconds: windowMs / 1000,
      beaconPerSec: bb.perSec,
      barePerSec: nb.perSec,
      // Best window against best window, and the median of the ratios of windows run back to back.
      ratio: round3(bb.perSec / nb.perSec),
      medianPairRatio: quantiles(rounds.map((r) => r.ratio)).p50,
      // Server CPU per request over all windows: the view of the comparison that neither the load
      // generator nor the other work on the machine caps.
      serverCpuUsPerReq: {
        beacon: round(sum('beacon', (x) => x.serverCpuPct * x.seconds * 1e4) / sum('beacon', (x) => x.ok), 1),
        bare: round(sum('bare', (x) => x.serverCpuPct * x.seconds * 1e4) / sum('bare', (x) => x.ok), 1),
      },
    };
    await stopProcess(bare);
  }

  // -- change fan-out ------------------------------------------------------------------------
  if (only.has('fanout')) {
    say('fan-out: SSE and blocking watchers, 1 and 1,000');
    const bodies = Array.from({ length: 10 }, (_, i) => registration('fan', `fan-${i}`, i));
    const r = await registerAll(pool, pid, bodies);
    if (r.ok !== 10) throw new Error(`could not register the fan-out service: ${JSON.stringify(r)}`);
    instances += 10;
    const writer = new Client(base, { keepAliveTimeout: 60_000 });
    pools.push(writer);
    const fan = {};
    for (const kind of args.watchers.split(',')) {
      if (kind !== 'sse' && kind !== 'blocking') throw new Error(`unknown watcher kind ${kind} (sse, blocking)`);
      for (const count of [1, 1000]) {
        const rss0 = procMemMb(pid).rssMb;
        const cpuOpen0 = procCpuMs(pid);
        const watch = await openWatchSet({
          kind,
          port,
          path: kind === 'sse' ? '/api/v1/watch?service=fan' : '/api/v1/services/fan/instances',
          count,
          indexHeader: 'x-beacon-index',
          loadgen: args.loadgen,
          timeoutMs: 5_000,
          say: (m) => say(`  ${m}`),
        });
        closers.push(() => watch.close());
        if (kind === 'blocking') await waitFor('blocking watchers to park', async () => (await blockingParked(base)) >= count, 10_000, undefined, 20);
        const openCpuMs = procCpuMs(pid) - cpuOpen0;
        await sleep(500);
        const rss1 = procMemMb(pid).rssMb;
        const writes = count === 1 ? (QUICK ? 50 : 200) : QUICK ? 10 : 30;
        // A few unrecorded writes first: JIT and buffers warm up on this exact path.
        await fanout({ base, writer, watch, writes: 5, kind, pid });
        const res = await fanout({ base, writer, watch, writes, kind, pid });
        // Resident memory the parked watchers added (RSS moves in pages and with GC: meaningful at 1,000).
        res.parked = { rssBeforeMb: rss0, rssParkedMb: rss1, kbPerWatcher: round(((rss1 - rss0) * 1024) / count, 2), serverCpuMsToOpen: openCpuMs };
        res.loadAvg = loadavg().map((x) => round(x, 2));
        fan[`${kind}_${count}`] = res;
        say(`  ${kind} × ${count}: from send p50 ${res.fromSendMs.p50} ms p99 ${res.fromSendMs.p99} ms; from ack p50 ${res.fromAckMs.p50} p99 ${res.fromAckMs.p99}; missed ${res.missed}; ` +
          `server CPU ${res.serverCpuMsPerWrite} ms/write (${res.serverCpuUsPerDelivery} µs/delivery); ${res.parked.kbPerWatcher} KB/watcher; load ${res.loadAvg[0]}`);
        await watch.close();
        await sleep(200);
      }
    }
    results.results.fanout = fan;
  }

  // -- heartbeats ------------------------------------------------------------------------------
  if (only.has('heartbeat')) {
    say(`heartbeat: registering ${HEARTBEAT_INSTANCES} instances with a lease`);
    const ids = Array.from({ length: HEARTBEAT_INSTANCES }, (_, i) => `hb-${i}`);
    const reg = await registerAll(pool, pid, ids.map((id, i) => registration(`hb-${i % 100}`, id, i, { ttlMs: 900_000 })));
    if (reg.ok !== ids.length) throw new Error(`could not register the heartbeat instances: ${JSON.stringify(reg)}`);
    instances += ids.length;
    let k = 0;
    const hb = await closedLoop({ dispatcher: pool, concurrency: CONCURRENCY, durationMs: WINDOW_MS, warmupMs: 1_000, next: () => ({ path: `/api/v1/instances/${ids[k++ % ids.length]}/heartbeat`, method: 'PUT' }), pid });
    results.results.leasedRegistrations = reg;
    results.results.heartbeats = hb;
    say(`  leased registrations ${reg.perSec}/s; heartbeats ${hb.perSec}/s (${cpuNote(hb)})`);
  }

  // -- durable registrations -----------------------------------------------------------------
  let regSeq = 0;
  const nextRegistration = () => {
    const n = regSeq++;
    return registerOpts(registration(`svc-${n % 1000}`, `svc-${n % 1000}-${n}`, n));
  };
  if (only.has('register')) {
    say('register: durable registrations (no lease)');
    const warm = await closedLoop({ dispatcher: pool, concurrency: CONCURRENCY, durationMs: 1_000, next: nextRegistration, pid });
    const gcFrom = server.lines.length;
    const reg = await closedLoop({ dispatcher: pool, concurrency: CONCURRENCY, durationMs: Math.max(WINDOW_MS, QUICK ? 2_000 : 8_000), next: nextRegistration, pid });
    instances += warm.ok + reg.ok;
    if (args['gc-trace']) {
      const gc = gcAllocation(server.lines.slice(gcFrom));
      reg.allocatedBytesPerOp = reg.ok > 0 ? Math.round(gc.bytes / reg.ok) : null;
      reg.collections = gc.collections;
    }
    results.results.registrations = reg;
    say(`  ${reg.perSec}/s, p50 ${reg.latencyMs.p50} ms, p99 ${reg.latencyMs.p99} ms (${cpuNote(reg)})${args['gc-trace'] ? `; ${reg.allocatedBytesPerOp} B allocated per registration, ${reg.collections} collections` : ''}`);
  }

  // -- memory at N instances -------------------------------------------------------------------
  if (only.has('memory')) {
    const missing = Math.max(0, TARGET_INSTANCES - instances);
    say(`memory: registering ${missing} more instances to reach ${TARGET_INSTANCES}`);
    const fill = await closedLoop({ dispatcher: pool, concurrency: CONCURRENCY, durationMs: 150_000, maxCount: missing, next: nextRegistration, pid });
    instances += fill.ok;
    await sleep(2_000);
    const mem = procMemMb(pid);
    // Read after VmRSS: the scrape allocates a little, and neither forces a collection.
    const v8Heap = await heapSpaces(base);
    const services = await (await fetch(`${base}/api/v1/services`)).json();
    const inCatalog = services.reduce((n, s) => n + s.instances, 0);
    results.results.memory = {
      instances: inCatalog,
      services: services.length,
      ...mem,
      idleRssMb: results.results.idleRss.rssMb,
      bytesPerInstance: Math.round(((mem.rssMb - results.results.idleRss.rssMb) * 2 ** 20) / inCatalog),
      v8Heap,
      fill,
    };
    say(`  ${inCatalog} instances: VmRSS ${mem.rssMb} MB (peak ${mem.hwmMb} MB; anonymous ${mem.anonMb}, files ${mem.fileMb}); fill at ${fill.perSec}/s`);
    say(`  V8 heap, used / held MB: ${Object.entries(v8Heap).map(([k, v]) => `${k} ${v.usedMb} / ${v.totalMb}`).join(', ')}`);
    if (args['heap-snapshot']) {
      // The snapshot collects garbage first, so it shows what is live, not what VmRSS holds.
      const file = await heapSnapshot(server, args['heap-snapshot']);
      results.results.memory.heapSnapshot = { file, ...summarizeHeapSnapshot(readFileSync(file)) };
      printHeapSummary(results.results.memory.heapSnapshot, (l) => say(l));
    }
  }
  results.conditions.loadAvgAtEnd = loadavg().map((x) => round(x, 2));
} finally {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
  await Promise.allSettled(pools.map((p) => p.destroy()));
  await stopProcess(bare);
  const t0 = Date.now();
  await stopProcess(server);
  if (server) results.conditions.serverExit = { code: server.child.exitCode, signal: server.child.signalCode, stopMs: Date.now() - t0 };
  rmSync(dataDir, { recursive: true, force: true });
}

// ---- report --------------------------------------------------------------------------------------

const R = results.results;
const rows = [];
const verdict = (ok) => (ok === undefined ? '' : ok ? 'met' : 'MISSED');
const add = (metric, value, target, ok, note = '') => rows.push([metric, value, target, verdict(ok), note]);
if (R.registrations) add('durable registrations/s (c64)', `${R.registrations.perSec}`, `≥ ${TARGETS.registrationsPerSec}`, R.registrations.perSec >= TARGETS.registrationsPerSec, `best second ${R.registrations.bestSecond}; p50 ${R.registrations.latencyMs.p50} ms, p99 ${R.registrations.latencyMs.p99} ms; ${cpuNote(R.registrations)}`);
if (R.leasedRegistrations) add('registrations with a lease/s (c64)', `${R.leasedRegistrations.perSec}`, '', undefined, `${R.leasedRegistrations.ok} instances; ${cpuNote(R.leasedRegistrations)}`);
if (R.heartbeats) add('heartbeats/s (c64)', `${R.heartbeats.perSec}`, `≥ ${TARGETS.heartbeatsPerSec}`, R.heartbeats.perSec >= TARGETS.heartbeatsPerSec, `best second ${R.heartbeats.bestSecond}; p50 ${R.heartbeats.latencyMs.p50} ms, p99 ${R.heartbeats.latencyMs.p99} ms; ${cpuNote(R.heartbeats)}`);
if (R.query) {
  const b = R.query.rounds.map((r) => r.beacon).find((x) => x.perSec === R.query.beaconPerSec);
  const n = R.query.rounds.map((r) => r.bare).find((x) => x.perSec === R.query.barePerSec);
  const cpuRatio = round3(R.query.serverCpuUsPerReq.bare / R.query.serverCpuUsPerReq.beacon);
  add('instance queries/s, Beacon (best window)', `${R.query.beaconPerSec}`, '', undefined, `${R.query.answerBytes} B answer; ${cpuNote(b)}`);
  add('instance queries/s, bare node:http (best)', `${R.query.barePerSec}`, '', undefined, `same bytes and headers; ${cpuNote(n)}`);
  // The median of back-to-back pairs: a best window of one server that happened to fall in a busy
  // moment of the machine cannot swing it, as it swings best ÷ best.
  add('query ratio Beacon / bare (median of pairs)', `${R.query.medianPairRatio}`, `≥ ${TARGETS.queryRatio}`, R.query.medianPairRatio >= TARGETS.queryRatio,
    `${R.query.rounds.length} pairs; best ÷ best ${R.query.ratio}; server CPU/req ${R.query.serverCpuUsPerReq.beacon} vs ${R.query.serverCpuUsPerReq.bare} µs (ratio ${cpuRatio})`);
}
if (R.fanout) {
  for (const [key, f] of Object.entries(R.fanout)) {
    const [kind, count] = key.split('_');
    const target = Number(count) === 1 ? TARGETS.fanoutP99Ms1 : TARGETS.fanoutP99Ms1000[kind];
    add(
      `change → ${kind === 'sse' ? 'SSE' : 'blocking'} × ${count}: ack → delivery p50/p99 ms`,
      `${f.fromAckMs.p50} / ${f.fromAckMs.p99}`,
      `p99 ≤ ${target}`,
      f.fromAckMs.p99 <= target && f.missed === 0,
      `send → delivery p50/p99 ${f.fromSendMs.p50} / ${f.fromSendMs.p99}; write ack p50/p99 ${f.writeAckMs.p50} / ${f.writeAckMs.p99}; ` +
        `last watcher after ack p99 ${f.lastWatcherFromAckMs.p99}; ${f.deliveries} deliveries, ${f.missed} missed; ` +
        `server CPU write → last delivery ${f.serverCpuMsPerWrite} ms/write (${f.serverCpuUsPerDelivery} µs/delivery); ` +
        `parked: ${f.parked.kbPerWatcher} KB/watcher (RSS ${f.parked.rssBeforeMb} → ${f.parked.rssParkedMb} MB); load ${f.loadAvg.join(' ')}; ${cpuNote(f)}`,
    );
  }
}
if (R.memory) add(`server VmRSS at ${R.memory.instances} instances`, `${R.memory.rssMb} MB`, `≤ ${TARGETS.rssMb} MB`, R.memory.instances >= 100_000 ? R.memory.rssMb <= TARGETS.rssMb : undefined, `peak ${R.memory.hwmMb} MB, idle ${R.memory.idleRssMb} MB, ~${R.memory.bytesPerInstance} B/instance; fill ${R.memory.fill.perSec}/s`);

const header = ['metric', 'result', 'target', '', 'notes'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
console.log(`\nBeacon registry benchmark — ${results.date}, Node ${process.version}, ${results.conditions.cpus} × ${results.conditions.cpuModel}`);
console.log('Server in its own process; load generator in the bench process on the same cores (shared machine).');
console.log('Fan-out: "ack → delivery" runs from the moment the writer received its answer (the acknowledgement of the durable');
console.log('write) to the moment a watcher received the change; "send → delivery" from the moment the write was sent.\n');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
if (args['cpu-prof']) writeFileSync(join(resolve(args['cpu-prof']), 'windows.json'), JSON.stringify({ windows: profileWindows }, null, 2) + '\n');
console.log(`\nJSON: ${OUT}`);
