#!/usr/bin/env node
// Clustered-mode benchmark: `npm run bench -- cluster [--quick] [--only register] [--rounds N] [--duration S] [--concurrency N] [--samples N] [--sustain N] [--heartbeat-to any|owner] [--cpu-prof DIR] [--out FILE]`.
//
// One run starts a 3-member etcd on loopback (tmpfs when there is one), three `beacon server
// --store etcd://…` processes and one `beacon server --data-dir <tmp>` (the embedded store), all
// from the built CLI, and measures side by side:
//   [register]   after a warm-up (3 s with --quick, else 10 s), self-registrations with a lease
//                (ttlMs 15 min, longer than a run: see REGISTER_TTL_MS), closed loop at --concurrency, spread round robin over the 3
//                clustered servers / all on the embedded one; for the cluster, --rounds (default
//                5) rounds, each followed by a window of etcd's own puts, and the median round's
//                ratio is the run's;
//   [owner]      the same, all through one clustered server: CPU per registration of the server
//                that takes the request and of each server that only follows the change;
//   [heartbeat]  PUT …/heartbeat over the instances registered above, same spreading;
//   [propagate]  a write on server A → the change on an SSE watch on server B (p50 / p99),
//                and, in the same run, etcd's own put → watch event through the same client;
//                for the embedded store, write and watch on its one server;
//   [etcd]       etcd's own put rate (alternating with [register], above) and lease grant + put
//                through the same client at the same concurrency, and a registration's
//                transaction (compare, put, delete) through the etcd store with its group commit
//                on and off: the registrations' yardsticks;
//   [sustain]    with --sustain N: N instances with a 30 s TTL registered through the 3 servers,
//                then a heartbeat for each every 10 s (a third of the TTL) spread over the servers
//                for 35 s; reports the heartbeat rate held, the slowest pass and instances lost.
// --only register: just the clustered [register] and [owner] phases and etcd's put rate (the
// issue's ratio), for profiling. --only sustain: just [sustain] (N from --sustain, default 100,000),
// on a fresh cluster. --cpu-prof DIR: every server writes a V8 profile there, and this
// process each phase's window (monotonic µs, the clock V8's profiles use) to DIR/windows.json, for
// `node bench/lib/profile-summary.mjs FILE --window DIR/windows.json:PHASE`.
// The load generator runs in this process on the same cores as etcd and the servers; the machine
// may be shared, so figures are noisy: compare within one run. Prints a table and writes JSON to
// bench/results/cluster.json. Every process started here is stopped at the end, on error too.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { etcdMissing, freePort, startEtcd } from './etcd.mjs';
import { UNLIMITED_CLIENT, procCpuMs } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLI = join(root, 'packages/cli/bin/beacon.js');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    samples: { type: 'string' },
    sustain: { type: 'string' },
    'heartbeat-to': { type: 'string' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});
