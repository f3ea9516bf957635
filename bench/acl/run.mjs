#!/usr/bin/env node
// What the ACL decision costs: `npm run bench -- acl [--quick] [--out FILE]`.
//
// Two Beacon servers in one run, the built CLI each in its own process with the embedded store
// on a file: one without ACLs, one with `--acl`, bootstrapped, every request carrying a token
// whose policy has 20 rules (service_prefix rules the decision has to walk, as an operator writes
// them: the matching one is neither first nor the only prefix that matches). The same workloads
// run against both in short alternating windows, so both see the same conditions on a shared
// machine:
//   [query]     GET /api/v1/services/orders/instances (10 instances), closed loop;
//   [register]  durable registrations (PUT /api/v1/instances, no lease) at concurrency 64.
// The best window of each side and the ratio on/off are reported (target: ACLs cost ≤ 5 %).
//
// `--instructions` measures what load on a shared machine cannot move: each server runs under
// `valgrind --tool=callgrind` with instrumentation off (so start-up and a warm-up that lets V8
// optimise run at near native speed) and V8 in predictable mode, and for each workload the
// instructions the server executes are counted over a fixed number of requests sent one at a
// time, in rounds alternating between the servers (`--requests`, `--rounds`, `--concurrency`,
// `--warmup`, `--workload query|register`). Predictable mode runs V8's optimising compiler on the main thread,
// so some rounds count it compiling functions that only now became hot (as much as a quarter of a
// round, unequal between the servers); each round's callgrind profile says how much
// (Runtime_CompileOptimized, inclusive), and the headline figure leaves it out: a request's cost
// once its code is compiled. The figure with it is reported beside. `--callgrind-out DIR` keeps
// the profiles (DIR/acl-off.out.N, DIR/acl-on.out.N; `callgrind_annotate` reads them).
// A round that compiled also ran deoptimised code at a slower tier, so the target is judged on
// each server's rounds without any compilation (printed with how many there were).
// Reported: instructions per request off / on (mean over the rounds), their ratio, and the
// spread of the rounds. Writes bench/results/acl-instructions.json. A request's instruction count
// is a proxy for its CPU time; the target is met when on/off ≤ 1 / 0.95, i.e. ACLs would take at
// most 5 % of CPU-bound throughput.
// Prints a table and writes JSON to bench/results/acl.json. Both servers are stopped at the end,
// on error too.
import { execFile } from 'node:child_process';
import { parseArgs, promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { Pool } from 'undici';
import { freePort, machine, round, spawnNode, stopProcess, UNLIMITED_CLIENT, waitFor } from '../lib/proc.mjs';
import { closedLoop, registerOpts, registration } from '../lib/load.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLI = join(root, 'packages/cli/bin/beacon.js');

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    instructions: { type: 'boolean', default: false },
    requests: { type: 'string' },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    workload: { type: 'string' },
    warmup: { type: 'string' },
    'callgrind-out': { type: 'string' },
  },
});
const QUICK = args.quick;
const INSTRUCTIONS = args.instructions;
const OUT = resolve(args.out ?? join(root, `bench/results/${INSTRUCTIONS ? 'acl-instructions' : 'acl'}.json`));
const PAIRS = QUICK ? 3 : 6;
const WINDOW_MS = QUICK ? 1_000 : 2_000;
const TARGET_RATIO = 0.95;
// --instructions defaults to one request at a time: with many in flight, how many a turn of the
// event loop finds ready depends on timing, and so does what a request costs.
const CONCURRENCY = Number(args.concurrency ?? (INSTRUCTIONS ? 1 : 64));
// --instructions: requests counted per round, rounds per server, and the uncounted warm-up.
const REQUESTS = Number(args.requests ?? (QUICK ? 200 : 500));
const ROUNDS = Number(args.rounds ?? (QUICK ? 2 : 5));
// 24,000: after 6,000 both servers were still optimising functions in the counted rounds (up to a
// quarter of a round's instructions); after 24,000 most rounds compile nothing (the odd one still
// recompiles a deoptimised function: see compileFree).
const WARMUP_REQUESTS = Number(args.warmup ?? (QUICK ? 2_000 : 24_000));
// V8's predictable mode: no compiler or GC threads and no GC scheduled by the clock, so what a
// request costs does not depend on how fast the (loaded) machine happens to run the process.
const PREDICTABLE = ['--predictable'];
// Callgrind dumps each server's profile of each counted round (DIR/acl-off.out.N, DIR/acl-on.out.N)
// to learn how much of it was V8 optimising code; --callgrind-out DIR keeps them (read them with
// callgrind_annotate), otherwise they go to a temporary directory removed at the end.
const KEEP_PROFILES = args['callgrind-out'] !== undefined;
const PROFILE_DIR = INSTRUCTIONS ? (KEEP_PROFILES ? resolve(args['callgrind-out']) : mkdtempSync(join(tmpdir(), 'beacon-bench-acl-callgrind-'))) : undefined;
const callgrind = (name) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(PROFILE_DIR, `${name}.out`)}`];
const WORKLOADS = ['query', 'register'];
const CHOSEN = args.workload === undefined ? WORKLOADS : args.workload.split(',');
for (const w of CHOSEN) if (!WORKLOADS.includes(w)) throw new Error(`--workload: ${w} is not one of ${WORKLOADS.join(', ')}`);

/** 20 rules: 16 service prefixes (some nested, so the longest match must win), nodes, keys, sessions, agent. */
const RULES = [
  ...['billing', 'cart', 'catalog', 'checkout', 'inventory', 'ledger', 'mail', 'notify', 'ord', 'orders-legacy', 'pay', 'search', 'shipping', 'user', 'web'].map(
    (p) => `service_prefix "${p}" { policy = "read" }`,
  ),
  'service_prefix "orders" { policy = "write" }',
  'node_prefix "" { policy = "read" }',
  'key_prefix "config/orders/" { policy = "read" }',
  'session_prefix "" { policy = "write" }',
  'agent_prefix "" { policy = "read" }',
].join('\n');

async function startServer(name, acl) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `beacon-bench-acl-${name}-`));
  const argv = [...(INSTRUCTIONS ? PREDICTABLE : []), CLI, 'server', '--data-dir', dataDir, '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--node', 'bench', '--no-dns', ...(acl ? ['--acl'] : []), ...UNLIMITED_CLIENT];
  const p = spawnNode(`beacon server (${name})`, argv, { via: INSTRUCTIONS ? callgrind(name) : [] });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the ${name} server to answer`, async () => (await fetch(`${base}/readyz`)).ok, INSTRUCTIONS ? 180_000 : 20_000, p);
  return { p, base, dataDir, headers: {}, profile: join(PROFILE_DIR ?? '', `${name}.out`), dumps: 0 };
}

