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
// Prints a table and writes JSON to bench/results/acl.json. Both servers are stopped at the end,
// on error too.
import { parseArgs } from 'node:util';
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

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } } });
const QUICK = args.quick;
const OUT = resolve(args.out ?? join(root, 'bench/results/acl.json'));
const PAIRS = QUICK ? 3 : 6;
const WINDOW_MS = QUICK ? 1_000 : 2_000;
const TARGET_RATIO = 0.95;

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
  const p = spawnNode(`beacon server (${name})`, [CLI, 'server', '--data-dir', dataDir, '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--node', 'bench', '--no-dns', ...(acl ? ['--acl'] : []), ...UNLIMITED_CLIENT]);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the ${name} server to answer`, async () => (await fetch(`${base}/readyz`)).ok, 20_000, p);
  return { p, base, dataDir, headers: {} };
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

const results = {
  benchmark: 'acl',
  date: new Date().toISOString(),
  conditions: {
    ...machine(),
    shared: 'both servers and the load generator share the same cores; other work on the machine may too',
    servers: 'beacon server (built CLI), own process each, embedded SQLite store on a file, --log-level warn, --no-dns; one with --acl and a 20-rule token',
    rules: RULES.split('\n').length,
    windows: `${PAIRS} alternating pairs of ${WINDOW_MS / 1000} s per workload`,
    quick: QUICK,
  },
  results: {},
  targetRatio: TARGET_RATIO,
};

const say = (s) => process.stderr.write(`[acl bench] ${s}\n`);
const servers = [];
const pools = [];
try {
  const off = await startServer('acl-off', false);
  servers.push(off);
  const on = await startServer('acl-on', true);
  servers.push(on);
  on.headers = await tokenWithPolicy(on.base);
  for (const s of [off, on]) {
    for (let i = 0; i < 10; i++) await call(s.base, 'PUT', '/api/v1/instances', registration('orders', `orders-${i}`, i), s.headers);
    s.pool = new Pool(s.base, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
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
  for (const [name, next] of Object.entries(workloads)) {
    say(`${name}: ${PAIRS} pairs of ${WINDOW_MS / 1000} s windows, ACLs off and on in turn`);
    const run = (s) => closedLoop({ dispatcher: s.pool, concurrency: 64, durationMs: WINDOW_MS, next: next(s), pid: s.p.child.pid });
    await run(off);
    await run(on);
    const rounds = [];
    for (let k = 0; k < PAIRS; k++) {
      const [a, b] = k % 2 === 0 ? [off, on] : [on, off];
      const ra = await run(a);
      const rb = await run(b);
      const [rOff, rOn] = a === off ? [ra, rb] : [rb, ra];
      if (rOn.failed || rOff.failed) throw new Error(`${name}: failures (off ${JSON.stringify(rOff.statuses ?? rOff.firstError)}, on ${JSON.stringify(rOn.statuses ?? rOn.firstError)})`);
      rounds.push({ off: rOff, on: rOn });
      say(`  pair ${k + 1}: off ${rOff.perSec}/s (${rOff.serverCpuUsPerOp} µs server CPU/op), on ${rOn.perSec}/s (${rOn.serverCpuUsPerOp} µs)`);
    }
    const best = (side) => rounds.map((r) => r[side]).reduce((x, y) => (y.perSec > x.perSec ? y : x));
    const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const bOff = best('off');
    const bOn = best('on');
    results.results[name] = {
      offBestPerSec: bOff.perSec,
      onBestPerSec: bOn.perSec,
      ratioBest: round(bOn.perSec / bOff.perSec, 3),
      ratioMedianOfPairs: round(median(rounds.map((r) => r.on.perSec / r.off.perSec)), 3),
      serverCpuUsPerOp: { off: median(rounds.map((r) => r.off.serverCpuUsPerOp)), on: median(rounds.map((r) => r.on.serverCpuUsPerOp)) },
      p99Ms: { off: bOff.latencyMs.p99, on: bOn.latencyMs.p99 },
      rounds,
    };
  }

  const rows = Object.entries(results.results).map(([name, r]) => [
    name,
    `${r.offBestPerSec}/s`,
    `${r.onBestPerSec}/s`,
    `${r.ratioBest} (median of pairs ${r.ratioMedianOfPairs})`,
    `${r.serverCpuUsPerOp.off} / ${r.serverCpuUsPerOp.on}`,
    r.ratioBest >= TARGET_RATIO ? 'yes' : 'NO',
  ]);
  const head = ['workload', 'ACLs off (best)', 'ACLs on (best)', 'on/off', 'µs server CPU/op off / on (median)', `≥ ${TARGET_RATIO}`];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`(${cpus().length} cores shared by both servers, the load generator and other work on the machine; load average at start ${results.conditions.loadAvgAtStart.join(' ')})`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  say(`wrote ${OUT}`);
} finally {
  for (const p of pools) await p.close();
  for (const s of servers) {
    await stopProcess(s.p);
    rmSync(s.dataDir, { recursive: true, force: true });
  }
}