const WINDOW_MS = Number(args.duration ?? (args.quick ? 2 : 5)) * 1000;
const CONCURRENCY = Number(args.concurrency);
// Measured: the servers' CPU per registration still falls for ~15 s of load after a 3 s warm-up.
const WARMUP_MS = args.quick ? 3000 : 10_000;
const ROUNDS = Number(args.rounds);
const SAMPLES = Number(args.samples ?? (args.quick ? 100 : 300));
const SUSTAIN = Number(args.sustain ?? 0);
// [sustain]: where each heartbeat goes ('any' server, or the 'owner' it registered through).
const HEARTBEAT_TO = args['heartbeat-to'] ?? 'any';
if (HEARTBEAT_TO !== 'any' && HEARTBEAT_TO !== 'owner') throw new Error(`--heartbeat-to takes 'any' or 'owner', got ${HEARTBEAT_TO}`);
// Longer than a whole run: with 60 s, the warm-up's and first rounds' instances expired during the
// last rounds and the [owner] phase, and their deletions (every server applying them, etcd
// writing them) were counted against those windows — the last etcd-put window fell to ~1,000/s
// and the following servers showed ~900 µs per registration.
const REGISTER_TTL_MS = 900_000;
/** A record-sized value for etcd's own figures. */
const RECORD = JSON.stringify({ id: 'reg-0-0', service: 'reg', address: '127.0.0.1', port: 1000, tags: [], meta: {}, ttlMs: REGISTER_TTL_MS, pad: 'x'.repeat(400) });
const OUT = resolve(args.out ?? join(root, 'bench/results/cluster.json'));
const ONLY = args.only;
if (ONLY !== undefined && ONLY !== 'register' && ONLY !== 'sustain') {
  console.error(`--only takes 'register' or 'sustain', got ${ONLY}`);
  process.exit(2);
}
/** Each phase's start and end on the monotonic clock in µs (V8 CPU profiles' timestamps). */
const windows = {};
async function phase(name, fn) {
  const start = Number(process.hrtime.bigint() / 1000n);
  try {
    return await fn();
  } finally {
    windows[name] = { start, end: Number(process.hrtime.bigint() / 1000n) };
  }
}

const missing = etcdMissing();
if (missing) {
  console.error(`cluster benchmark skipped: ${missing}`);
  process.exit(0);
}

const cleanups = [];
async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

