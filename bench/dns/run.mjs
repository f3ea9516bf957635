#!/usr/bin/env node
// DNS benchmark: Beacon against Knot DNS and BIND 9, side by side in one run, with dnsperf.
// 100 services × 5 instances; Beacon holds them in its catalog (registered through the
// registry), Knot and BIND serve the same records from a static zone. For A and SRV:
// queries/s, mean latency and p99 latency at full load, answer size, and Beacon / Knot.
//
//   npm run bench -- dns [--rounds 3] [--duration 5] [--clients 10] [--processes 2] [--p99-duration 5] [--only beacon,knot,bind]
//
// Each (server, type) runs `rounds` times for `duration` seconds, the servers taking turns
// (and swapping order every round), so that other load on a shared machine hits them alike.
// q/s is the median over the rounds; the ratios are medians of the per-round ratios, each
// taken between runs seconds apart. p99 comes from one more run with dnsperf -v.
//
// Needs `npm run build` and the Debian packages dnsperf, knot and bind9 (a missing peer is
// skipped with a note). Every server listens on 127.0.0.1 high ports and is stopped at the end.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { machineTicks, treeCpuMs } from '../lib/proc.mjs';
import dgram from 'node:dgram';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    'p99-duration': { type: 'string', default: '5' },
    clients: { type: 'string', default: '10' },
    processes: { type: 'string', default: String(Math.min(2, cpus().length)) },
    only: { type: 'string', default: 'beacon,knot,bind' },
    warmup: { type: 'string', default: '2' },
  },
});
const DURATION = Number(args.duration);
const ROUNDS = Math.max(1, Number(args.rounds));
const P99_DURATION = Number(args['p99-duration']);
const CLIENTS = Number(args.clients);
const WARMUP = Number(args.warmup);
const only = new Set(args.only.split(','));
const loadAvgAtStart = loadavg().map((x) => Math.round(x * 100) / 100);

const SERVICES = 100;
const INSTANCES = 5;
const DOMAIN = 'consul';
const TYPES = ['A', 'SRV'];

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || undefined;
}

if (!which('dnsperf')) {
  console.error('dnsperf is not installed (Debian: apt-get install dnsperf); nothing to measure.');
  process.exit(1);
}
if (!existsSync(join(root, 'packages/server/dist/dns/index.js'))) {
  console.error('Beacon is not built: run `npm run build` first.');
  process.exit(1);
}

// ---- data -----------------------------------------------------------------------------------
const services = [];
for (let s = 0; s < SERVICES; s++) {
  const name = `svc${String(s).padStart(3, '0')}`;
  const instances = [];
  for (let i = 0; i < INSTANCES; i++) instances.push({ address: `10.1.${s}.${i + 1}`, port: 8000 + i, node: `node-${s}-${i}` });
  services.push({ name, instances });
}
const hex = (ip) => ip.split('.').map((p) => Number(p).toString(16).padStart(2, '0')).join('');

const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-dns-'));
const zone = [
  `$ORIGIN ${DOMAIN}.`,
  '$TTL 0',
  '@ IN SOA ns hostmaster 1 3600 600 86400 0',
  '@ IN NS ns',
  'ns IN A 127.0.0.1',
];
for (const s of services) {
  for (const i of s.instances) zone.push(`${s.name}.service IN A ${i.address}`);
  for (const i of s.instances) zone.push(`${s.name}.service IN SRV 1 1 ${i.port} ${hex(i.address)}.addr.dc1`);
  for (const i of s.instances) zone.push(`${hex(i.address)}.addr.dc1 IN A ${i.address}`);
}
writeFileSync(join(dir, 'consul.zone'), zone.join('\n') + '\n');
writeFileSync(join(dir, 'services.json'), JSON.stringify(services));
for (const t of TYPES) writeFileSync(join(dir, `queries-${t}.txt`), services.map((s) => `${s.name}.service.${DOMAIN} ${t}\n`).join(''));

