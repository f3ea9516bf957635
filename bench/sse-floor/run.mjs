#!/usr/bin/env node
// The floor under SSE fan-out on this machine: `npm run bench -- sse-floor [--streams N] [--writes N]`.
//
// No Beacon here: a bare Node process holds N chunked event streams (plain `net` sockets) and
// writes one ~600-byte chunk to all of them, the way Beacon's fan-out does, in three ways:
//   node       one socket.write per stream (Beacon's path without the addon)
//   addon×1    the fan-out addon's send(2) loop on the event-loop thread
//   addon×2    the same split over 2 threads (Beacon's choice from 1,024 streams on 2 cores)
// The C load generator (bench/lib/watch-loadgen.c) stamps when each stream got the chunk.
// Prints a table and writes bench/results/sse-floor.json.
import net from 'node:net';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, quantiles, round } from '../lib/proc.mjs';
import { buildWatchLoadgen, openCLoadgen } from '../lib/watch-loadgen.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values: args } = parseArgs({ options: { streams: { type: 'string', default: '10000' }, writes: { type: 'string', default: '5' } } });
const N = Number(args.streams);
const WRITES = Number(args.writes);
const addonFile = join(root, 'packages/server/native/build/fanout.node');
const addon = existsSync(addonFile) ? createRequire(import.meta.url)(addonFile) : undefined;
if (!addon) console.log('the fan-out addon is not built (npm run build): only the node row is measured');
const built = buildWatchLoadgen();
if (!built.binary) throw new Error(`the C load generator could not be built: ${built.reason}`);

const chunk = (text) => {
  const b = Buffer.from(text);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
};
const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
const frame = (token) =>
  chunk(`event: change\ndata: {"type":"upsert","instance":{"id":"fansse-0","service":"fansse","address":"127.0.0.1","port":8000,"meta":{"version":"2.14.1","team":"payments",${token}},"tags":["a","b"],"zone":"z1","weight":100,"status":"passing","note":"${'x'.repeat(400)}"}}\n\n`);

const ways = {
  node: (socks, f) => {
    for (const s of socks) s.write(f);
  },
  ...(addon
    ? Object.fromEntries(
        [1, 2].map((threads) => [
          `addon×${threads}`,
          (socks, f) => {
            const fds = Int32Array.from(socks, (s) => s._handle.fd);
            const out = new Int32Array(fds.length);
            addon.sendAll(fds, f, out, threads);
            for (let i = 0; i < out.length; i++) if (out[i] !== f.length) socks[i].write(out[i] > 0 ? f.subarray(out[i]) : f);
          },
        ]),
      )
    : {}),
};

const socks = [];
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.once('data', () => {
    s.write(HEAD + chunk('event: reset\ndata: {}\n\n').toString());
    socks.push(s);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const gen = await openCLoadgen(built.binary, { mode: 'sse', port: server.address().port, path: '/watch', count: N });
const rows = [];
try {
  for (const [way, send] of Object.entries(ways)) {
    const writes = [];
    for (let k = 0; k <= WRITES; k++) {
      const token = `"seq":"${way}-${k}"`;
      const f = frame(token);
      let t0;
      let cpuMs;
      const got = await gen.expect(token, async () => {
        t0 = process.hrtime.bigint();
        const c0 = process.cpuUsage();
        send(socks, f);
        const c = process.cpuUsage(c0);
        cpuMs = (c.user + c.system) / 1000;
      });
      const lat = got.times.filter((t) => t !== 0n).map((t) => Number(t - t0) / 1e6);
      if (k > 0) writes.push({ ...quantiles(lat), delivered: lat.length, sendCpuMs: round(cpuMs, 1), loadgenCpuMs: got.cpuMs });
      await new Promise((r) => setTimeout(r, 100));
    }
    const p99s = writes.map((w) => w.p99);
    rows.push({ way, writes, p99MedianMs: quantiles(p99s).p50, p99WorstMs: round(Math.max(...p99s), 2), sendCpuMsMedian: quantiles(writes.map((w) => w.sendCpuMs)).p50 });
  }
} finally {
  await gen.close();
  for (const s of socks) s.destroy();
  server.close();
}

console.log(`\n${N} streams, ${WRITES} writes each (after one warm-up)`);
console.log(`${'way'.padEnd(8)}  ${'p99 (median of writes)'.padEnd(24)}  ${'p99 worst'.padEnd(10)}  CPU in the send call (median)`);
for (const r of rows) console.log(`${r.way.padEnd(8)}  ${`${r.p99MedianMs} ms`.padEnd(24)}  ${`${r.p99WorstMs} ms`.padEnd(10)}  ${r.sendCpuMsMedian} ms`);
const out = join(root, 'bench/results/sse-floor.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ benchmark: 'sse-floor', startedAt: new Date().toISOString(), machine: machine(), streams: N, rows }, null, 2)}\n`);
console.log(`wrote ${out}`);
