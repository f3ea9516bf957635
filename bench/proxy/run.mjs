#!/usr/bin/env node
// Proxy benchmark: `beacon proxy` against HAProxy (Debian), side by side in one run, in front of
// the same two backends, with wrk as the load generator.
//
//   npm run bench -- proxy [--quick] [--rounds 3] [--duration 5] [--connections 64] [--threads 1]
//                          [--only l7|l4] [--cpu-prof DIR]
//
// --quick: one round of 2 s (a smoke test, not a figure). --only: the direct path plus one
// layer's two proxies. --cpu-prof DIR: the beacon proxy process writes a V8 CPU profile there
// (node --cpu-prof) when it stops; open it in Chromium's DevTools or summarise it with
// bench/lib/profile-summary.mjs.
//
// Backends: one HAProxy process answering a fixed 64-byte body itself (`http-request return`) on
// two ports, so the backends cost little and the same for both proxies. In front of them:
//   - HAProxy, nbthread 1 (the Node proxy is one thread): an HTTP frontend (mode http, keep-alive
//     to the backends) and a TCP frontend (mode tcp), round robin over the two backends;
//   - `beacon proxy` (the built CLI) with an HTTP and a TCP listener for the service `bench`,
//     whose two instances are registered with a `beacon server --dev`;
//   - a bare Node `net` pipe (`a.pipe(b).pipe(a)`) to one backend: the floor for L4 in Node.
// Each path runs `rounds` times for `duration` s with wrk (-c connections, keep-alive), the
// paths taking turns so other load on a shared machine hits them alike; req/s is the median.
// Added latency: p50 at one connection through the proxy minus p50 straight to a backend.
// CPU per request: the proxy process's user + system time over the run ÷ requests.
//
// Needs `npm run build`, wrk and haproxy (apt-get install wrk haproxy).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, procCpuMs, round, spawnNode, stopProcess, waitFor } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    threads: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
if (args.only !== undefined && args.only !== 'l7' && args.only !== 'l4') {
  console.error(`--only takes l7 or l4, got ${JSON.stringify(args.only)}`);
  process.exit(2);
}
const DURATION = args.quick ? 2 : Number(args.duration);
const ROUNDS = args.quick ? 1 : Math.max(1, Number(args.rounds));
const CONNS = Number(args.connections);
const THREADS = Number(args.threads);
const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || undefined;
for (const cmd of ['wrk', 'haproxy']) {
  if (!which(cmd)) {
    console.error(`${cmd} is not installed (Debian: apt-get install ${cmd}); nothing to measure.`);
    process.exit(1);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-proxy-'));
const children = [];
const cleanup = async () => {
  for (const c of children.reverse()) await stopProcess(c, 10_000);
  rmSync(dir, { recursive: true, force: true });
};

function spawnProc(name, file, argv) {
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = [];
  const keep = (d) => {
    for (const l of String(d).split('\n')) if (l) (tail.push(l), tail.length > 30 && tail.shift());
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const p = { name, child, tail, lines: tail };
  children.push(p);
  process.on('exit', () => child.kill('SIGKILL'));
  return p;
}

const answers = (url) =>
  fetch(url)
    .then((r) => r.ok)
    .catch(() => false);

try {
  const [b1, b2, beaconPort, hH, hT, pH, pT, bare] = await Promise.all(Array.from({ length: 8 }, freePort));
  const body = 'x'.repeat(63);
  writeFileSync(
    join(dir, 'backends.cfg'),
    `global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n` +
      `frontend b1\n  bind 127.0.0.1:${b1}\n  http-request return status 200 content-type text/plain string "${body}"\n` +
      `frontend b2\n  bind 127.0.0.1:${b2}\n  http-request return status 200 content-type text/plain string "${body}"\n`,
  );
  writeFileSync(
    join(dir, 'front.cfg'),
    `global\n  nbthread 1\ndefaults\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n` +
      `frontend http\n  mode http\n  bind 127.0.0.1:${hH}\n  default_backend http\n` +
      `backend http\n  mode http\n  balance roundrobin\n  http-reuse always\n  server s1 127.0.0.1:${b1}\n  server s2 127.0.0.1:${b2}\n` +
      `frontend tcp\n  mode tcp\n  bind 127.0.0.1:${hT}\n  default_backend tcp\n` +
      `backend tcp\n  mode tcp\n  balance roundrobin\n  server s1 127.0.0.1:${b1}\n  server s2 127.0.0.1:${b2}\n`,
  );
  const backends = spawnProc('backends', 'haproxy', ['-db', '-f', join(dir, 'backends.cfg')]);
  const haproxy = spawnProc('haproxy', 'haproxy', ['-db', '-f', join(dir, 'front.cfg')]);
  const beaconUrl = `http://127.0.0.1:${beaconPort}`;
  mkdirSync(join(dir, 'data'));
  const bin = join(root, 'packages/cli/bin/beacon.js');
  const server = spawnNode('beacon server', [bin, 'server', '--dev', '--http-addr', `127.0.0.1:${beaconPort}`, '--dns-addr', '127.0.0.1:0', '--log-level', 'warn']);
  children.push(server);
  await waitFor('beacon server', () => answers(`${beaconUrl}/api/v1/status`), 15_000, server);
  for (const port of [b1, b2]) {
    const r = await fetch(`${beaconUrl}/api/v1/instances`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'bench', address: '127.0.0.1', port }) });
    if (!r.ok) throw new Error(`register: ${r.status} ${await r.text()}`);
  }
  const prof = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];
  const proxy = spawnNode('beacon proxy', [...prof, bin, 'proxy', '--server', beaconUrl, '--listen', `127.0.0.1:${pH}=bench`, '--listen', `127.0.0.1:${pT}=tcp:bench`, '--access-log', 'off', '--log-level', 'warn']);
  children.push(proxy);
  // The floor for L4 in Node: a bare `net` pipe to one backend, nothing else in its process.
  const pipe = spawnNode('node net pipe', [
    '-e',
    `const net = require('node:net');
     net.createServer({ noDelay: true, allowHalfOpen: true }, (c) => {
       const u = net.connect({ host: '127.0.0.1', port: ${b1}, noDelay: true, allowHalfOpen: true });
       c.pipe(u).pipe(c);
       c.on('error', () => u.destroy());
       u.on('error', () => c.destroy());
     }).listen(${bare}, '127.0.0.1');`,
  ]);
  children.push(pipe);
  for (const [name, port, p] of [['backend', b1, backends], ['haproxy', hH, haproxy], ['beacon proxy', pH, proxy], ['beacon proxy tcp', pT, proxy], ['node net pipe', bare, pipe]]) {
    await waitFor(name, () => answers(`http://127.0.0.1:${port}/`), 15_000, p);
  }

  const paths = [
    { name: 'direct to a backend', layer: 'L7', port: b1, pid: undefined },
    { name: 'HAProxy http', layer: 'L7', port: hH, pid: haproxy.child.pid },
    { name: 'beacon proxy http', layer: 'L7', port: pH, pid: proxy.child.pid },
    { name: 'HAProxy tcp', layer: 'L4', port: hT, pid: haproxy.child.pid },
    { name: 'beacon proxy tcp', layer: 'L4', port: pT, pid: proxy.child.pid },
    { name: 'node net pipe', layer: 'L4', port: bare, pid: pipe.child.pid },
  ].filter((p) => !args.only || p.pid === undefined || p.layer === args.only.toUpperCase());

  const wrk = (port, conns, seconds) => {
    const r = spawnSync('wrk', ['-t', String(Math.min(THREADS, conns)), '-c', String(conns), '-d', `${seconds}s`, '--latency', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wrk: ${r.stderr}`);
    const out = r.stdout;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const total = Number(/(\d+) requests in/.exec(out)?.[1]);
    const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
    const sock = /Socket errors: (.*)/.exec(out)?.[1];
    const us = (label) => {
      const m = new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
      if (!m) return NaN;
      return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1_000 : 1_000_000);
    };
    return { rps, total, p50us: us('50%'), p99us: us('99%'), errors: Number(errors), socketErrors: sock };
  };

  // Warm up every path (JIT, pools).
  for (const p of paths) wrk(p.port, CONNS, 1);

  const results = Object.fromEntries(paths.map((p) => [p.name, { rps: [], cpuUsPerReq: [], p50c1: [], p99c1: [], errors: 0 }]));
  const idleBefore = loadavg()[0];
  for (let round_ = 0; round_ < ROUNDS; round_++) {
    const order = round_ % 2 === 0 ? paths : [...paths].reverse();
    for (const p of order) {
      const cpu0 = p.pid ? procCpuMs(p.pid) : 0;
      const r = wrk(p.port, CONNS, DURATION);
      const cpuMs = p.pid ? procCpuMs(p.pid) - cpu0 : NaN;
      const res = results[p.name];
      res.rps.push(r.rps);
      res.cpuUsPerReq.push((cpuMs * 1000) / r.total);
      res.errors += r.errors;
      const c1 = wrk(p.port, 1, Math.max(2, Math.round(DURATION / 2)));
      res.p50c1.push(c1.p50us);
      res.p99c1.push(c1.p99us);
    }
  }
  const median = (a) => {
    const s = [...a].filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
  };
  const direct = results['direct to a backend'];
  const directP50 = median(direct.p50c1);
  const directP99 = median(direct.p99c1);
  const rows = paths.map((p) => {
    const r = results[p.name];
    return {
      path: p.name,
      layer: p.layer,
      rps: Math.round(median(r.rps)),
      cpuUsPerReq: p.pid ? round(median(r.cpuUsPerReq), 1) : null,
      p50c1us: round(median(r.p50c1), 0),
      addedP50us: p.pid ? round(median(r.p50c1) - directP50, 0) : null,
      addedP99us: p.pid ? round(median(r.p99c1) - directP99, 0) : null,
      non2xx: r.errors,
    };
  });
  const by = Object.fromEntries(rows.map((r) => [r.path, r]));
  const ratio = (ours, theirs) => (by[ours] && by[theirs] ? round(by[ours].rps / by[theirs].rps, 2) : null);
  const ratios = { l7: ratio('beacon proxy http', 'HAProxy http'), l4: ratio('beacon proxy tcp', 'HAProxy tcp'), l4VsNodePipe: ratio('beacon proxy tcp', 'node net pipe') };
  const conditions = {
    cpus: cpus().length,
    loadavg1mBefore: round(idleBefore, 2),
    loadavg1mAfter: round(loadavg()[0], 2),
    node: process.version,
    haproxy: spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0],
    wrk: `-t${THREADS} -c${CONNS} -d${DURATION}s, ${ROUNDS} rounds (median); latency at -c1`,
    note: 'load generator, backends and proxies share the machine with other work: compare within one run',
  };

  console.log(`\nproxy benchmark — ${conditions.wrk}; ${conditions.cpus} cores, load average ${conditions.loadavg1mBefore} → ${conditions.loadavg1mAfter}\n`);
  console.log('path                  layer   req/s   CPU µs/req   p50 at c1   added p50   added p99   non-2xx');
  for (const r of rows) {
    console.log(
      `${r.path.padEnd(22)}${r.layer.padEnd(6)}${String(r.rps).padStart(7)}   ${String(r.cpuUsPerReq ?? '-').padStart(10)}   ${`${r.p50c1us} µs`.padStart(9)}   ${(r.addedP50us === null ? '-' : `${r.addedP50us} µs`).padStart(9)}   ${(r.addedP99us === null ? '-' : `${r.addedP99us} µs`).padStart(9)}   ${String(r.non2xx).padStart(7)}`,
    );
  }
  console.log(`\nbeacon / HAProxy: L7 ${ratios.l7} (target ≥ 0.5), L4 ${ratios.l4} (target ≥ 0.75; ${ratios.l4VsNodePipe} × a bare Node pipe); added p50 at one connection: ${by['beacon proxy http']?.addedP50us ?? '-'} µs (target ≤ 100 µs)`);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/proxy.json'), JSON.stringify({ conditions, rows, ratios }, null, 2) + '\n');
  console.log('written: bench/results/proxy.json');
} finally {
  await cleanup();
}