async function call(base, method, path, body, headers = {}) {
  const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Bootstraps the ACL server and makes the token every request will carry. */
async function tokenWithPolicy(base) {
  const boot = await call(base, 'PUT', '/v1/acl/bootstrap');
  const m = { 'x-consul-token': boot.SecretID };
  const policy = await call(base, 'PUT', '/v1/acl/policy', { Name: 'orders-team', Rules: RULES }, m);
  const token = await call(base, 'PUT', '/v1/acl/token', { Description: 'bench', Policies: [{ ID: policy.ID }] }, m);
  return { authorization: `Bearer ${token.SecretID}` };
}

if (INSTRUCTIONS) {
  for (const tool of ['valgrind', 'callgrind_control']) {
    try {
      await promisify(execFile)(tool, ['--version']);
    } catch {
      console.error(`--instructions needs ${tool} on PATH (Debian: apt-get install valgrind)`);
      process.exit(2);
    }
  }
}

const results = {
  benchmark: INSTRUCTIONS ? 'acl-instructions' : 'acl',
  date: new Date().toISOString(),
  conditions: {
    ...machine(),
    shared: 'both servers and the load generator share the same cores; other work on the machine may too',
    servers: `beacon server (built CLI), own process each, embedded SQLite store on a file, --log-level warn, --no-dns; one with --acl and a 20-rule token${INSTRUCTIONS ? '; each under valgrind --tool=callgrind' : ''}`,
    rules: RULES.split('\n').length,
    ...(INSTRUCTIONS
      ? { counted: `${ROUNDS} rounds of ${REQUESTS} requests per workload and server, alternating, after ${WARMUP_REQUESTS} uncounted requests; concurrency ${CONCURRENCY}` }
      : { windows: `${PAIRS} alternating pairs of ${WINDOW_MS / 1000} s per workload` }),
    quick: QUICK,
  },
  results: {},
  targetRatio: TARGET_RATIO,
};

const say = (s) => process.stderr.write(`[acl bench] ${s}\n`);
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

/** Runs the workload's alternating windows; the best window of each side and the ratio. */
async function throughput(name, run, off, on) {
  say(`${name}: ${PAIRS} pairs of ${WINDOW_MS / 1000} s windows, ACLs off and on in turn`);
  const timed = (s) => run(s, { durationMs: WINDOW_MS });
  await timed(off);
  await timed(on);
  const rounds = [];
  for (let k = 0; k < PAIRS; k++) {
    const [a, b] = k % 2 === 0 ? [off, on] : [on, off];
    const ra = await timed(a);
    const rb = await timed(b);
    const [rOff, rOn] = a === off ? [ra, rb] : [rb, ra];
    rounds.push({ off: rOff, on: rOn });
    say(`  pair ${k + 1}: off ${rOff.perSec}/s (${rOff.serverCpuUsPerOp} µs server CPU/op), on ${rOn.perSec}/s (${rOn.serverCpuUsPerOp} µs)`);
  }
  const best = (side) => rounds.map((r) => r[side]).reduce((x, y) => (y.perSec > x.perSec ? y : x));
  const bOff = best('off');
  const bOn = best('on');
  return {
    offBestPerSec: bOff.perSec,
    onBestPerSec: bOn.perSec,
    ratioBest: round(bOn.perSec / bOff.perSec, 3),
    ratioMedianOfPairs: round(median(rounds.map((r) => r.on.perSec / r.off.perSec)), 3),
    serverCpuUsPerOp: { off: median(rounds.map((r) => r.off.serverCpuUsPerOp)), on: median(rounds.map((r) => r.on.serverCpuUsPerOp)) },
    p99Ms: { off: bOff.latencyMs.p99, on: bOn.latencyMs.p99 },
    rounds,
  };
}

const callgrindControl = async (pid, ...opts) => (await promisify(execFile)('callgrind_control', [...opts, String(pid)])).stdout;

/**
 * Instructions spent in V8's optimising compiler (TurboFan) in one callgrind dump: inclusive cost
 * of the runtime entry that compiles a function. `--predictable` runs it on the main thread, where
 * callgrind counts it; a server that is not in that mode compiles on a helper thread, and only
 * until its hot code is optimised.
 */
async function compileInstructions(file) {
  const { stdout } = await promisify(execFile)('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 64 << 20 });
  // "11,052,854 ( 9.24%)  ???:v8::internal::Runtime_CompileOptimized(int, …) [/usr/bin/node]"
  const m = stdout.match(/^\s*([\d,]+) \([^)]*\)\s+\S*v8::internal::Runtime_CompileOptimized\(/m);
  return m ? Number(m[1].replaceAll(',', '')) : 0;
}

/** Instructions the server executed (all threads) while `work` ran, and how many of them compiled code. */
async function countInstructions(s, work) {
  const pid = s.p.child.pid;
  await callgrindControl(pid, '--zero');
  await callgrindControl(pid, '--instr=on');
  const r = await work();
  const out = await callgrindControl(pid, '-e', 'Ir');
  await callgrindControl(pid, '--dump');
  await callgrindControl(pid, '--instr=off');
  // "   Th 1  58,592,750": one line per thread.
  const threads = [...out.matchAll(/^\s*Th \d+\s+([\d,]+)\s*$/gm)].map((m) => Number(m[1].replaceAll(',', '')));
  if (threads.length === 0) throw new Error(`callgrind_control -e printed no counts:\n${out}`);
  return { r, instructions: threads.reduce((a, b) => a + b, 0), compile: await compileInstructions(`${s.profile}.${++s.dumps}`) };
}

/** Each side's mean over its rounds without optimising compilation, their ratio, and how many rounds that was. */
function compileFree(per, compilePer, mean) {
  const pick = (side) => per[side].filter((_, i) => compilePer[side][i] === 0);
  const off = pick('off');
  const on = pick('on');
  const both = off.length > 0 && on.length > 0;
  return {
    rounds: { off: off.length, on: on.length },
    instructionsPerRequest: { off: off.length > 0 ? mean(off) : null, on: on.length > 0 ? mean(on) : null },
    ratioOnOff: both ? round(mean(on) / mean(off), 4) : null,
    throughputRatio: both ? round(mean(off) / mean(on), 4) : null,
  };
}

/** Warms both servers up uncounted, then counts `REQUESTS` requests per round, alternating. */
async function instructions(name, run, off, on) {
  say(`${name}: ${WARMUP_REQUESTS} warm-up requests each, then ${ROUNDS} counted rounds of ${REQUESTS} per server`);
  for (const s of [off, on]) await run(s, { maxCount: WARMUP_REQUESTS });
  const per = { off: [], on: [] };
  const compilePer = { off: [], on: [] };
  for (let k = 0; k < ROUNDS; k++) {
    for (const [side, s] of k % 2 === 0 ? [['off', off], ['on', on]] : [['on', on], ['off', off]]) {
      const { r, instructions: ir, compile } = await countInstructions(s, () => run(s, { maxCount: REQUESTS }));
      per[side].push(ir / r.ok);
      compilePer[side].push(compile / r.ok);
    }
    say(`  round ${k + 1}: instructions/request off ${Math.round(per.off[k])} (compiling ${Math.round(compilePer.off[k])}), on ${Math.round(per.on[k])} (compiling ${Math.round(compilePer.on[k])})`);
  }
  const spread = (xs) => round((Math.max(...xs) - Math.min(...xs)) / median(xs), 4);
  // The mean over all rounds, not the median: a garbage collection falls into some rounds only
  // (the same ones run after run), and its cost is part of what a request costs.
  const mean = (xs) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const steady = (side) => per[side].map((x, i) => x - compilePer[side][i]);
  const all = { off: mean(per.off), on: mean(per.on) };
  const compiling = { off: mean(compilePer.off), on: mean(compilePer.on) };
  const st = { off: mean(steady('off')), on: mean(steady('on')) };
  return {
    // What a request costs once V8 has optimised the hot code (the optimising compiler's own
    // instructions taken out: how much of it falls into the counted rounds depends on V8's tiering
    // heuristics, not on the request), which the target is judged on.
    instructionsPerRequest: st,
    ratioOnOff: round(st.on / st.off, 4),
    // What that ratio means for CPU-bound throughput: the share left when every request costs on/off as much.
    throughputRatio: round(st.off / st.on, 4),
    extraPerRequest: st.on - st.off,
    // Each round counts both servers back to back, so the median of the rounds' own ratios is not
    // moved by a round into which a one-off (a deoptimisation and its recompilation, a major GC)
    // fell on one side only; reported beside the mean, not instead of it.
    ratioMedianOfRounds: round(median(per.on.map((x, i) => (x - compilePer.on[i]) / steady('off')[i])), 4),
    withCompiler: { instructionsPerRequest: all, ratioOnOff: round(all.on / all.off, 4), compilingPerRequest: compiling },
    // Only the rounds in which the server optimised nothing. Once a hot function is deoptimised,
    // V8 runs it unoptimised until it is compiled again, so a round with compilation in it also
    // runs slower code (tens of thousands of instructions a request beyond the compiler's own);
    // after the warm-up the same recompilation struck either server or both, some 24,000-25,000
    // requests in, so which server's rounds it fell in was chance. Null for a side none of whose rounds was free of it.
    compileFree: compileFree(per, compilePer, mean),
    spreadOfRounds: { off: spread(steady('off')), on: spread(steady('on')) },
    rounds: { off: per.off.map(Math.round), on: per.on.map(Math.round), compilingOff: compilePer.off.map(Math.round), compilingOn: compilePer.on.map(Math.round) },
  };
}

if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
const servers = [];
const pools = [];
try {
  const off = await startServer('acl-off', false);
  servers.push(off);
  const on = await startServer('acl-on', true);
  servers.push(on);
  on.headers = await tokenWithPolicy(on.base);
  // The same requests to both: the server without ACLs gets the token header too (and ignores it),
  // so the difference is what the ACL path costs, not the bytes of a header.
  off.headers = on.headers;
  for (const s of [off, on]) {
    for (let i = 0; i < 10; i++) await call(s.base, 'PUT', '/api/v1/instances', registration('orders', `orders-${i}`, i), s.headers);
    s.pool = new Pool(s.base, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 60_000 });
    pools.push(s.pool);
  }
  const sameAnswer = [await call(off.base, 'GET', '/api/v1/services/orders/instances'), await call(on.base, 'GET', '/api/v1/services/orders/instances', undefined, on.headers)];
  if (sameAnswer.some((a) => a.instances?.length !== 10)) throw new Error('both servers should answer the 10 instances');

  let n = 0;
  const workloads = {
    query: (s) => () => ({ path: '/api/v1/services/orders/instances', method: 'GET', headers: s.headers }),
    register: (s) => () => {
      n++;
      return registerOpts(registration(`orders-${n % 500}`, `orders-${n % 500}-${n}`, n), s.headers);
    },
  };
  for (const name of CHOSEN) {
    const next = workloads[name];
    const run = async (s, limit) => {
      const r = await closedLoop({ dispatcher: s.pool, concurrency: CONCURRENCY, durationMs: Infinity, maxCount: Infinity, ...limit, next: next(s), pid: s.p.child.pid });
      if (r.failed) throw new Error(`${name} against ${s.p.name}: ${r.failed} failures (${JSON.stringify(r.statuses ?? r.firstError)})`);
      return r;
    };
    results.results[name] = await (INSTRUCTIONS ? instructions : throughput)(name, run, off, on);
  }

  const rows = Object.entries(results.results).map(([name, r]) =>
    INSTRUCTIONS
      ? [
          name,
          r.instructionsPerRequest.off,
          r.instructionsPerRequest.on,
          `${r.ratioOnOff} (+${r.extraPerRequest}/request; median of rounds ${r.ratioMedianOfRounds})`,
          `${r.withCompiler.instructionsPerRequest.off} / ${r.withCompiler.instructionsPerRequest.on} (${r.withCompiler.ratioOnOff})`,
          r.compileFree.ratioOnOff === null
            ? 'no round without compilation'
            : `${r.compileFree.instructionsPerRequest.off} / ${r.compileFree.instructionsPerRequest.on} (${r.compileFree.ratioOnOff}; ${r.compileFree.rounds.off} / ${r.compileFree.rounds.on} rounds)`,
          `${r.spreadOfRounds.off} / ${r.spreadOfRounds.on}`,
          (r.compileFree.throughputRatio ?? r.throughputRatio) >= TARGET_RATIO ? 'yes' : 'NO',
        ]
      : [
          name,
          `${r.offBestPerSec}/s`,
          `${r.onBestPerSec}/s`,
          `${r.ratioBest} (median of pairs ${r.ratioMedianOfPairs})`,
          `${r.serverCpuUsPerOp.off} / ${r.serverCpuUsPerOp.on}`,
          r.ratioBest >= TARGET_RATIO ? 'yes' : 'NO',
        ],
  );
  const head = INSTRUCTIONS
    ? ['workload', 'instructions/request off', 'on', 'on/off', 'counting the optimising compiler: off / on (on/off)', 'rounds without compilation: off / on (on/off; rounds)', 'spread of rounds off / on', `off/on ≥ ${TARGET_RATIO} (without compilation)`]
    : ['workload', 'ACLs off (best)', 'ACLs on (best)', 'on/off', 'µs server CPU/op off / on (median)', `≥ ${TARGET_RATIO}`];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(
    INSTRUCTIONS
      ? `(instructions counted by callgrind in the server processes only, without V8's optimising compiler; other work on the machine does not change them; load average at start ${results.conditions.loadAvgAtStart.join(' ')})`
      : `(${cpus().length} cores shared by both servers, the load generator and other work on the machine; load average at start ${results.conditions.loadAvgAtStart.join(' ')})`,
  );
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  say(`wrote ${OUT}`);
} finally {
  for (const p of pools) await p.close();
  for (const s of servers) {
    await stopProcess(s.p);
    rmSync(s.dataDir, { recursive: true, force: true });
  }
  if (PROFILE_DIR && !KEEP_PROFILES) rmSync(PROFILE_DIR, { recursive: true, force: true });
}