async function startBeacon(extra, name) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // --cpu-prof DIR: every server writes a .cpuprofile there when it stops (named by pid).
  const prof = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${resolve(args['cpu-prof'])}`] : [];
  const proc = spawn(process.execPath, [...prof, CLI, 'server', '--http-addr', `127.0.0.1:${port}`, '--log-level', 'error', '--no-dns', '--node', name, ...UNLIMITED_CLIENT, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => proc.once('exit', r));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited: ${stderr}`);
    const ok = await fetch(`${url}/api/v1/status`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${name} did not start: ${stderr}`);
    await sleep(50);
  }
  return { url, pid: proc.pid, pool: new Pool(url, { connections: Math.max(8, CONCURRENCY) }) };
}

async function send(pool, method, path, body) {
  const res = await pool.request({ method, path, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
  return text;
}

/**
 * CPU time (user + system) per operation over a phase, in µs: of the given process groups and of
 * this process (the load generator). Load moves it much less than rates.
 */
function cpuPerOp(groups) {
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, pids.reduce((n, pid) => n + procCpuMs(pid), 0)]));
  const self = process.cpuUsage();
  return (ops) => {
    const out = {};
    for (const [k, pids] of Object.entries(groups)) out[k] = Math.round(((pids.reduce((n, pid) => n + procCpuMs(pid), 0) - before[k]) * 1000) / Math.max(1, ops));
    const u = process.cpuUsage(self);
    out.loadGenerator = Math.round((u.user + u.system) / Math.max(1, ops));
    return out;
  };
}

/** `CONCURRENCY` workers calling `op(worker, n)` until the window closes; returns ops/s and errors. */
async function closedLoop(op, concurrency = CONCURRENCY, windowMs = WINDOW_MS) {
  let count = 0;
  let errors = 0;
  let firstError;
  const end = performance.now() + windowMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let n = 0; performance.now() < end; n++) {
        try {
          await op(w, n);
          count++;
        } catch (err) {
          errors++;
          firstError ??= err.message;
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { perSec: Math.round(count / secs), ops: count, errors, ...(firstError ? { firstError } : {}) };
}

function percentiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(s[s.length - 1]), n: s.length };
}
const round = (x) => Math.round(x * 100) / 100;

/** Waits on an SSE stream for frames; `onFrame(data)` is called for each change frame. */
function sseStream(url, onFrame) {
  const ac = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { signal: ac.signal });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (frame.startsWith('event: change') && data) onFrame(JSON.parse(data.slice(6)));
      }
    }
  })().catch(() => undefined);
  return { close: () => (ac.abort(), done) };
}

/** Write through `writer`, wait for the change on `watcher`'s SSE stream: latency per write. */
async function propagation(writer, watcher, service) {
  const waiting = new Map();
  const sse = sseStream(`${watcher.url}/api/v1/watch?service=${service}&since=0`, (c) => {
    const seq = c.instance?.meta?.seq;
    const resolve = seq && waiting.get(seq);
    if (resolve) {
      waiting.delete(seq);
      resolve(performance.now());
    }
  });
  await send(writer.pool, 'PUT', '/api/v1/instances', { id: `${service}-1`, service, address: '127.0.0.1', port: 1, meta: { seq: 'warm' } });
  await sleep(300);
  const lat = [];
  for (let i = 0; i < SAMPLES; i++) {
    const seq = String(i);
    const seen = new Promise((r) => waiting.set(seq, r));
    const t0 = performance.now();
    await send(writer.pool, 'PUT', '/api/v1/instances', { id: `${service}-1`, service, address: '127.0.0.1', port: 1, meta: { seq } });
    const t1 = await Promise.race([seen, sleep(5000).then(() => undefined)]);
    if (t1 === undefined) throw new Error(`change ${seq} never reached the watcher`);
    lat.push(t1 - t0);
  }
  await sse.close();
  return percentiles(lat);
}

/** Leased self-registrations, closed loop, round robin over `servers`; the ids go to `ids`. */
function registrations(servers, prefix, ids, windowMs = WINDOW_MS) {
  return closedLoop(
    async (w, n) => {
      const id = `${prefix}-${w}-${n}`;
      await send(servers[(w + n) % servers.length].pool, 'PUT', '/api/v1/instances', { id, service: prefix, address: '127.0.0.1', port: 1000 + (n % 50000), ttlMs: REGISTER_TTL_MS });
      ids.push(id);
    },
    CONCURRENCY,
    windowMs,
  );
}

/** etcd's own put → watch event, through the same client library the servers use. */
async function etcdPutToWatch(store) {
  const prefix = '/bench-putwatch/';
  const from = (await store.currentRevision()) + 1;
  const ac = new AbortController();
  const waiting = new Map();
  const watching = (async () => {
    for await (const b of store.watch(prefix, { fromRevision: from, signal: ac.signal })) {
      for (const e of b.events) {
        const r = waiting.get(e.kv.value);
        if (r) {
          waiting.delete(e.kv.value);
          r(performance.now());
        }
      }
    }
  })();
  const lat = [];
  for (let i = 0; i < SAMPLES; i++) {
    const v = String(i);
    const seen = new Promise((r) => waiting.set(v, r));
    const t0 = performance.now();
    await store.put(`${prefix}k`, v);
    lat.push((await seen) - t0);
  }
  ac.abort();
  await watching;
  return percentiles(lat);
}

/** A registration's transaction (create-if-absent, put, delete the tombstone) through `store`, closed loop. */
function registrationTxns(store, tag) {
  const record = RECORD;
  return closedLoop(async (w, n) => {
    const key = `/bench-txn/${tag}/${w}-${n}`;
    const res = await store.txn({
      compare: [{ key, target: 'exists', value: false }],
      success: [
        { type: 'put', key, value: record },
        { type: 'delete', key: `${key}-tombstone` },
      ],
    });
    if (!res.succeeded) throw new Error(`txn on ${key} failed its compare`);
  });
}

/**
 * `n` instances with a 30 s TTL, each heartbeating every 10 s from its registration on, round
 * robin over the servers. Registering them all takes longer than the TTL here, so registrations
 * and heartbeats interleave: a worker sends the most overdue heartbeat when one is due, else
 * registers the next instance. Once all are registered, 35 s more (longer than the TTL: an
 * instance whose heartbeats were not applied is gone by then) measure the rate held.
 */
async function sustain(servers, n) {
  // Many instances heartbeat independently, each on its own: 128 in flight per server, on pools of
  // their own, so that the load generator's concurrency is not what caps the rate.
  const perServer = 128;
  const workers = perServer * servers.length;
  // A request that gets no answer fails after 30 s (an error, counted) instead of holding its worker.
  const pools = servers.map((s) => new Pool(s.url, { connections: perServer, headersTimeout: 30_000, bodyTimeout: 30_000 }));
  cleanups.push(() => Promise.all(pools.map((p) => p.close())));
  const ttlMs = 30_000;
  const everyMs = 10_000;
  // Registered instances in the order their next heartbeat is due (each beat moves one to the tail).
  const due = [];
  let head = 0;
  let started = 0;
  let registered = 0;
  let beats = 0;
  let windowBeats = 0;
  let errors = 0;
  let firstError;
  let latestMs = 0;
  let windowStart = Infinity;
  const t0 = performance.now();
  let registeredAt = 0;
  const stopAt = () => (registered === n ? windowStart + 35_000 : Infinity);
  // Progress every 10 s: a fill this long should say where it is.
  let lastBeats = 0;
  const progress = setInterval(() => {
    process.stdout.write(`[${registered} registered, ${Math.round((beats - lastBeats) / 10)} heartbeats/s, ${errors} errors] `);
    lastBeats = beats;
  }, 10_000);
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let k = w; performance.now() < stopAt(); k++) {
        const next = due[head];
        if (next && performance.now() - next.at >= everyMs) {
          head++;
          if (head > 65536) {
            due.splice(0, head);
            head = 0;
          }
          // How long this instance went without a heartbeat: must stay below the TTL.
          latestMs = Math.max(latestMs, performance.now() - next.at);
          try {
            // 'any': the worker's server, so about two in three heartbeats reach a server that does
            // not own the lease and are relayed through etcd; 'owner': the server it registered through.
            await send(pools[(HEARTBEAT_TO === 'owner' ? next.i : k) % pools.length], 'PUT', `/api/v1/instances/${next.id}/heartbeat`);
            beats++;
            if (performance.now() >= windowStart) windowBeats++;
          } catch (err) {
            errors++;
            firstError ??= err.message;
          }
          due.push({ id: next.id, i: next.i, at: performance.now() });
        } else if (started < n) {
          const i = started++;
          const id = `hb-${i}`;
          try {
            await send(pools[i % pools.length], 'PUT', '/api/v1/instances', { id, service: 'hb', address: '127.0.0.1', port: 1 + (i % 60000), ttlMs });
            due.push({ id, i, at: performance.now() });
          } catch (err) {
            errors++;
            firstError ??= err.message;
          } finally {
            registered++;
            if (registered === n) {
              registeredAt = performance.now();
              windowStart = registeredAt;
            }
          }
        } else {
          await sleep(next ? Math.max(1, everyMs - (performance.now() - next.at)) : 10);
        }
      }
    }),
  );
  clearInterval(progress);
  const windowSecs = (performance.now() - windowStart) / 1000;
  const summary = JSON.parse(await send(pools[0], 'GET', '/api/v1/services')).find((x) => x.name === 'hb');
  return {
    instances: n,
    heartbeatTo: HEARTBEAT_TO,
    ttlMs,
    everyMs,
    inFlight: workers,
    registerPerSec: Math.round(n / ((registeredAt - t0) / 1000)),
    heartbeatsPerSec: Math.round(windowBeats / windowSecs),
    target: Math.round(n / (ttlMs / 1000)),
    heartbeats: beats,
    longestGapMs: Math.round(latestMs),
    lost: n - (summary?.instances ?? 0),
    errors,
    ...(firstError ? { firstError } : {}),
  };
}
async function main() {
  const started = new Date().toISOString();
  console.log(`cluster benchmark: ${WINDOW_MS / 1000} s windows, concurrency ${CONCURRENCY}, ${SAMPLES} propagation samples; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
  const etcd = await startEtcd(3);
  cleanups.push(() => etcd.stop());
  const storeUrl = `etcd://${etcd.endpoints.join(',')}/bench`;
  const dataDir = mkdtempSync(join(tmpdir(), 'beacon-bench-cluster-'));
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));

  const clustered = await Promise.all([1, 2, 3].map((i) => startBeacon(['--store', storeUrl], `beacon-${i}`)));
  const targets = { cluster: clustered };
  if (!ONLY) targets.embedded = [await startBeacon(['--data-dir', dataDir], 'beacon-embedded')];
  const results = { started, machine: { cpus: cpus().length, loadavg: loadavg() }, windowMs: WINDOW_MS, concurrency: CONCURRENCY, samples: SAMPLES };

  const { openEtcdStore } = await import('@beacon/server');
  const { systemClock } = await import('@beacon/core');
  // etcd's own rates: one call per put, as any etcd client sends them (the store's group commit off).
  const store = await openEtcdStore({ endpoints: etcd.endpoints, clock: systemClock, prefix: '/bench-raw', batchWrites: false });
  cleanups.push(() => store.close());
  const batched = await openEtcdStore({ endpoints: etcd.endpoints, clock: systemClock, prefix: '/bench-raw' });
  cleanups.push(() => batched.close());
  if (ONLY === 'sustain') {
    // On a fresh cluster: the other phases leave tens of thousands of leased instances (15 min
    // TTL) whose keep-alives and expiries would share the servers with the heartbeats measured.
    const n = SUSTAIN || 100_000;
    process.stdout.write(`cluster: sustain ${n} leased instances… `);
    results.sustain = await sustain(clustered, n);
    console.log(`${results.sustain.heartbeatsPerSec}/s, lost ${results.sustain.lost}`);
    console.log(table(['sustain', ''], Object.entries(results.sustain).map(([k, v]) => [k, String(v)])));
    return writeResults(results);
  }
  // What etcd itself sustains at the registrations' concurrency, through the same client: a put of
  // a record-sized value (one call per put). Registrations ÷ etcd put is the figure.
  const etcdPut = (round) => closedLoop((w, n) => store.put(`/bench-put/${round}-${w}-${n}`, RECORD));

  for (const name of ['embedded', 'cluster']) {
    const servers = targets[name];
    if (!servers) continue;
    const ids = [];
    // The servers' code (and this process's etcd client) is compiled while it runs: measured from
    // cold, the first seconds cost two to three times the CPU per registration of the steady state (V8's
    // optimising compiler, pools and connections). Warm both sides up first.
    process.stdout.write(`${name}: warm-up… `);
    await registrations(servers, 'warm', [], WARMUP_MS);
    if (name === 'cluster') await closedLoop((w, n) => store.put(`/bench-put/warm-${w}-${n}`, RECORD), CONCURRENCY, WARMUP_MS / 3);
    // Registrations and etcd's puts alternate, round after round: the machine's load (shared,
    // changing by the second) then weighs on both sides of each round's ratio alike.
    const rounds = [];
    for (let r = 1; r <= (name === 'cluster' ? ROUNDS : 1); r++) {
      process.stdout.write(`registrations… `);
      const cpu = cpuPerOp(name === 'cluster' ? { servers: servers.map((s) => s.pid), etcd: etcd.pids } : { servers: servers.map((s) => s.pid) });
      const register = await phase(`${name}-register-${r}`, () => registrations(servers, `reg${r}`, ids));
      register.cpuUsPerOp = cpu(register.ops);
      process.stdout.write(`${register.perSec}/s; `);
      if (name !== 'cluster') {
        rounds.push({ register });
        break;
      }
      process.stdout.write('etcd put… ');
      const putCpu = cpuPerOp({ etcd: etcd.pids });
      const put = await phase(`etcd-put-${r}`, () => etcdPut(r));
      put.cpuUsPerOp = putCpu(put.ops);
      process.stdout.write(`${put.perSec}/s; `);
      rounds.push({ register, etcdPut: put, ratio: round(register.perSec / put.perSec) });
    }
    // The round with the median ratio stands for the run; every round is in the JSON.
    const mid = [...rounds].sort((a, b) => (a.ratio ?? 0) - (b.ratio ?? 0))[Math.floor(rounds.length / 2)];
    results[name] = { servers: servers.length, register: mid.register };
    if (name === 'cluster') Object.assign(results, { etcdPut: mid.etcdPut, ratio: mid.ratio, rounds });
    if (ONLY) {
      console.log('');
      break;
    }
    process.stdout.write(`heartbeats… `);
    const hb = await closedLoop(async (w, n) => {
      const id = ids[(w * 7919 + n) % ids.length];
      await send(servers[(w + n) % servers.length].pool, 'PUT', `/api/v1/instances/${id}/heartbeat`);
    });
    process.stdout.write(`${hb.perSec}/s; propagation… `);
    const prop = await propagation(servers[0], servers[servers.length - 1], `prop-${name}`);
    console.log(`p50 ${prop.p50} ms, p99 ${prop.p99} ms`);
    Object.assign(results[name], { heartbeat: hb, propagation: prop, instances: ids.length });
  }
  // Every registration through the first server: its CPU is a registration taken over HTTP and
  // written; the other two only follow the change through their watch.
  process.stdout.write('cluster: registrations through one server… ');
  const [owner, ...followers] = clustered;
  const ownerCpu = cpuPerOp({ owner: [owner.pid], follower1: [followers[0].pid], follower2: [followers[1].pid], etcd: etcd.pids });
  results.pids = { owner: owner.pid, followers: followers.map((f) => f.pid), etcd: etcd.pids };
  results.owner = await phase('owner-register', () => registrations([owner], 'own', []));
  results.owner.cpuUsPerOp = ownerCpu(results.owner.ops);
  console.log(`${results.owner.perSec}/s`);

  if (ONLY) return report(results);
  // A lease grant followed by a put: what a leased registration needs at the least.
  const record = RECORD;
  process.stdout.write('etcd: grant + put… ');
  const leases = [];
  results.etcdGrantPut = await closedLoop(async (w, n) => {
    const lease = await store.grantLease(60_000);
    leases.push(lease);
    await store.put(`/bench-put/l${w}-${n}`, record, { lease });
  });
  console.log(`${results.etcdGrantPut.perSec}/s`);
  await Promise.all(leases.map((id) => store.revokeLease(id).catch(() => undefined)));
  process.stdout.write('etcd: put → watch… ');
  results.etcdPutToWatch = await etcdPutToWatch(store);
  console.log(`p50 ${results.etcdPutToWatch.p50} ms, p99 ${results.etcdPutToWatch.p99} ms`);
  process.stdout.write('etcd store: registration txn, group commit… ');
  results.storeTxnBatched = await registrationTxns(batched, 'batched');
  process.stdout.write(`${results.storeTxnBatched.perSec}/s; one txn per call… `);
  results.storeTxnSingle = await registrationTxns(store, 'single');
  console.log(`${results.storeTxnSingle.perSec}/s`);
  if (SUSTAIN > 0) {
    process.stdout.write(`cluster: sustain ${SUSTAIN} leased instances… `);
    results.sustain = await sustain(clustered, SUSTAIN);
    console.log(`${results.sustain.heartbeatsPerSec}/s, lost ${results.sustain.lost}`);
  }
  report(results);
}

