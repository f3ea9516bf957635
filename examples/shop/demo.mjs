// The whole walk-through in one command: a Beacon server, three payments instances, orders, and
// load; mid-load one payments instance is killed hard (SIGKILL) and another is stopped gracefully
// (SIGTERM). It prints the load's per-second counts and exits non-zero if any order failed.
//
//   npm run build && node examples/shop/demo.mjs
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const seconds = Number(process.env.SECONDS ?? 12);
const procs = [];
process.on('exit', () => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function start(name, file, env) {
  const p = spawn(process.execPath, file, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = (d) => d.toString().trimEnd().split('\n').forEach((l) => console.log(l.startsWith('[') ? l : `[${name}] ${l}`));
  p.stdout.on('data', prefix);
  p.stderr.on('data', prefix);
  procs.push(p);
  return p;
}

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come up`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const beaconPort = await freePort();
const BEACON = `http://127.0.0.1:${beaconPort}`;
// The demo discovers over HTTP only: no DNS listener, so a busy port 8600 cannot stop it.
start('beacon', [join(root, 'packages/cli/bin/beacon.js'), 'server', '--dev', '--no-dns', '--http-addr', `127.0.0.1:${beaconPort}`, '--log-level', 'warn'], {});
await waitFor(`${BEACON}/api/v1/status`);
const payments = ['payments-1', 'payments-2', 'payments-3'].map((NAME) => start(NAME, [join(here, 'payments.mjs')], { BEACON, NAME }));
const ordersPort = await freePort();
start('orders', [join(here, 'orders.mjs')], { BEACON, PORT: String(ordersPort) });
await waitFor(`http://127.0.0.1:${ordersPort}/`);
for (;;) {
  const r = await (await fetch(`${BEACON}/api/v1/services/payments/instances?passing`)).json();
  if (r.instances.length === 3) break;
  await sleep(100);
}

const load = start('load', [join(here, 'load.mjs')], { ORDERS: `http://127.0.0.1:${ordersPort}`, SECONDS: String(seconds) });
const loadDone = new Promise((r) => load.once('exit', r));
await sleep(3_000);
console.log('[demo] >>> kill -9 payments-2 (a crash: no drain, no deregistration)');
payments[1].kill('SIGKILL');
await sleep(3_000);
console.log('[demo] >>> kill -TERM payments-3 (graceful: drain, grace period, deregister)');
payments[2].kill('SIGTERM');
const code = await loadDone;
const view = await (await fetch(`http://127.0.0.1:${ordersPort}/debug/payments`)).json();
console.log(`[demo] what orders' SDK knows now:\n${view.instances.map((i) => `    ${i.id}: candidate=${i.candidate} breaker=${i.breaker} inflight=${i.inflight} latency≈${i.latencyMs} ms`).join('\n') || '    (no instance)'}`);
console.log(`[demo] retries in the last 10 s: ${view.budget.retries} of ${view.budget.allowed} allowed by the budget`);
console.log(code === 0 ? '[demo] no order failed' : '[demo] some orders failed');
// Services first (they deregister), Beacon last.
const [beaconProc, ...services] = procs;
await Promise.all(services.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => new Promise((r) => (p.once('exit', r), p.kill('SIGTERM')))));
beaconProc.kill('SIGTERM');
await new Promise((r) => beaconProc.once('exit', r));
process.exit(code ?? 1);