// ---- processes --------------------------------------------------------------------------------
const children = [];
function start(name, cmd, argv, opts = {}) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const entry = { name, child, log: () => log, exited: new Promise((r) => child.once('exit', (code, sig) => r({ code, sig }))) };
  children.push(entry);
  return entry;
}

async function stopAll() {
  await Promise.all(
    children.map(async (c) => {
      if (c.child.exitCode !== null || c.child.signalCode !== null) return;
      c.child.kill('SIGTERM');
      const t = setTimeout(() => c.child.kill('SIGKILL'), 5000);
      await c.exited;
      clearTimeout(t);
    }),
  );
}

async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    // The UDP side must be free too.
    const ok = await new Promise((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/** One query over UDP; resolves to the reply (or undefined after the timeout). */
function query(port, name, type, timeoutMs = 500) {
  const qtype = { A: 1, SOA: 6, SRV: 33 }[type];
  const labels = name.split('.').filter(Boolean);
  const q = Buffer.concat([
    Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, qtype, 0, 1]),
  ]);
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(q, port, '127.0.0.1');
  });
}

async function waitReady(server) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (server.proc.child.exitCode !== null) throw new Error(`${server.name} exited:\n${server.proc.log()}`);
    const r = await query(server.port, `svc000.service.${DOMAIN}`, 'A', 300);
    if (r && (r[3] & 0x0f) === 0 && r.readUInt16BE(6) === INSTANCES) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${server.name} did not answer within 20 s:\n${server.proc.log()}`);
}

// ---- servers ----------------------------------------------------------------------------------
const servers = [];

// One Beacon per process count asked for (`--processes 1,2,3` compares them in one run).
const processCounts = args.processes.split(',').map(Number);
for (const n of only.has('beacon') ? processCounts : []) {
  const port = await freePort();
  const name = processCounts.length === 1 ? 'beacon' : `beacon-${n}`;
  const proc = start(name, process.execPath, [join(here, 'beacon.mjs'), '--addr', `127.0.0.1:${port}`, '--data', join(dir, 'services.json'), '--processes', String(n)]);
  servers.push({ name, label: `Beacon (${n} UDP process${n === 1 ? '' : 'es'})`, port, proc });
}

if (only.has('knot')) {
  if (!which('knotd')) console.log('note: knotd not found (Debian: knot); Knot skipped');
  else {
    const port = await freePort();
    const kdir = join(dir, 'knot');
    mkdirSync(kdir);
    writeFileSync(
      join(kdir, 'knot.conf'),
      [
        'server:',
        `  rundir: "${kdir}"`,
        `  listen: 127.0.0.1@${port}`,
        `  udp-workers: ${Math.min(2, cpus().length)}`,
        '  tcp-workers: 1',
        '  background-workers: 1',
        'database:',
        `  storage: "${kdir}"`,
        'log:',
        '  - target: stderr',
        '    any: warning',
        'zone:',
        `  - domain: ${DOMAIN}`,
        `    file: "${join(dir, 'consul.zone')}"`,
        `    storage: "${kdir}"`,
        '    journal-content: none',
        '    zonefile-sync: -1',
        '',
      ].join('\n'),
    );
    const proc = start('knot', which('knotd'), ['-c', join(kdir, 'knot.conf')]);
    servers.push({ name: 'knot', label: `Knot ${version('knotd', ['--version'])} (udp-workers ${Math.min(2, cpus().length)})`, port, proc });
  }
}

if (only.has('bind')) {
  if (!which('named')) console.log('note: named not found (Debian: bind9); BIND skipped');
  else {
    const port = await freePort();
    const bdir = join(dir, 'bind');
    mkdirSync(bdir);
    writeFileSync(
      join(bdir, 'named.conf'),
      `options {
  directory "${bdir}";
  pid-file "${bdir}/named.pid";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  allow-query { any; };
  minimal-responses no;
};
controls { };
zone "${DOMAIN}" { type primary; file "${join(dir, 'consul.zone')}"; };
`,
    );
    const proc = start('bind', which('named'), ['-g', '-c', join(bdir, 'named.conf')]);
    servers.push({ name: 'bind', label: `BIND ${version('named', ['-v'])} (recursion no)`, port, proc });
  }
}

function version(cmd, argv) {
  const out = spawnSync(cmd, argv, { encoding: 'utf8' });
  return (/(\d+\.\d+(\.\d+)?)/.exec(`${out.stdout}${out.stderr}`) ?? ['?'])[0];
}

// ---- dnsperf ----------------------------------------------------------------------------------
/**
 * One dnsperf run against `server`, with the CPU it took: the server's (its process and every
 * process it forked), dnsperf's own (through a shell that reports its waited-for child's times),
 * and everything else on the machine (other work sharing the cores).
 */
function dnsperf(server, type, seconds, verbose) {
  const argv = ['-s', '127.0.0.1', '-p', String(server.port), '-d', join(dir, `queries-${type}.txt`), '-c', String(CLIENTS), '-l', String(seconds)];
  if (verbose) argv.push('-v');
  const script = 'dnsperf "$@"; s=$?; echo "dnsperf-cpu-ticks $(awk \'{print $16 + $17}\' /proc/$$/stat)" >&2; exit $s';
  const server0 = treeCpuMs(server.proc.child.pid);
  const machine0 = machineTicks();
  const t0 = performance.now();
  const child = spawn('sh', ['-c', script, 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const latencies = [];
  let summary = '';
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    if (line.startsWith('> ')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) latencies.push(v);
    } else summary += line + '\n';
  });
  child.stderr.on('data', (d) => (summary += d));
  return new Promise((resolve) => {
    child.on('close', () => {
      const wallMs = performance.now() - t0;
      const serverMs = treeCpuMs(server.proc.child.pid) - server0;
      const m = machineTicks();
      const num = (re) => Number((re.exec(summary) ?? [])[1]);
      const loadgenMs = num(/dnsperf-cpu-ticks (\d+)/) * 10;
      const machineMs = ((m.busy - machine0.busy) / Math.max(1, m.total - machine0.total)) * cpus().length * wallMs;
      const completed = num(/Queries completed:\s+(\d+)/);
      resolve({
        qps: num(/Queries per second:\s+([\d.]+)/),
        meanMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
        lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
        // CPU µs the server spent per answered query: what other load on the machine moves least.
        cpuUsPerQuery: (serverMs * 1000) / completed,
        serverCpuPct: (serverMs / wallMs) * 100,
        loadgenCpuPct: (loadgenMs / wallMs) * 100,
        otherCpuPct: Math.max(0, ((machineMs - serverMs - loadgenMs) / wallMs) * 100),
        latencies,
        summary,
      });
    });
  });
}

function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---- run --------------------------------------------------------------------------------------
const results = {};
let exitCode = 0;
try {
  for (const s of servers) await waitReady(s);

  for (const s of servers) {
    results[s.name] = { label: s.label };
    for (const t of TYPES) {
      const reply = await query(s.port, `svc001.service.${DOMAIN}`, t);
      results[s.name][t] = { size: reply?.length, answers: reply?.readUInt16BE(6), truncated: reply ? (reply[2] & 0x02) !== 0 : undefined };
    }
    if (WARMUP > 0) await dnsperf(s, 'A', WARMUP, false);
  }
  const rounds = {};
  for (const t of TYPES) {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        process.stdout.write(`round ${round + 1}/${ROUNDS} ${s.name} ${t}: ${DURATION} s … `);
        const r = await dnsperf(s, t, DURATION, false);
        ((rounds[s.name] ??= {})[t] ??= []).push(r);
        console.log(`${Math.round(r.qps)} q/s, server ${r.cpuUsPerQuery.toFixed(2)} µs CPU/query (${Math.round(r.serverCpuPct)} %), dnsperf ${Math.round(r.loadgenCpuPct)} %, other ${Math.round(r.otherCpuPct)} %, load ${loadavg()[0].toFixed(1)}`);
      }
    }
    for (const s of servers) {
      const runs = rounds[s.name][t];
      const v = P99_DURATION > 0 ? await dnsperf(s, t, P99_DURATION, true) : undefined;
      Object.assign(results[s.name][t], {
        qps: Math.round(median(runs.map((r) => r.qps))),
        qpsRounds: runs.map((r) => Math.round(r.qps)),
        meanMs: round(median(runs.map((r) => r.meanMs)), 3),
        lostPct: Math.max(...runs.map((r) => r.lostPct)),
        cpuUsPerQuery: round(median(runs.map((r) => r.cpuUsPerQuery)), 2),
        serverCpuPct: Math.round(median(runs.map((r) => r.serverCpuPct))),
        loadgenCpuPct: Math.round(median(runs.map((r) => r.loadgenCpuPct))),
        otherCpuPct: Math.round(median(runs.map((r) => r.otherCpuPct))),
        p99Ms: v ? round(percentile(v.latencies, 99) * 1000, 3) : undefined,
        p99Samples: v?.latencies.length,
      });
    }
  }
} catch (err) {
  console.error(err.message ?? err);
  exitCode = 1;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function round(x, d) {
  return Number.isFinite(x) ? Number(x.toFixed(d)) : undefined;
}

if (exitCode === 0) {
  // Per-round ratios (runs seconds apart) are steadier than ratios of medians on a busy machine.
  const roundRatio = (a, b, t) => {
    const xs = results[a]?.[t]?.qpsRounds;
    const ys = results[b]?.[t]?.qpsRounds;
    return xs && ys ? round(median(xs.map((x, i) => x / ys[i])), 2) : undefined;
  };
  const rows = [['server', 'type', 'q/s', 'mean ms', 'p99 ms', 'lost %', 'answer bytes', 'server CPU µs/q', 'server %', 'dnsperf %', 'other %', 'vs Knot', 'vs BIND']];
  for (const [name, r] of Object.entries(results))
    for (const t of TYPES) {
      const x = r[t];
      rows.push([
        r.label,
        t,
        String(x.qps),
        String(x.meanMs),
        String(x.p99Ms ?? '-'),
        String(x.lostPct),
        `${x.size}${x.truncated ? ' TC' : ''}`,
        String(x.cpuUsPerQuery),
        String(x.serverCpuPct),
        String(x.loadgenCpuPct),
        String(x.otherCpuPct),
        String(roundRatio(name, 'knot', t) ?? '-'),
        String(roundRatio(name, 'bind', t) ?? '-'),
      ]);
    }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log();
  for (const [k, r] of rows.entries()) {
    console.log(r.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '));
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  // One line per Beacon (several with --processes 1,2,3).
  const summary = {};
  for (const s of servers.filter((x) => x.name.startsWith('beacon'))) {
    const ratios = {};
    for (const t of TYPES) ratios[t] = { beaconOverKnot: roundRatio(s.name, 'knot', t), beaconOverBind: roundRatio(s.name, 'bind', t) };
    summary[s.name] = ratios;
    console.log(`\n${s.label} / Knot: A ${ratios.A.beaconOverKnot ?? '-'}, SRV ${ratios.SRV.beaconOverKnot ?? '-'}   / BIND: A ${ratios.A.beaconOverBind ?? '-'}, SRV ${ratios.SRV.beaconOverBind ?? '-'}`);
  }
  console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const out = {
    benchmark: 'dns',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    setup: { services: SERVICES, instancesPerService: INSTANCES, dnsperf: { clients: CLIENTS, rounds: ROUNDS, secondsPerRound: DURATION, p99Seconds: P99_DURATION }, beaconUdpProcesses: processCounts },
    loadAvgAtStart,
    loadAvgAtEnd: loadavg().map((x) => round(x, 2)),
    results,
    ratios: summary,
  };
  writeFileSync(join(root, 'bench', 'results', 'dns.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`written bench/results/dns.json`);
}
process.exit(exitCode);
