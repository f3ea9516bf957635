#!/usr/bin/env node
// Federation benchmark: `npm run bench -- federation [--quick] [--samples N] [--out FILE]`.
//
// Starts three `beacon server --dev` processes from the built CLI on loopback, dc1 following dc2
// and dc3 (`--federate`), and measures in one run:
//   [read]       GET /api/v1/services/web/instances on dc1: its own DC vs `?dc=dc2` (served from
//                dc1's followed view of dc2) vs the same read asked of dc2 directly — sequential
//                requests over one keep-alive connection, p50 / p99;
//   [propagate]  a registration written to dc2 → seen on dc1's SSE watch with `?dc=dc2`
//                (DC→DC change propagation, p50 / p99);
//   [dns]        sequential UDP A queries to dc1: a local name (answered from the DNS cache) vs
//                `web.service.dc2.consul` (another DC: answered from the followed view, not
//                cached) vs a prepared query that fails over (`web-any.query.consul`);
//   [failover]   the last local instance of web deregistered on dc1 → the failover watch
//                (`?failover=nearest:1`) sends its answer from another DC, and back when it
//                returns (p50 / p99).
// The load generator and all three servers share this machine's cores, and the machine may be
// shared with other work: figures are noisy, compare within one run. Prints a table and writes
// JSON to bench/results/federation.json. Every process started here is stopped at the end.
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { Pool } from 'undici';
import dgram from 'node:dgram';
import packet from 'dns-packet';
import { freePort, quantiles, spawnNode, stopProcess, UNLIMITED_CLIENT, waitFor } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CLI = join(root, 'packages/cli/bin/beacon.js');
const { parseSse } = await import(join(root, 'packages/client/dist/sse.js'));

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, samples: { type: 'string' }, out: { type: 'string' } } });
const SAMPLES = Number(args.samples ?? (args.quick ? 50 : 300));
const READS = SAMPLES * 10;
const OUT = resolve(args.out ?? join(root, 'bench/results/federation.json'));

const procs = [];
async function server(dc, extra = []) {
  const port = await freePort();
  const dns = extra.includes('--dns-addr') ? [] : ['--no-dns'];
  const p = spawnNode(dc, [CLI, 'server', '--dev', ...dns, '--datacenter', dc, '--http-addr', `127.0.0.1:${port}`, '--log-level', 'warn', ...UNLIMITED_CLIENT, ...extra]);
  procs.push(p);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${dc} ready`, async () => (await fetch(`${url}/readyz`)).ok, 20_000, p);
  return { dc, url, pool: new Pool(url, { connections: 1 }) };
}

async function call(s, method, path, body) {
  const res = await s.pool.request({ method, path, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${s.dc} ${method} ${path}: ${res.statusCode} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

const inst = (id, address) => ({ service: 'web', id, address, port: 80 });

/** An SSE watch whose events are queued, so a measurement can wait for the next matching one. */
async function watch(url) {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
  const it = parseSse(res.body)[Symbol.asyncIterator]();
  return {
    async next(pred) {
      for (;;) {
        const r = await it.next();
        if (r.done) throw new Error('watch ended');
        const data = JSON.parse(r.value.data);
        if (pred(r.value.event, data)) return { at: performance.now(), event: r.value.event, data };
      }
    },
    close: () => ac.abort(),
  };
}

async function timedReads(s, path) {
  for (let k = 0; k < 50; k++) await call(s, 'GET', path);
  const ms = [];
  for (let k = 0; k < READS; k++) {
    const t = performance.now();
    await call(s, 'GET', path);
    ms.push(performance.now() - t);
  }
  return quantiles(ms, 3);
}

/** Sequential A queries over one UDP socket; every answer must carry an address. */
async function timedDns(port, name) {
  const sock = dgram.createSocket('udp4');
  const ask = (id) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no DNS answer for ${name}`)), 2_000);
      sock.once('message', (m) => {
        clearTimeout(t);
        const d = packet.decode(m);
        if (d.id !== id || !d.answers?.length) reject(new Error(`bad DNS answer for ${name}`));
        else resolve();
      });
      sock.send(packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
    });
  try {
    for (let k = 0; k < 50; k++) await ask(k);
    const ms = [];
    for (let k = 0; k < READS; k++) {
      const t = performance.now();
      await ask(k % 65536);
      ms.push(performance.now() - t);
    }
    return quantiles(ms, 3);
  } finally {
    sock.close();
  }
}

