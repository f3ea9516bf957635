/**
 * DNS end to end: the real server (store → catalog view → registry) with the DNS front end on
 * real UDP and TCP sockets, asked by dig and by Node's resolver (c-ares).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';
import { ManualClock, systemClock, systemRandom } from '@beacon/core';
import { startServer, type RunningServer } from '../src/server.js';
import { createDnsServer, type DnsServer } from '../src/dns/server.js';
import { parseDnsConfig, type DnsConfigInput } from '../src/dns/config.js';
import { decode } from './dns-fixtures.js';
import { until } from './helpers.js';

const hasDig = spawnSync('sh', ['-c', 'command -v dig']).status === 0;
if (!hasDig) console.log('dig is not on PATH (Debian: dnsutils): the dig tests are skipped');

function dig(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 10_000 }, (err, stdout) =>
      err && !stdout ? reject(err) : resolve(stdout),
    ),
  );
}

function udpAsk(port: number, msg: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
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
    s.send(msg, port, '127.0.0.1');
  });
}

/** Sends several framed queries on one TCP connection, reads as many answers. */
function tcpAsk(port: number, msgs: Buffer[], localAddress?: string): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const s = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => {
      s.write(Buffer.concat(msgs.map((m) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]))));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === msgs.length) {
        s.end();
        resolve(out);
      }
    });
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error('tcp timeout')));
  });
}

const query = (name: string, type: packet.RecordType, id = 7, edns?: number) =>
  packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type }],
    ...(edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: edns } as packet.Answer] } : {}),
  });

