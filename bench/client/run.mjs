#!/usr/bin/env node
// Client SDK benchmark (`npm run bench -- client [--duration 5] [--connections 64] [--removals 200]`).
//
// 1. Throughput: requests/s through the SDK versus plain undici to the same three backends, in one
//    run, interleaved (plain, SDK, plain, SDK) so machine noise hits both. Pairs: undici.request
//    with three Pools round-robin vs undici.request with client.dispatcher; undici fetch vs
//    client.fetch. Target: SDK ≥ 0.9 × plain.
// 2. Removal latency: an instance is deregistered at the server; time until the SDK stops picking
//    it (the upstream's candidates no longer include it), measured from the moment the DELETE is
//    sent. Target: p99 ≤ 100 ms on loopback.
//
// Needs a build (`npx tsc -b`). Beacon and the backends run as child processes; the load generator
// and the SDK share this process, as they would in a real caller.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Pool, fetch as undiciFetch, request } from 'undici';
import { UNLIMITED_CLIENT } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { createClient } = await import(join(root, 'packages/client/dist/index.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const DURATION_S = opt('duration', 5);
const CONNECTIONS = opt('connections', 64);
const REMOVALS = opt('removals', 200);
const ROUNDS = opt('rounds', 3);

const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startBeacon() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(process.execPath, [join(root, 'packages/cli/bin/beacon.js'), 'server', '--dev', '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--no-dns', ...UNLIMITED_CLIENT], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(proc);
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/api/v1/status`)).ok) return url;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('beacon server did not start');
}

async function startBackends(n) {
  const proc = spawn(process.execPath, [join(here, 'backends.mjs'), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  let out = '';
  for await (const chunk of proc.stdout) {
    out += chunk;
    if (out.includes('\n')) break;
  }
  return JSON.parse(out).ports;
}

async function api(base, method, path, body) {
  const res = await fetch(base + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Runs `send` with `CONNECTIONS` concurrent loops for `seconds`; returns requests/s and errors. */
async function drive(send, seconds) {
  let ok = 0;
  let errors = 0;
  let running = true;
  const end = performance.now() + seconds * 1000;
  const loops = Array.from({ length: CONNECTIONS }, async () => {
    while (running) {
      try {
        await send();
        ok++;
      } catch {
        errors++;
      }
      if (performance.now() >= end) running = false;
    }
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(loops);
  const cpu = process.cpuUsage(cpu0);
  // CPU this process spent per request: the SDK's cost, far less sensitive to other load than req/s.
  return { rps: ok / ((performance.now() - t0) / 1000), ok, errors, cpuUsPerReq: (cpu.user + cpu.system) / Math.max(1, ok) };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

async function main() {
  const beacon = await startBeacon();
  const ports = await startBackends(3);
  for (const [i, port] of ports.entries()) await api(beacon, 'PUT', '/api/v1/instances', { id: `bench-${i + 1}`, service: 'bench', address: '127.0.0.1', port });

  // Plain undici: one Pool per backend, round robin — the fairest hand-written equivalent.
  const pools = ports.map((p) => new Pool(`http://127.0.0.1:${p}`, { connections: CONNECTIONS, keepAliveTimeout: 60_000 }));
  let rr = 0;
  const plainRequest = async () => {
    const i = rr++ % pools.length;
    const res = await request(`http://127.0.0.1:${ports[i]}/`, { dispatcher: pools[i] });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(String(res.statusCode));
  };
  const plainFetch = async () => {
    const i = rr++ % pools.length;
    const res = await undiciFetch(`http://127.0.0.1:${ports[i]}/`, { dispatcher: pools[i] });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(String(res.status));
  };

  const client = createClient({ servers: [beacon], agent: { connections: CONNECTIONS, keepAliveTimeout: 60_000 } });
  await client.upstream('bench').whenReady();
  const sdkRequest = async () => {
    const res = await request('http://bench/', { dispatcher: client.dispatcher });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(String(res.statusCode));
  };
  const sdkFetch = async () => {
    const res = await client.fetch('http://bench/');
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(String(res.status));
  };

  const pairs = [
    { name: 'request()', plain: plainRequest, sdk: sdkRequest },
    { name: 'fetch()', plain: plainFetch, sdk: sdkFetch },
  ];
  const results = {};
  for (const pair of pairs) {
    // Warm both paths (connections, JIT) before measuring.
    await drive(pair.plain, 1);
    await drive(pair.sdk, 1);
    const plain = [];
    const sdk = [];
    for (let r = 0; r < ROUNDS; r++) {
      plain.push(await drive(pair.plain, DURATION_S));
      sdk.push(await drive(pair.sdk, DURATION_S));
    }
    const best = (xs) => Math.max(...xs.map((x) => x.rps));
    // Each SDK round is compared with the plain round just before it (same machine conditions);
    // the headline is the median of those paired ratios.
    const paired = sdk.map((x, i) => x.rps / plain[i].rps).sort((a, b) => a - b);
    const median = paired.length % 2 ? paired[(paired.length - 1) / 2] : (paired[paired.length / 2 - 1] + paired[paired.length / 2]) / 2;
    results[pair.name] = {
      plainRps: Math.round(best(plain)),
      sdkRps: Math.round(best(sdk)),
      ratio: median,
      pairedRatios: paired.map((r) => +r.toFixed(3)),
      rounds: { plain: plain.map((x) => Math.round(x.rps)), sdk: sdk.map((x) => Math.round(x.rps)) },
      cpuUsPerReq: { plain: +Math.min(...plain.map((x) => x.cpuUsPerReq)).toFixed(1), sdk: +Math.min(...sdk.map((x) => x.cpuUsPerReq)).toFixed(1) },
      errors: { plain: plain.reduce((n, x) => n + x.errors, 0), sdk: sdk.reduce((n, x) => n + x.errors, 0) },
    };
  }
  const hits = client.upstream('bench').endpoints().map((e) => e.id);

  // Removal → stop picking. Five instances of a service nobody calls; remove and re-add one at a time.
  const churn = client.upstream('churn');
  const ids = Array.from({ length: 5 }, (_, i) => `churn-${i + 1}`);
  for (const [i, id] of ids.entries()) await api(beacon, 'PUT', '/api/v1/instances', { id, service: 'churn', address: '127.0.0.1', port: 20000 + i });
  await churn.whenReady();
  const waitFor = (pred) =>
    new Promise((resolve) => {
      if (pred()) return resolve();
      const sub = churn.view.onChange(() => {
        if (pred()) {
          sub.dispose();
          resolve();
        }
      });
    });
  await waitFor(() => churn.candidates().length === 5);
  const latencies = [];
  for (let k = 0; k < REMOVALS; k++) {
    const id = ids[k % ids.length];
    const gone = waitFor(() => !churn.candidates().some((e) => e.id === id)).then(() => performance.now());
    const t0 = performance.now();
    await api(beacon, 'DELETE', `/api/v1/instances/${id}`);
    const t1 = await gone;
    // Never picked again once gone.
    for (let i = 0; i < 50; i++) if (churn.pick().id === id) throw new Error('picked a removed instance');
    latencies.push(t1 - t0);
    await api(beacon, 'PUT', '/api/v1/instances', { id, service: 'churn', address: '127.0.0.1', port: 20000 + ids.indexOf(id) });
    await waitFor(() => churn.candidates().some((e) => e.id === id));
  }
  const removal = {
    samples: latencies.length,
    p50Ms: pct(latencies, 50),
    p90Ms: pct(latencies, 90),
    p99Ms: pct(latencies, 99),
    maxMs: Math.max(...latencies),
  };

  await client.close();
  await Promise.all(pools.map((p) => p.close()));

  const out = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavgAtEnd: loadavg().map((x) => +x.toFixed(2)), node: process.version },
    settings: { durationS: DURATION_S, connections: CONNECTIONS, rounds: ROUNDS, backends: 3, removals: REMOVALS },
    throughput: results,
    removal,
    targets: { ratio: 0.9, removalP99Ms: 100 },
    instancesSeen: hits,
  };
  const table = [
    ['measure', 'plain undici', 'SDK', 'SDK / plain', 'target'],
    ...Object.entries(results).flatMap(([name, r]) => [
      [`req/s ${name}`, String(r.plainRps), String(r.sdkRps), `${r.ratio.toFixed(3)} (${r.pairedRatios.join(', ')})`, '≥ 0.9'],
      [`client CPU µs/req ${name}`, String(r.cpuUsPerReq.plain), String(r.cpuUsPerReq.sdk), (r.cpuUsPerReq.plain / r.cpuUsPerReq.sdk).toFixed(3), ''],
    ]),
    ['removal → stop picking p50', '', `${removal.p50Ms.toFixed(2)} ms`, '', ''],
    ['removal → stop picking p99', '', `${removal.p99Ms.toFixed(2)} ms`, '', '≤ 100 ms'],
    ['removal → stop picking max', '', `${removal.maxMs.toFixed(2)} ms`, '', ''],
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  for (const [i, row] of table.entries()) {
    console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log(`\n${CONNECTIONS} concurrent loops, ${ROUNDS}×${DURATION_S}s per side interleaved; req/s: best round; ratio: median of paired rounds; 3 backends, ${cpus().length} CPUs, load average at end ${out.machine.loadavgAtEnd.join(' ')}`);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/client.json'), JSON.stringify(out, null, 2) + '\n');
  console.log('wrote bench/results/client.json');
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
