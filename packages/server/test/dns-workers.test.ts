/**
 * Several processes answering UDP on one port (the built server: worker processes run
 * dist/dns/worker-main.js), with the batched-UDP addon and with Node's dgram. Answers stay right whichever process reads a packet, follow
 * registry changes, and node names (answered by the server process) work too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import * as packet from 'dns-packet';
import { systemClock, systemRandom } from '@beacon/core';
import { startServer, type RunningServer } from '../src/server.js';
import type { createDnsServer as CreateDnsServer, parseDnsConfig as ParseDnsConfig, DnsServer } from '../src/dns/index.js';
import { LATENCY_SAMPLE, querySeries, type DnsCountsSnapshot } from '../src/dns/counts.js';
import { decode, type DecodedMessage } from './dns-fixtures.js';

const dist = fileURLToPath(new URL('../dist/dns/index.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/dns/worker-main.js', import.meta.url)));
if (!built) console.log('packages/server/dist is not built (npm run build): the DNS worker-process test is skipped');

const addonBuilt = existsSync(fileURLToPath(new URL('../native/build/udp.node', import.meta.url)));
if (!addonBuilt) console.log('the batched-UDP addon is not built (npm run build, needs a C compiler): the DNS worker tests run on dgram only');

/** Sockets a burst is sent from: with SO_REUSEPORT the kernel picks a process per source port, so one port would reach one process. */
const SOURCES = 8;