describe('DNS over UDP and TCP, backed by the registry', () => {
  let server: RunningServer;
  let dns: DnsServer;
  let port: number;
  let resolver: Resolver;

  const start = async (input: DnsConfigInput = {}) => {
    const d = createDnsServer({
      catalog: server.catalog,
      config: parseDnsConfig({ addr: '127.0.0.1:0', ...input }),
      random: systemRandom,
      clock: systemClock,
    });
    const { udp, tcp } = await d.listen();
    expect(tcp.port).toBe(udp.port);
    return { d, port: udp.port };
  };

  beforeAll(async () => {
    server = await startServer({ dev: true, httpAddr: '127.0.0.1:0', nodeName: 'test-node' });
    ({ d: dns, port } = await start());
    resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    await server.registry.register({ service: 'web', address: '10.0.0.1', port: 8080, tags: ['v1'], meta: { version: '1.2' }, node: 'host-a' });
    await server.registry.register({ service: 'web', address: '10.0.0.2', port: 8081, tags: ['v2'], node: 'host-b' });
    await server.registry.register({ service: 'web', address: '2001:db8::3', port: 8082, tags: ['v1', 'canary'], node: 'host-c' });
  });

  afterAll(async () => {
    await dns?.close();
    await server?.close();
  });

  it('answers Node’s resolver: A, AAAA, SRV with its targets, TXT, and NXDOMAIN', async () => {
    expect((await resolver.resolve4('web.service.consul')).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(await resolver.resolve6('web.service.consul')).toEqual(['2001:db8::3']);
    const srv = await resolver.resolveSrv('web.service.consul');
    expect(srv.map((r) => `${r.priority} ${r.weight} ${r.port} ${r.name}`).sort()).toEqual([
      '1 1 8080 0a000001.addr.dc1.consul',
      '1 1 8081 0a000002.addr.dc1.consul',
      '1 1 8082 20010db8000000000000000000000003.addr.dc1.consul',
    ]);
    expect(await resolver.resolve4('0a000002.addr.dc1.consul')).toEqual(['10.0.0.2']);
    expect(await resolver.resolveTxt('web.service.consul')).toEqual([['version=1.2']]);
    expect((await resolver.resolve4('v1.web.service.consul')).sort()).toEqual(['10.0.0.1']);
    expect(await resolver.resolve6('canary.v1.web.service.consul')).toEqual(['2001:db8::3']);
    await expect(resolver.resolve4('nothing.service.consul')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolveMx('web.service.consul')).rejects.toMatchObject({ code: 'ENODATA' });
    expect(await resolver.resolve4('host-a.node.consul')).toEqual(['10.0.0.1']);
  });

  it.skipIf(!hasDig)('answers dig over UDP and TCP with AA set and the SOA on negatives', async () => {
    const a = await dig(port, ['web.service.consul', 'A', '+noall', '+answer', '+comments']);
    expect(a).toMatch(/flags: qr aa rd;/);
    expect(a).toMatch(/web\.service\.consul\.\s+0\s+IN\s+A\s+10\.0\.0\.1/);
    const srv = await dig(port, ['+tcp', '_web._v2.service.dc1.consul', 'SRV', '+noall', '+answer', '+additional']);
    expect(srv).toMatch(/SRV\s+1 1 8081 0a000002\.addr\.dc1\.consul\./);
    expect(srv).toMatch(/0a000002\.addr\.dc1\.consul\.\s+0\s+IN\s+A\s+10\.0\.0\.2/);
    const nx = await dig(port, ['WEB.service.dc9.consul', 'A']);
    expect(nx).toMatch(/status: NXDOMAIN/);
    expect(nx).toMatch(/AUTHORITY SECTION:\nconsul\.\s+0\s+IN\s+SOA\s+ns\.consul\. hostmaster\.consul\./);
    const nodata = await dig(port, ['web.service.consul', 'CAA']);
    expect(nodata).toMatch(/status: NOERROR/);
    expect(nodata).toMatch(/ANSWER: 0, AUTHORITY: 1/);
    const outside = await dig(port, ['example.com', 'A']);
    expect(outside).toMatch(/status: REFUSED/);
  });

  it.skipIf(!hasDig)('answers dig ANY minimally (RFC 8482): one RRset, over UDP and TCP', async () => {
    for (const tcp of [[], ['+tcp']]) {
      const any = await dig(port, [...tcp, 'web.service.consul', 'ANY', '+noall', '+answer', '+authority', '+additional']);
      // Both IPv4 addresses (one RRset), not the IPv6 one, nothing else.
      expect(any.trim().split('\n').map((l) => l.split(/\s+/).slice(3).join(' ')).sort()).toEqual(['A 10.0.0.1', 'A 10.0.0.2']);
      const apex = await dig(port, [...tcp, 'consul', 'ANY', '+noall', '+answer', '+authority', '+additional']);
      expect(apex.trim().split('\n')).toHaveLength(1);
      expect(apex).toMatch(/^consul\.\s+0\s+IN\s+SOA\s+ns\.consul\./);
    }
    const v6only = await dig(port, ['canary.v1.web.service.consul', 'ANY', '+noall', '+answer']);
    expect(v6only.trim().split('\n').map((l) => l.split(/\s+/).slice(3).join(' '))).toEqual(['AAAA 2001:db8::3']);
  });

  it('drops an instance from the answers when its check fails, and takes it back when it passes', async () => {
    await server.registry.register({
      service: 'api',
      address: '10.1.0.1',
      port: 9000,
      checks: [{ id: 'api-1-ttl', kind: 'ttl', ttlMs: 60_000, status: 'passing' }],
    });
    await server.registry.register({ service: 'api', address: '10.1.0.2', port: 9000 });
    expect((await resolver.resolve4('api.service.consul')).sort()).toEqual(['10.1.0.1', '10.1.0.2']);
    await server.registry.reportCheck('api-1-ttl', 'critical', 'down');
    expect(await resolver.resolve4('api.service.consul')).toEqual(['10.1.0.2']);
    expect((await resolver.resolveSrv('api.service.consul')).map((r) => r.name)).toEqual(['0a010002.addr.dc1.consul']);
    await server.registry.reportCheck('api-1-ttl', 'warning', 'slow');
    expect((await resolver.resolve4('api.service.consul')).sort()).toEqual(['10.1.0.1', '10.1.0.2']);
    await server.registry.reportCheck('api-1-ttl', 'passing');
    await server.registry.deregister('api-10.1.0.2-9000');
    expect(await resolver.resolve4('api.service.consul')).toEqual(['10.1.0.1']);
  });

  it('follows writes made over the HTTP API: a failed check, maintenance and draining take an instance out', async () => {
    const http = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${server.httpUrl}/api/v1${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(res.status, `${method} ${path}: ${await res.clone().text()}`).toBe(200);
      return res.json();
    };
    for (const i of [1, 2, 3])
      await http('PUT', '/instances', { id: `cart-${i}`, service: 'cart', address: `10.4.0.${i}`, port: 80, checks: [{ id: `cart-${i}-ttl`, kind: 'ttl', ttlMs: 60_000, status: 'passing' }] });
    const a = async () => (await resolver.resolve4('cart.service.consul').catch(() => [])).sort();
    expect(await a()).toEqual(['10.4.0.1', '10.4.0.2', '10.4.0.3']);
    await http('PUT', '/checks/cart-1-ttl/fail', { note: 'db down' });
    expect(await a()).toEqual(['10.4.0.2', '10.4.0.3']);
    await http('PUT', '/instances/cart-2/maintenance', { enable: true, reason: 'upgrade' });
    expect(await a()).toEqual(['10.4.0.3']);
    await http('PUT', '/instances/cart-3/drain', { reason: 'shutting down' });
    expect(await a()).toEqual([]);
    await expect(resolver.resolveSrv('cart.service.consul')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await http('PUT', '/checks/cart-1-ttl/pass', {});
    expect(await a()).toEqual(['10.4.0.1']);
  });

  it('leaves warning instances out with only-passing', async () => {
    const strict = await start({ onlyPassing: true });
    try {
      await server.registry.register({ service: 'pay', address: '10.2.0.1', port: 1, checks: [{ id: 'pay-1', kind: 'ttl', ttlMs: 60_000, status: 'warning' }] });
      await server.registry.register({ service: 'pay', address: '10.2.0.2', port: 1 });
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`127.0.0.1:${strict.port}`]);
      expect(await r.resolve4('pay.service.consul')).toEqual(['10.2.0.2']);
      expect((await resolver.resolve4('pay.service.consul')).sort()).toEqual(['10.2.0.1', '10.2.0.2']);
    } finally {
      await strict.d.close();
    }
  });

  it('sets TC for 100 instances over UDP without EDNS, and returns them all over TCP', async () => {
    for (let i = 0; i < 100; i++) await server.registry.register({ service: 'many', address: `10.9.${i >> 8}.${i & 255}`, port: 7000 + i });
    const udp = decode((await udpAsk(port, query('many.service.consul', 'SRV')))!);
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    const [tcp] = await tcpAsk(port, [query('many.service.consul', 'SRV')]);
    const m = decode(tcp!);
    expect(m.flag_tc).toBe(false);
    expect(m.answers).toHaveLength(100);
    expect(m.additionals).toHaveLength(100);
    // c-ares retries over TCP by itself.
    expect(await resolver.resolve4('many.service.consul')).toHaveLength(100);
    if (hasDig) {
      expect(await dig(port, ['+noedns', '+ignore', 'many.service.consul', 'A'])).toMatch(/flags: qr aa tc rd;/);
      const full = await dig(port, ['many.service.consul', 'SRV', '+noall', '+answer']);
      expect(full.trim().split('\n')).toHaveLength(100);
    }
  });

  it('answers several pipelined queries on one TCP connection, in any case, echoing the question', async () => {
    const answers = await tcpAsk(port, [query('WEB.service.consul', 'A', 1), query('web.SERVICE.consul', 'SRV', 2), query('consul', 'SOA', 3)]);
    const msgs = answers.map((a) => decode(a)).sort((a, b) => a.id! - b.id!);
    expect(msgs.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(msgs[0]!.questions![0]!.name).toBe('WEB.service.consul');
    expect(msgs[0]!.answers).toHaveLength(2);
    expect(msgs[1]!.answers).toHaveLength(3);
    expect(msgs[2]!.answers![0]!.type).toBe('SOA');
  });

  it('closes TCP connections that send a bogus length, sit idle, or come over the cap', async () => {
    const small = await start({ tcpIdleTimeout: '200ms', tcpMaxConnections: 2 });
    try {
      const closed = (s: net.Socket) => new Promise<void>((r) => s.on('close', () => r()));
      const bogus = net.connect(small.port, '127.0.0.1');
      bogus.on('error', () => {});
      bogus.write(Buffer.from([0, 3, 1, 2, 3]));
      await closed(bogus);
      const idle = net.connect(small.port, '127.0.0.1');
      idle.on('error', () => {});
      await closed(idle);
      const keep = [net.connect(small.port, '127.0.0.1'), net.connect(small.port, '127.0.0.1')];
      await Promise.all(keep.map((k) => new Promise((r) => k.on('connect', r))));
      const third = net.connect(small.port, '127.0.0.1');
      third.on('error', () => {});
      let got = 0;
      third.on('data', () => got++);
      await closed(third);
      expect(got).toBe(0);
      for (const k of keep) k.destroy();
    } finally {
      await small.d.close();
    }
  });

  it('closes trickling TCP connections at their frame deadline and caps connections per client', async () => {
    // One byte every 50 ms: a deadline that partial bytes re-armed would never fire.
    const small = await start({ tcpFrameTimeout: '200ms', tcpIdleTimeout: '5s', tcpMaxConnectionsPerClient: 3, tcpMaxConnections: 8 });
    const sockets: net.Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      const q = query('web.service.consul', 'A', 41);
      const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
      const trickle = (localAddress: string) =>
        new Promise<number>((resolve, reject) => {
          const s = net.connect({ port: small.port, host: '127.0.0.1', localAddress });
          sockets.push(s);
          s.on('error', () => {});
          let started = 0;
          let sent = 0;
          s.on('connect', () => {
            started = Date.now();
            const t = setInterval(() => {
              if (sent < framed.length - 1) s.write(framed.subarray(sent, ++sent));
              else reject(new Error('the whole frame but one byte went out and the connection is still open'));
            }, 50);
            timers.push(t);
            s.write(framed.subarray(sent, ++sent));
            s.on('close', () => {
              clearInterval(t);
              resolve(Date.now() - started);
            });
          });
        });
      const flood = [trickle('127.0.0.1'), trickle('127.0.0.1'), trickle('127.0.0.1')];
      expect(await until(async () => small.d.stats().tcpConnections, (n) => n === 3)).toBe(3);
      // The client's share is taken: a fourth connection from it is closed at once, unanswered.
      const extra = net.connect({ port: small.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
      sockets.push(extra);
      extra.on('error', () => {});
      extra.on('connect', () => extra.write(framed));
      let got = 0;
      extra.on('data', () => got++);
      await new Promise((r) => extra.on('close', r));
      expect(got).toBe(0);
      // Another client is answered while the flood holds its cap.
      const other = await tcpAsk(small.port, [query('web.service.consul', 'A', 42)], '127.0.0.2');
      expect(decode(other[0]!).answers).toHaveLength(2);
      // Each trickler is closed at its deadline, counted from its first byte.
      for (const held of await Promise.all(flood)) {
        expect(held).toBeGreaterThanOrEqual(150);
        expect(held).toBeLessThan(2000);
      }
      // Its slots freed, the same address is answered again.
      const again = await tcpAsk(small.port, [query('web.service.consul', 'A', 43)], '127.0.0.1');
      expect(decode(again[0]!).id).toBe(43);
      expect(small.d.stats()).toMatchObject({ tcpRefused: 1, tcpTimedOut: 3 });
    } finally {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await small.d.close();
    }
  });

  it.skipIf(!hasDig)('answers dig over TCP while one client holds its whole share of connections', async () => {
    const small = await start({ tcpMaxConnectionsPerClient: 2, tcpMaxConnections: 3 });
    // Three from one client would take every slot; its third is refused, and dig gets the slot.
    const hogs = [0, 1, 2].map(() => net.connect({ port: small.port, host: '127.0.0.1', localAddress: '127.0.0.2' }).on('error', () => {}));
    try {
      const taken = async () => small.d.stats().tcpConnections + small.d.stats().tcpRefused;
      expect(await until(taken, (n) => n === 3)).toBe(3);
      const out = await dig(small.port, ['+tcp', 'web.service.consul', 'A', '+short']);
      expect(out.trim().split('\n').sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    } finally {
      for (const h of hogs) h.destroy();
      await small.d.close();
    }
  });

  it('rate-limits UDP responses per /24 (manual clock): slip 2 answers every other limited one with TC; TCP is not limited', async () => {
    const clock = new ManualClock();
    const limited = createDnsServer({ catalog: server.catalog, config: parseDnsConfig({ addr: '127.0.0.1:0', rrlRate: 2 }), random: systemRandom, clock });
    const { udp } = await limited.listen();
    /** Sends n queries from `from` at once; the replies that come back within 300 ms. */
    const burst = (from: string, n: number) =>
      new Promise<packet.Packet[]>((resolve) => {
        const s = dgram.createSocket('udp4');
        const got: packet.Packet[] = [];
        s.on('message', (m) => got.push(decode(m)));
        s.bind(0, from, () => {
          for (let i = 1; i <= n; i++) s.send(query('web.service.consul', 'A', i), udp.port, '127.0.0.1');
          setTimeout(() => (s.close(), resolve(got)), 300);
        });
      });
    try {
      const replies = await burst('127.0.0.1', 8);
      const full = replies.filter((r) => !r.flag_tc);
      const tc = replies.filter((r) => r.flag_tc);
      expect(full).toHaveLength(2);
      expect(full.every((r) => r.answers!.length === 2)).toBe(true);
      // Six limited: the 2nd, 4th and 6th go out as empty TC replies, the others are dropped.
      expect(tc).toHaveLength(3);
      expect(tc.every((r) => r.answers!.length === 0 && r.questions![0]!.name === 'web.service.consul')).toBe(true);
      expect((await limited.counts()).rateLimited).toEqual([3, 3]);
      // Another /24 has a bucket of its own.
      expect((await burst('127.0.1.1', 1)).map((r) => r.flag_tc)).toEqual([false]);
      // TCP (which cannot be spoofed) is not limited.
      const [overTcp] = await tcpAsk(udp.port, [query('web.service.consul', 'A', 77)]);
      expect(decode(overTcp!).answers).toHaveLength(2);
      // A second later the bucket has refilled.
      clock.advance(1000);
      expect((await burst('127.0.0.1', 2)).filter((r) => !r.flag_tc)).toHaveLength(2);
    } finally {
      await limited.close();
    }
  });

  it('listens on IPv6 loopback too', async () => {
    const v6 = createDnsServer({ catalog: server.catalog, config: parseDnsConfig({ addr: '[::1]:0' }), random: systemRandom, clock: systemClock });
    const { udp, tcp } = await v6.listen();
    try {
      expect(udp.family).toBe('IPv6');
      expect(tcp.port).toBe(udp.port);
      const r = new Resolver({ timeout: 2000, tries: 1 });
      r.setServers([`[::1]:${udp.port}`]);
      expect((await r.resolve4('web.service.consul')).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
      expect(await r.resolve6('ns.consul')).toEqual(['::1']);
    } finally {
      await v6.close();
    }
  });

  it('honours the EDNS size a client advertises and echoes OPT', async () => {
    const big = decode((await udpAsk(port, query('many.service.consul', 'A', 9, 4096)))!);
    // 100 A records take 1,6xx bytes: past our 1232 cap even though the client offers 4096.
    expect(big.flag_tc).toBe(true);
    expect(big.additionals!.some((a) => a.type === 'OPT')).toBe(true);
    const ok = decode((await udpAsk(port, query('web.service.consul', 'SRV', 10, 1232)))!);
    expect(ok.flag_tc).toBe(false);
    expect(ok.answers).toHaveLength(3);
    expect((ok.additionals!.find((a) => a.type === 'OPT') as unknown as { udpPayloadSize: number }).udpPayloadSize).toBe(1232);
  });
});

describe('DNS recursor', () => {
  let upstream: dgram.Socket;
  let upstreamPort: number;
  let silent: dgram.Socket;

  beforeAll(async () => {
    upstream = dgram.createSocket('udp4');
    upstream.on('message', (msg, rinfo) => {
      const q = packet.decode(msg);
      const reply = packet.encode({
        type: 'response',
        id: q.id,
        flags: packet.RECURSION_AVAILABLE | (q.flags! & packet.RECURSION_DESIRED),
        questions: q.questions,
        answers: [{ name: q.questions![0]!.name, type: 'A', ttl: 60, data: '192.0.2.7' }],
      });
      upstream.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
    upstreamPort = upstream.address().port;
    silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  });

  afterAll(async () => {
    await new Promise<void>((r) => upstream.close(() => r()));
    await new Promise<void>((r) => silent.close(() => r()));
  });

  const withDns = async (recursor: string, fn: (port: number) => Promise<void>) => {
    const catalog = { index: 1, service: (name: string) => ({ name, index: 1, instances: [] }), services: () => [], node: () => undefined };
    const d = createDnsServer({
      catalog,
      config: parseDnsConfig({ addr: '127.0.0.1:0', recursor, recursorTimeout: '300ms' }),
      random: systemRandom,
      clock: systemClock,
    });
    const { udp } = await d.listen();
    try {
      await fn(udp.port);
    } finally {
      await d.close();
    }
  };

  it('forwards names outside the domain and relays the answer with the client’s ID', async () => {
    await withDns(`127.0.0.1:${upstreamPort}`, async (p) => {
      const reply = decode((await udpAsk(p, query('Example.COM', 'A', 4321)))!);
      expect(reply.id).toBe(4321);
      expect(reply.rcode).toBe('NOERROR');
      expect(reply.flag_ra).toBe(true);
      expect(reply.answers!.map((a) => (a as { data: string }).data)).toEqual(['192.0.2.7']);
      const [tcp] = await tcpAsk(p, [query('example.org', 'A', 77)]);
      expect(decode(tcp!).answers).toHaveLength(1);
      const inZone = decode((await udpAsk(p, query('x.service.consul', 'A', 5)))!);
      expect(inZone.rcode).toBe('NXDOMAIN');
      expect(inZone.flag_ra).toBe(true);
    });
  });

  it('answers SERVFAIL when the recursor does not answer in time', async () => {
    await withDns(`127.0.0.1:${silent.address().port}`, async (p) => {
      const reply = decode((await udpAsk(p, query('example.com', 'A', 99)))!);
      expect(reply.id).toBe(99);
      expect(reply.rcode).toBe('SERVFAIL');
    });
  });
});