function report(results) {
  const e = results.embedded;
  const c = results.cluster;
  const o = results.owner.cpuUsPerOp;
  console.log('');
  console.log(
    table(
      ['', 'registrations/s', 'CPU µs per registration: servers (sum) / etcd / load generator'],
      [
        ['round robin over 3 servers', c.register.perSec, `${c.register.cpuUsPerOp.servers} / ${c.register.cpuUsPerOp.etcd} / ${c.register.cpuUsPerOp.loadGenerator}`],
        [
          'all through one server: taking / following ×2',
          results.owner.perSec,
          `${o.owner} / ${o.follower1} + ${o.follower2} / ${o.etcd} / ${o.loadGenerator}`,
        ],
        [`etcd put, one per call (${CONCURRENCY} in flight)`, results.etcdPut.perSec, `– / ${results.etcdPut.cpuUsPerOp.etcd} / ${results.etcdPut.cpuUsPerOp.loadGenerator}`],
        [`registrations (round robin) ÷ etcd put, median of ${results.rounds.length} alternating rounds`, results.ratio.toFixed(2), `rounds: ${results.rounds.map((r) => r.ratio.toFixed(2)).join(', ')}`],
      ],
    ),
  );
  if (args['cpu-prof']) {
    // The servers write their profiles into it only when they stop, after this.
    mkdirSync(resolve(args['cpu-prof']), { recursive: true });
    writeFileSync(join(resolve(args['cpu-prof']), 'windows.json'), JSON.stringify({ pids: results.pids, windows }, null, 2) + '\n');
  }
  if (ONLY) return writeResults(results);
  const rows = [
    ['registrations/s (with a lease)', e.register.perSec, c.register.perSec],
    [`etcd put/s (${CONCURRENCY} in flight, one put per call)`, '', results.etcdPut.perSec],
    [`etcd lease grant + put/s (${CONCURRENCY} in flight)`, '', results.etcdGrantPut.perSec],
    ['CPU µs per registration: servers / load generator', `${e.register.cpuUsPerOp.servers} / ${e.register.cpuUsPerOp.loadGenerator}`, ''],
    ['heartbeats/s', e.heartbeat.perSec, c.heartbeat.perSec],
    ['write → watch p50 (ms)', `${e.propagation.p50} (same server)`, `${c.propagation.p50} (A → B)`],
    ['write → watch p99 (ms)', `${e.propagation.p99} (same server)`, `${c.propagation.p99} (A → B)`],
    ['etcd put → watch p50 / p99 (ms)', '', `${results.etcdPutToWatch.p50} / ${results.etcdPutToWatch.p99}`],
    ['errors (register + heartbeat)', e.register.errors + e.heartbeat.errors, c.register.errors + c.heartbeat.errors],
  ];
  console.log('');
  console.log(table(['', 'embedded (1 server)', 'etcd (3 servers, 3 members)'], rows));
  console.log('');
  console.log(
    table(
      [`etcd store, a registration's txn (${CONCURRENCY} in flight)`, 'per second'],
      [
        ['group commit (one txn per event-loop turn)', results.storeTxnBatched.perSec],
        ['one txn per call', results.storeTxnSingle.perSec],
      ],
    ),
  );
  if (results.sustain) {
    const x = results.sustain;
    console.log('');
    console.log(
      table(
        [`sustain: ${x.instances} instances, TTL ${x.ttlMs / 1000} s, heartbeat every ${x.everyMs / 1000} s, 3 servers`, ''],
        [
          ['registrations/s while filling (heartbeats first)', x.registerPerSec],
          ['heartbeats/s held over 35 s once all registered (needed: instances ÷ TTL)', `${x.heartbeatsPerSec} (${x.target})`],
          ['longest gap between heartbeats of one instance (ms; must stay below the TTL)', x.longestGapMs],
          ['instances lost', x.lost],
          ['heartbeat errors', x.errors],
        ],
      ),
    );
  }
  writeResults(results);
}

function writeResults(results) {
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${OUT}`);
}

function table(head, rows) {
  const all = [head, ...rows].map((r) => r.map(String));
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(all[0]), w.map((n) => '-'.repeat(n)).join('  '), ...all.slice(1).map(line)].join('\n');
}

main()
  .then(cleanup, async (err) => {
    console.error(err);
    await cleanup();
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref());