/** Many queries from SOURCES sockets, 64 in flight at a time (a burst past the socket buffers would just be lost). */
async function burst(port: number, names: string[], type: packet.RecordType): Promise<DecodedMessage[]> {
  const sockets = Array.from({ length: Math.min(SOURCES, names.length) }, () => dgram.createSocket('udp4'));
  const replies = new Map<number, DecodedMessage>();
  let sent = 0;
  const sendNext = () => {
    if (sent < names.length) {
      sockets[sent % sockets.length]!.send(packet.encode({ type: 'query', id: sent, questions: [{ name: names[sent]!, type }] }), port, '127.0.0.1');
      sent++;
    }
  };
  const done = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${replies.size} of ${names.length} answered`)), 10_000);
    for (const s of sockets)
      s.on('message', (m) => {
        const d = decode(m);
        replies.set(d.id, d);
        if (replies.size === names.length) {
          clearTimeout(t);
          resolve();
        } else sendNext();
      });
  });
  for (let i = 0; i < 64; i++) sendNext();
  try {
    await done;
  } finally {
    for (const s of sockets) s.close();
  }
  return names.map((_, i) => replies.get(i)!);
}

// Each worker binds its own socket on the port with the addon (SO_REUSEPORT), or reads the server's socket passed over IPC without it.
describe.skipIf(!built).each([
  { mode: addonBuilt ? 'batched UDP' : 'dgram (addon not built)', udpBatching: true },
  { mode: 'dgram', udpBatching: false },
])('DNS with several UDP processes, $mode', ({ udpBatching }) => {
  let server: RunningServer;
  let dns: DnsServer;
  let port: number;

  let loaded: { createDnsServer: typeof CreateDnsServer; parseDnsConfig: typeof ParseDnsConfig } | undefined;
  const mod = () => loaded!;

  /** Two UDP worker processes, with another DC ("eu", here this same catalog) and a prepared query: workers hand both to the main process. */
  const federatedDns = (): DnsServer =>
    mod().createDnsServer({
      catalog: server.catalog,
      config: mod().parseDnsConfig({ addr: '127.0.0.1:0', udpProcesses: 2 }),
      federation: {
        remote: (dc) => (dc === 'eu' ? server.catalog : undefined),
        query: (name) => (name === 'near-s2' ? { service: 's2', datacenter: 'eu', instances: server.catalog.service('s2').instances, ttl: 7 } : undefined),
      },
      random: systemRandom,
      clock: systemClock,
      udpBatching,
    });

  beforeAll(async () => {
    loaded = (await import(dist)) as typeof loaded;
    server = await startServer({ dev: true, httpAddr: '127.0.0.1:0', nodeName: 'n0' });
    for (let s = 0; s < 20; s++)
      for (let i = 0; i < 3; i++) await server.registry.register({ service: `s${s}`, address: `10.5.${s}.${i + 1}`, port: 80, node: `host-${s}-${i}` });
    dns = federatedDns();
    port = (await dns.listen()).udp.port;
  });

  afterAll(async () => {
    await dns?.close();
    await server?.close();
  });

  it('answers names of another datacenter and prepared queries through the main process', async () => {
    const names = Array.from({ length: 200 }, (_, i) => (i % 2 ? `s${i % 20}.service.eu.consul` : 'near-s2.query.consul'));
    const replies = await burst(port, names, 'SRV');
    replies.forEach((r, i) => {
      const targets = r.answers.map((a) => (a.data as { target: string }).target).sort();
      const s = i % 2 ? i % 20 : 2;
      expect(targets, names[i]).toEqual([1, 2, 3].map((k) => `0a05${s.toString(16).padStart(2, '0')}0${k}.addr.eu.consul`));
    });
    expect((await burst(port, ['s1.service.mars.consul'], 'A'))[0]!.rcode).toBe('NXDOMAIN');
  });

  it('answers right from every process, follows registry changes, and answers node names', async () => {
    const names = Array.from({ length: 3000 }, (_, i) => `s${i % 20}.service.consul`);
    const replies = await burst(port, names, 'A');
    replies.forEach((r, i) => {
      const s = i % 20;
      expect(r.rcode).toBe('NOERROR');
      expect(r.answers.map((a) => a.data).sort()).toEqual([1, 2, 3].map((k) => `10.5.${s}.${k}`));
    });

    await server.registry.register({ service: 's0', address: '10.5.0.9', port: 80 });
    await server.registry.deregister('s1-10.5.1.1-80');
    // The worker's replica follows the catalog over IPC: within moments, every process agrees.
    for (let attempt = 0; ; attempt++) {
      const after = await burst(port, Array.from({ length: 400 }, (_, i) => `s${i % 2}.service.consul`), 'A');
      const ok = after.every((r, i) => r.answers.length === (i % 2 === 0 ? 4 : 2));
      if (ok) break;
      expect(attempt).toBeLessThan(50);
      await new Promise((r) => setTimeout(r, 20));
    }

    const nodes = await burst(port, Array.from({ length: 200 }, (_, i) => `HOST-${i % 20}-2.node.consul`), 'A');
    nodes.forEach((r, i) => expect(r.answers.map((a) => a.data)).toEqual([`10.5.${i % 20}.3`]));

    await dns.close();
    const stats = dns.stats();
    expect(stats.failures).toBe(0);
    // Both processes read the socket; the split is the kernel's.
    console.log(`queries: ${stats.queries}, of which the worker process answered ${stats.workerQueries}`);
    expect(stats.queries).toBeGreaterThanOrEqual(3000 + 400 + 200);
    expect(stats.workerQueries).toBeGreaterThan(0);
  });

  it('rate-limits UDP responses in the worker processes too, each with its own buckets', async () => {
    const limited = mod().createDnsServer({
      catalog: server.catalog,
      config: mod().parseDnsConfig({ addr: '127.0.0.1:0', udpProcesses: 2, rrlRate: 5 }),
      random: systemRandom,
      clock: systemClock,
      udpBatching,
    });
    try {
      const p = (await limited.listen()).udp.port;
      // Several source ports (one /24 for the limiter): with SO_REUSEPORT each port reaches one process.
      const sockets = Array.from({ length: 2 * SOURCES }, () => dgram.createSocket('udp4'));
      const replies: DecodedMessage[] = [];
      for (const s of sockets) s.on('message', (m) => replies.push(decode(m)));
      const started = Date.now();
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
      // Batches, so that both processes get some to read (one burst is drained by whichever is awake).
      const query = packet.encode({ type: 'query', id: 1, questions: [{ name: 's1.service.consul', type: 'A' }] });
      for (let batch = 0; batch < 40; batch++) {
        for (let i = 0; i < 25; i++) sockets[(batch * 25 + i) % sockets.length]!.send(query, p, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const s of sockets) s.close();
      const seconds = (Date.now() - started) / 1000;
      const counts = await limited.counts();
      await limited.close();
      const { workerQueries } = limited.stats();
      // Every process's limited answers are counted (for /metrics); loopback may lose a packet, not add one.
      expect(counts.rateLimited[1]).toBeGreaterThanOrEqual(replies.filter((r) => r.flag_tc).length);
      expect(counts.rateLimited[0]).toBeGreaterThan(0);
      const full = replies.filter((r) => !r.flag_tc).length;
      console.log(`rrl: ${full} full, ${replies.length - full} TC of 1000 in ${seconds}s; worker read ${workerQueries}`);
      // At most each process's burst (5) plus what refilled meanwhile, however the kernel split the 1,000.
      expect(full).toBeLessThanOrEqual(2 * (5 + Math.ceil(5 * seconds)));
      expect(replies.some((r) => r.flag_tc)).toBe(true);
      // The worker read more than it may answer: it limited its share itself.
      expect(workerQueries).toBeGreaterThan(5 + Math.ceil(5 * seconds));
    } finally {
      await limited.close();
    }
  });

  it('counts the answers of every process, live and after the workers stopped', async () => {
    const own = federatedDns();
    try {
      const p = (await own.listen()).udp.port;
      await burst(p, Array.from({ length: 1000 }, (_, i) => `s${i % 20}.service.consul`), 'A');
      await burst(p, Array.from({ length: 100 }, (_, i) => `none${i}.service.consul`), 'SRV');
      const series = (c: DnsCountsSnapshot) => new Map([...querySeries(c)].filter((x) => x.value > 0).map((x) => [`${x.type} ${x.rcode} ${x.proto}`, x.value]));
      const live = await own.counts();
      expect(series(live)).toEqual(new Map([['A NOERROR udp', 1000], ['SRV NXDOMAIN udp', 100]]));
      // Each process times one answer in LATENCY_SAMPLE, its first included.
      const timed = live.latency.reduce((a, b) => a + b, 0);
      expect(timed).toBeGreaterThanOrEqual(Math.floor(1100 / LATENCY_SAMPLE));
      expect(timed).toBeLessThanOrEqual(Math.ceil(1100 / LATENCY_SAMPLE) + 1);
      await own.close();
      // The worker's share is kept when it stops, so the counters never go back.
      expect(own.stats().workerQueries).toBeGreaterThan(0);
      expect(series(await own.counts())).toEqual(series(live));
    } finally {
      await own.close();
    }
  });
});
