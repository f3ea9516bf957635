#!/usr/bin/env node
// xDS benchmark: how long a registry change takes to reach every connected xDS client, and what
// a push costs the server. Beacon runs as `beacon server --xds-addr` in its own process; this
// process holds N state-of-the-world ADS clients (each on its own HTTP/2 connection, subscribed
// to the Listener, RouteConfiguration, Cluster and ClusterLoadAssignment of one service, as a
// grpc-js channel to xds:///bench is) and ACKs every response, as real clients do.
//
//   npm run bench -- xds [--clients 0,100,1000] [--changes 30]
//
// Per change: an instance's weight is changed through the HTTP API; the clock starts before the
// request is sent and stops, per client, when that client has the new ClusterLoadAssignment.
// Reported per client count: p50 and p99 over the changes of the time until the LAST client
// has it, the p50 over every (client, change) delivery, and the server's CPU per change: in all,
// and above the 0-client run (the HTTP write, store and catalog cost every change pays anyway).
// No peer: no other registry serves proxyless gRPC (the issue says so). Needs `npm run build`.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, procCpuMs, procMemMb, quantiles, round, spawnNode, stopProcess, UNLIMITED_CLIENT, waitFor, cpuMeter } from '../lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(join(root, 'packages/server/package.json'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const { values: args } = parseArgs({ options: { clients: { type: 'string', default: '0,100,1000' }, changes: { type: 'string', default: '30' } } });
const COUNTS = args.clients.split(',').map(Number);
const CHANGES = Number(args.changes);
if (!existsSync(join(root, 'packages/server/dist/xds/server.js'))) {
  console.error('Beacon is not built: run `npm run build` first.');
  process.exit(1);
}

const TYPES = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
};
const pkg = grpc.loadPackageDefinition(
  protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [join(root, 'packages/server/protos')] }),
);
const Ads = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;

/** One ADS client: subscribes like a grpc-js channel to xds:///bench, ACKs, and notes when each EDS version arrived. */
function adsClient(addr, id, onEndpoints) {
  const client = new Ads(addr, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const call = client.StreamAggregatedResources();
  let first = true;
  const ask = (type, res) => {
    call.write({
      ...(first ? { node: { id, cluster: 'bench', user_agent_name: 'bench', locality: {} } } : {}),
      type_url: TYPES[type],
      resource_names: ['bench'],
      version_info: res?.version_info ?? '',
      response_nonce: res?.nonce ?? '',
    });
    first = false;
  };
  call.on('data', (res) => {
    if (res.type_url === TYPES.endpoint) onEndpoints(res.version_info, performance.now());
    ask(Object.keys(TYPES).find((k) => TYPES[k] === res.type_url), res);
  });
  call.on('error', () => {});
  for (const t of Object.keys(TYPES)) ask(t);
  return { close: () => (call.cancel(), client.close()) };
}

async function put(url, body) {
  const r = await fetch(url + '/api/v1/instances', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`register: ${r.status} ${await r.text()}`);
}

const results = [];
for (const n of COUNTS) {
  const [httpPort, xdsPort] = [await freePort(), await freePort()];
  const server = spawnNode('beacon', [join(root, 'packages/cli/bin/beacon.js'), 'server', '--dev', '--no-dns', '--http-addr', `127.0.0.1:${httpPort}`, '--xds-addr', `127.0.0.1:${xdsPort}`, '--log-level', 'warn', ...UNLIMITED_CLIENT]);
  const url = `http://127.0.0.1:${httpPort}`;
  try {
    await waitFor('the server', async () => (await fetch(url + '/readyz')).ok, 20_000, server);
    for (let i = 0; i < 5; i++) await put(url, { id: `b${i}`, service: 'bench', address: '127.0.0.1', port: 10_000 + i, zone: `z${i % 2}` });
    // Every client connected and holding the current endpoints before the clock starts.
    const latest = new Map();
    let waiting;
    const clients = [];
    for (let i = 0; i < n; i++) {
      clients.push(
        adsClient(`127.0.0.1:${xdsPort}`, `bench-${i}`, (version, at) => {
          latest.set(i, version);
          waiting?.(i, version, at);
        }),
      );
      if (i % 100 === 99) await sleep(20);
    }
    await waitFor(`${n} clients`, async () => latest.size === n && new Set(latest.values()).size <= 1, 120_000, server, 100);
    const lastMs = [];
    const eachMs = [];
    const cpu0 = procCpuMs(server.child.pid);
    const meter = cpuMeter(server.child.pid);
    for (let k = 0; k < CHANGES; k++) {
      const before = latest.get(0);
      const got = new Set();
      let t0 = 0;
      const all = new Promise((resolve) => {
        waiting = (i, version, at) => {
          if (version === before || got.has(i)) return;
          got.add(i);
          eachMs.push(at - t0);
          if (got.size === n) resolve(at - t0);
        };
      });
      t0 = performance.now();
      await put(url, { id: 'b0', service: 'bench', address: '127.0.0.1', port: 10_000, zone: 'z0', weight: 2 + (k % 100) });
      if (n > 0) lastMs.push(await Promise.race([all, sleep(30_000).then(() => NaN)]));
      else await sleep(20);
      await sleep(50);
    }
    waiting = undefined;
    const cpuMs = procCpuMs(server.child.pid) - cpu0;
    const load = meter();
    const mem = procMemMb(server.child.pid);
    for (const c of clients) c.close();
    const last = quantiles(lastMs, 1);
    const each = quantiles(eachMs, 1);
    results.push({ clients: n, changes: CHANGES, lastP50Ms: last.p50, lastP99Ms: last.p99, lastMaxMs: last.max, eachP50Ms: each.p50, cpuMsPerChange: round(cpuMs / CHANGES, 2), serverRssMb: mem.rssMb, ...load });
  } finally {
    await stopProcess(server);
  }
}
const base = results.find((r) => r.clients === 0)?.cpuMsPerChange;
for (const r of results) r.xdsCpuMsPerPush = base === undefined ? undefined : round(r.cpuMsPerChange - base, 2);

console.log('\nxDS: registry change → every connected client has the new ClusterLoadAssignment');
console.log('(one 2-core machine shared with other helpers\' builds and tests: figures are loaded-machine figures; CPU is /proc utime+stime at 10 ms resolution, summed over the run)\n');
console.log('clients | last client p50 ms | last client p99 ms | each delivery p50 ms | server CPU ms/change | of which xDS ms/push | server RSS MB | other CPU % (machine)');
console.log('---: | ---: | ---: | ---: | ---: | ---: | ---: | ---:');
for (const r of results)
  console.log(`${r.clients} | ${r.clients ? r.lastP50Ms : '-'} | ${r.clients ? r.lastP99Ms : '-'} | ${r.clients ? r.eachP50Ms : '-'} | ${r.cpuMsPerChange} | ${r.xdsCpuMsPerPush ?? '-'} | ${r.serverRssMb} | ${r.otherCpuPct}`);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'xds.json'), JSON.stringify({ at: new Date().toISOString(), note: 'shared 2-core machine, other helpers running', results }, null, 2) + '\n');
console.log('\nwritten bench/results/xds.json');
process.exit(0);