const results = { machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) }, samples: SAMPLES, reads: READS };
try {
  const dc2 = await server('dc2');
  const dc3 = await server('dc3');
  const dnsPort = await freePort();
  const dc1 = await server('dc1', ['--federate', `dc2=${dc2.url}`, '--federate', `dc3=${dc3.url}`, '--federate-ping-interval', '1s', '--dns-addr', `127.0.0.1:${dnsPort}`]);
  await call(dc1, 'PUT', '/api/v1/instances', inst('web-dc1', '10.0.1.1'));
  await call(dc2, 'PUT', '/api/v1/instances', inst('web-dc2', '10.0.2.1'));
  await call(dc3, 'PUT', '/api/v1/instances', inst('web-dc3', '10.0.3.1'));
  await waitFor('dc1 following dc2 and dc3', async () => {
    const dcs = await call(dc1, 'GET', '/api/v1/datacenters');
    const views = await Promise.all(['dc2', 'dc3'].map((d) => call(dc1, 'GET', `/api/v1/services/web/instances?dc=${d}`).catch(() => undefined)));
    return dcs.every((d) => d.synced && d.rttMs !== undefined) && views.every((v) => v?.instances.length === 1);
  }, 20_000);

  // [read]
  results.read = {
    local: await timedReads(dc1, '/api/v1/services/web/instances'),
    crossDc: await timedReads(dc1, '/api/v1/services/web/instances?dc=dc2'),
    remoteDirect: await timedReads(dc2, '/api/v1/services/web/instances'),
  };

  // [dns]
  await call(dc1, 'POST', '/v1/query', { Name: 'web-any', Service: { Service: 'web-elsewhere', Failover: { Datacenters: ['dc2'] } } });
  await call(dc2, 'PUT', '/api/v1/instances', { service: 'web-elsewhere', id: 'we-1', address: '10.0.2.5', port: 80 });
  await waitFor('dc2 web-elsewhere on dc1', async () => (await call(dc1, 'GET', '/api/v1/services/web-elsewhere/instances?dc=dc2')).instances.length === 1, 10_000);
  results.dns = {
    local: await timedDns(dnsPort, 'web.service.consul'),
    crossDc: await timedDns(dnsPort, 'web.service.dc2.consul'),
    query: await timedDns(dnsPort, 'web-any.query.consul'),
  };

  // [propagate]
  const w = await watch(`${dc1.url}/api/v1/watch?service=web&dc=dc2`);
  await w.next((e) => e === 'reset');
  const prop = [];
  for (let k = 0; k < SAMPLES; k++) {
    const id = `p-${k}`;
    const t = performance.now();
    await call(dc2, 'PUT', '/api/v1/instances', inst(id, '10.0.2.9'));
    const seen = await w.next((e, d) => e === 'change' && d.id === id);
    prop.push(seen.at - t);
    await call(dc2, 'DELETE', `/api/v1/instances/${id}`);
    await w.next((e, d) => e === 'change' && d.id === id && d.type === 'delete');
  }
  w.close();
  results.propagate = quantiles(prop, 3);

  // [failover]
  const f = await watch(`${dc1.url}/api/v1/watch?service=web&failover=nearest:1`);
  await f.next((e, d) => e === 'reset' && d.datacenter === 'dc1');
  const away = [];
  const back = [];
  for (let k = 0; k < SAMPLES; k++) {
    let t = performance.now();
    await call(dc1, 'DELETE', '/api/v1/instances/web-dc1');
    away.push((await f.next((e, d) => e === 'reset' && d.datacenter !== 'dc1')).at - t);
    t = performance.now();
    await call(dc1, 'PUT', '/api/v1/instances', inst('web-dc1', '10.0.1.1'));
    back.push((await f.next((e, d) => e === 'reset' && d.datacenter === 'dc1')).at - t);
  }
  f.close();
  results.failover = { away: quantiles(away, 3), back: quantiles(back, 3) };
  results.datacenters = await call(dc1, 'GET', '/api/v1/datacenters');
  for (const s of [dc1, dc2, dc3]) await s.pool.close();
} finally {
  for (const p of procs) await stopProcess(p);
}

const row = (name, q) => `${name.padEnd(44)} ${String(q.p50).padStart(9)} ${String(q.p99).padStart(9)}`;
console.log(`federation: 3 DCs on loopback, ${cpus().length} cores shared by the servers, the load generator and other work (load ${results.machine.loadavg.join(' ')})`);
console.log(`${'ms'.padEnd(44)} ${'p50'.padStart(9)} ${'p99'.padStart(9)}`);
console.log(row(`read, local DC (${READS} sequential)`, results.read.local));
console.log(row('read ?dc=dc2 from dc1 (followed view)', results.read.crossDc));
console.log(row('read asked of dc2 directly', results.read.remoteDirect));
console.log(row(`DNS A web.service.consul (${READS} sequential)`, results.dns.local));
console.log(row('DNS A web.service.dc2.consul (other DC)', results.dns.crossDc));
console.log(row('DNS A web-any.query.consul (fails over)', results.dns.query));
console.log(row(`change dc2 → dc1 watch ?dc=dc2 (${SAMPLES})`, results.propagate));
console.log(row('failover: last local gone → other DC', results.failover.away));
console.log(row('failover: local back → local DC', results.failover.back));
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
console.log(`wrote ${OUT}`);
