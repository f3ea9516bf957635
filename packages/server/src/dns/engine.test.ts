import { describe, expect, it } from 'vitest';
import * as packet from 'dns-packet';
import { errors, ManualClock, seededRandom } from '@beacon/core';
import { decode, FakeCatalog, type DecodedRecord } from '../../test/dns-fixtures.js';
import { parseDnsConfig, type DnsConfigInput } from './config.js';
import { DnsEngine } from './engine.js';
import { querySeries } from './counts.js';

type Q = { name: string; type: packet.RecordType; class?: packet.RecordClass };

function setup(input: DnsConfigInput = {}) {
  const catalog = new FakeCatalog();
  const clock = new ManualClock();
  const engine = new DnsEngine({
    catalog,
    config: parseDnsConfig(input),
    random: seededRandom(7),
    clock,
    nsAddress: Buffer.from([127, 0, 0, 1]),
  });
  const ask = (q: Q, opts: { edns?: number; transport?: 'udp' | 'tcp'; id?: number; flags?: number } = {}) => {
    const raw = packet.encode({
      type: 'query',
      id: opts.id ?? 4242,
      flags: opts.flags ?? packet.RECURSION_DESIRED,
      questions: [{ name: q.name, type: q.type, class: q.class ?? 'IN' }],
      ...(opts.edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, flags: 0 } as packet.Answer] } : {}),
    });
    const out = engine.handle(raw, opts.transport ?? 'udp');
    if (!out || out instanceof Promise) throw new Error('expected a synchronous reply');
    return { bytes: out, msg: decode(out) };
  };
  return { catalog, engine, ask, clock };
}

const data = (answers: DecodedRecord[] | undefined, type: string) => (answers ?? []).filter((a) => a.type === type).map((a) => a.data);

describe('DNS engine', () => {
  it('answers A, AAAA, SRV, TXT and ANY for a service from its ready instances', () => {
    const { catalog, ask } = setup();
    catalog.set('web', [
      { address: '10.0.0.1', port: 8080, meta: { version: '2' } },
      { address: '10.0.0.2', port: 8081, status: 'warning' },
      { address: 'fd00::3', port: 8082 },
      { address: '10.0.0.4', port: 8083, status: 'critical' },
      { address: '10.0.0.5', port: 8084, maintenance: true },
    ]);
    const a = ask({ name: 'web.service.consul', type: 'A' });
    expect(a.msg.rcode).toBe('NOERROR');
    expect(a.msg.flags! & 0x400).toBeTruthy(); // AA
    expect(a.msg.id).toBe(4242);
    expect(a.msg.flag_rd).toBe(true);
    expect(data(a.msg.answers, 'A').sort()).toEqual(['10.0.0.1', '10.0.0.2']);

    expect(data(ask({ name: 'web.service.consul', type: 'AAAA' }).msg.answers, 'AAAA')).toEqual(['fd00::3']);
    // RFC 8482: ANY gets one RRset, the IPv4 addresses when there are any, else the IPv6 ones.
    const any = ask({ name: 'web.service.consul', type: 'ANY' as packet.RecordType }).msg;
    expect(any.answers!.map((r) => r.type)).toEqual(['A', 'A']);
    expect(data(any.answers, 'A').sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(any.additionals ?? []).toEqual([]);

    const srv = ask({ name: 'web.service.consul', type: 'SRV' }).msg;
    const targets = (srv.answers).map((r) => `${r.data.priority} ${r.data.weight} ${r.data.port} ${r.data.target}`).sort();
    expect(targets).toEqual([
      '1 1 8080 0a000001.addr.dc1.consul',
      '1 1 8081 0a000002.addr.dc1.consul',
      '1 1 8082 fd000000000000000000000000000003.addr.dc1.consul',
    ]);
    const glue = (srv.additionals ?? []).map((r) => `${r.name} ${(r as { data: string }).data}`).sort();
    expect(glue).toEqual(['0a000001.addr.dc1.consul 10.0.0.1', '0a000002.addr.dc1.consul 10.0.0.2', 'fd000000000000000000000000000003.addr.dc1.consul fd00::3']);

    const txt = ask({ name: 'web.service.consul', type: 'TXT' }).msg;
    expect(data(txt.answers, 'TXT').map((d) => (d as Buffer[]).map(String))).toEqual([['version=2']]);
  });

  it('leaves warning instances out with onlyPassing', () => {
    const { catalog, ask } = setup({ onlyPassing: true });
    catalog.set('web', [{ address: '10.0.0.1' }, { address: '10.0.0.2', status: 'warning' }]);
    expect(data(ask({ name: 'web.service.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('answers NXDOMAIN with the SOA for an unknown name or a service without ready instances', () => {
    const { catalog, ask } = setup({ negativeTtl: '30s' });
    catalog.set('down', [{ address: '10.0.0.1', status: 'critical' }]);
    for (const name of ['nope.service.consul', 'down.service.consul', 'x.y.consul', 'web.service.dc2.consul', 'zz.addr.consul']) {
      const m = ask({ name, type: 'A' }).msg;
      expect(m.rcode, name).toBe('NXDOMAIN');
      expect(m.answers).toEqual([]);
      const soa = m.authorities![0];
      expect(soa.type).toBe('SOA');
      expect(soa.name).toBe('consul');
      expect(soa.ttl).toBe(30);
      expect(soa.data.minimum).toBe(30);
      expect(soa.data.mname).toBe('ns.consul');
    }
  });

  it('answers NOERROR without records (NODATA) and the SOA for a known name without that type', () => {
    const { catalog, ask } = setup();
    catalog.set('v4', [{ address: '10.0.0.1' }]);
    for (const type of ['AAAA', 'TXT', 'MX', 'CNAME'] as const) {
      const m = ask({ name: 'v4.service.consul', type }).msg;
      expect(m.rcode, type).toBe('NOERROR');
      expect(m.answers, type).toEqual([]);
      expect(m.authorities![0]!.type, type).toBe('SOA');
    }
  });

  it('filters by every tag label, and understands RFC 2782 and datacenter forms, in any case', () => {
    const { catalog, ask } = setup();
    catalog.set('api', [
      { address: '10.0.0.1', tags: ['v1', 'Primary'] },
      { address: '10.0.0.2', tags: ['v1'] },
      { address: '10.0.0.3', tags: ['v2'] },
    ]);
    const a = (name: string) => data(ask({ name, type: 'A' }).msg.answers, 'A').sort();
    expect(a('v1.api.service.consul')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(a('primary.v1.api.service.consul')).toEqual(['10.0.0.1']);
    expect(ask({ name: 'v2.primary.api.service.consul', type: 'A' }).msg.rcode).toBe('NXDOMAIN');
    expect(a('API.Service.DC1.Consul')).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const srv = (name: string) => (ask({ name, type: 'SRV' }).msg.answers).map((r) => r.data.target).sort();
    expect(srv('_api._tcp.service.consul')).toHaveLength(3);
    expect(srv('_api._v2.service.dc1.consul')).toEqual(['0a000003.addr.dc1.consul']);
    expect(srv('_api._tcp.consul')).toHaveLength(3);
  });

  it('echoes the question in the case it was asked', () => {
    const { catalog, ask } = setup();
    catalog.set('web', [{ address: '10.0.0.1' }]);
    const m = ask({ name: 'WeB.SerVice.CONSUL', type: 'A' }).msg;
    expect(m.questions![0]!.name).toBe('WeB.SerVice.CONSUL');
    expect(m.answers![0]!.name).toBe('WeB.SerVice.CONSUL');
  });

  it('answers nodes, hex addresses and the apex', () => {
    const { catalog, ask } = setup({ nodeTtl: 7 });
    catalog.set('web', [{ address: '10.1.2.3', node: 'Worker-1' }]);
    catalog.nodeRecords.set('db-node', { address: '10.9.9.9', meta: { rack: 'r1' } });
    expect(data(ask({ name: 'worker-1.node.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.1.2.3']);
    expect(ask({ name: 'worker-1.node.consul', type: 'A' }).msg.answers![0]!.ttl).toBe(7);
    expect(data(ask({ name: 'db-node.node.dc1.consul', type: 'TXT' }).msg.answers, 'TXT').map((d) => String((d as Buffer[])[0]))).toEqual(['rack=r1']);
    expect(ask({ name: 'ghost.node.consul', type: 'A' }).msg.rcode).toBe('NXDOMAIN');
    expect(data(ask({ name: '0a000001.addr.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.0.0.1']);
    expect(data(ask({ name: '20010db8000000000000000000000001.addr.dc1.consul', type: 'AAAA' }).msg.answers, 'AAAA')).toEqual(['2001:db8::1']);
    const soa = ask({ name: 'consul', type: 'SOA' }).msg;
    expect(soa.answers![0]!.type).toBe('SOA');
    const ns = ask({ name: 'consul', type: 'NS' }).msg;
    expect(data(ns.answers, 'NS')).toEqual(['ns.consul']);
    expect(data(ns.additionals, 'A')).toEqual(['127.0.0.1']);
    expect(data(ask({ name: 'ns.consul', type: 'A' }).msg.answers, 'A')).toEqual(['127.0.0.1']);
  });

  it('sheds full catalog scans for node names no instance carries, without caching the refusal', () => {
    const { catalog, ask, clock } = setup();
    catalog.set('web', [{ address: '10.1.2.3', node: 'worker-1' }]);
    catalog.nodeRecords.set('db-node', { address: '10.9.9.9', meta: {} });
    for (let i = 0; i < 250; i++) ask({ name: `made-up-${i}.node.consul`, type: 'A' });
    expect(ask({ name: 'db-node.node.consul', type: 'A' }).msg.rcode).toBe('NXDOMAIN');
    expect(data(ask({ name: 'worker-1.node.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.1.2.3']);
    clock.advance(1000);
    expect(data(ask({ name: 'db-node.node.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.9.9.9']);
  });

  it('refuses names outside the domain without a recursor, and other classes', () => {
    const { ask } = setup();
    const m = ask({ name: 'example.com', type: 'A' }).msg;
    expect(m.rcode).toBe('REFUSED');
    expect(m.flags! & 0x400).toBe(0);
    expect(ask({ name: 'version.bind', type: 'TXT', class: 'CH' }).msg.rcode).toBe('REFUSED');
    expect(ask({ name: 'web.service.consul', type: 'TXT', class: 'CH' }).msg.rcode).toBe('REFUSED');
    expect(ask({ name: 'consul', type: 'AXFR' }).msg.rcode).toBe('NOTIMP');
  });

  it('uses a custom domain and per-service TTL rules', () => {
    const { catalog, ask } = setup({ domain: 'beacon.internal.', serviceTtl: 'web=30s,web-*=10s,*=5s' });
    catalog.set('web', [{ address: '10.0.0.1' }]);
    catalog.set('web-admin', [{ address: '10.0.0.2' }]);
    catalog.set('db', [{ address: '10.0.0.3' }]);
    expect(ask({ name: 'web.service.beacon.internal', type: 'A' }).msg.answers![0]!.ttl).toBe(30);
    expect(ask({ name: 'web-admin.service.beacon.internal', type: 'A' }).msg.answers![0]!.ttl).toBe(10);
    expect(ask({ name: 'db.service.beacon.internal', type: 'A' }).msg.answers![0]!.ttl).toBe(5);
    expect(ask({ name: 'web.service.consul', type: 'A' }).msg.rcode).toBe('REFUSED');
  });

  it('echoes EDNS, sets TC over UDP when the answer does not fit and answers in full over TCP', () => {
    const { catalog, ask } = setup();
    catalog.set(
      'big',
      Array.from({ length: 100 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}`, port: 1000 + i })),
    );
    const plain = ask({ name: 'big.service.consul', type: 'A' });
    expect(plain.msg.flag_tc).toBe(true);
    expect(plain.msg.answers).toEqual([]);
    expect(plain.bytes.length).toBeLessThanOrEqual(512);

    catalog.set('mid', Array.from({ length: 50 }, (_, i) => ({ address: `10.1.0.${i}` })));
    expect(ask({ name: 'mid.service.consul', type: 'A' }).msg.flag_tc).toBe(true);
    const edns = ask({ name: 'mid.service.consul', type: 'A' }, { edns: 4096 });
    expect(edns.msg.flag_tc).toBe(false);
    expect(edns.msg.answers).toHaveLength(50);
    expect(ask({ name: 'big.service.consul', type: 'A' }, { edns: 4096 }).msg.flag_tc).toBe(true);
    expect(ask({ name: 'big.service.consul', type: 'A' }, { transport: 'tcp' }).msg.answers).toHaveLength(100);
    const opt = edns.msg.additionals!.find((a) => a.type === 'OPT') as unknown as { udpPayloadSize: number };
    expect(opt.udpPayloadSize).toBe(1232);

    const srvEdns = ask({ name: 'big.service.consul', type: 'SRV' }, { edns: 4096 });
    expect(srvEdns.msg.flag_tc).toBe(true);
    expect(srvEdns.bytes.length).toBeLessThanOrEqual(1232);

    const tcp = ask({ name: 'big.service.consul', type: 'SRV' }, { transport: 'tcp' });
    expect(tcp.msg.flag_tc).toBe(false);
    expect(tcp.msg.answers).toHaveLength(100);
    expect(tcp.msg.additionals).toHaveLength(100);
  });

  it('fits a five-instance SRV answer in 512 bytes (name compression)', () => {
    const { catalog, ask } = setup();
    catalog.set('svc042', Array.from({ length: 5 }, (_, i) => ({ address: `10.0.42.${i + 1}`, port: 8000 + i })));
    const r = ask({ name: 'svc042.service.consul', type: 'SRV' });
    expect(r.msg.flag_tc).toBe(false);
    expect(r.msg.answers).toHaveLength(5);
    expect(r.bytes.length).toBeLessThan(360);
  });

  it('never serves a cached answer after the service changed, and keeps it while others change', () => {
    const { catalog, engine, ask } = setup();
    catalog.set('web', [{ address: '10.0.0.1' }]);
    expect(data(ask({ name: 'web.service.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.0.0.1']);
    expect(data(ask({ name: 'web.service.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.0.0.1']);
    const hits = engine.stats().cache.hits;
    catalog.set('other', [{ address: '10.0.0.9' }]);
    ask({ name: 'web.service.consul', type: 'A' });
    expect(engine.stats().cache.hits).toBe(hits + 1);
    catalog.set('web', [{ address: '10.0.0.2' }]);
    expect(data(ask({ name: 'web.service.consul', type: 'A' }).msg.answers, 'A')).toEqual(['10.0.0.2']);
    catalog.set('web', [{ address: '10.0.0.2', status: 'critical' }]);
    expect(ask({ name: 'web.service.consul', type: 'A' }).msg.rcode).toBe('NXDOMAIN');
  });

  it('shuffles by weight across queries', () => {
    const { catalog, ask } = setup();
    catalog.set('w', [
      { address: '10.0.0.1', weight: 3 },
      { address: '10.0.0.2', weight: 1 },
    ]);
    const first: Record<string, number> = {};
    for (let i = 0; i < 4000; i++) {
      const a = data(ask({ name: 'w.service.consul', type: 'A' }).msg.answers, 'A')[0] as string;
      first[a] = (first[a] ?? 0) + 1;
    }
    expect(first['10.0.0.1']! / 4000).toBeGreaterThan(0.68);
    expect(first['10.0.0.1']! / 4000).toBeLessThan(0.82);
    const srv = ask({ name: 'w.service.consul', type: 'SRV' }).msg.answers;
    expect(srv.map((r) => r.data.weight).sort()).toEqual([1, 3]);
  });

  it('answers a failing catalog with the rcode the error catalog gives, and SERVFAIL for anything else', () => {
    const { catalog, ask, engine } = setup();
    const original = catalog.service.bind(catalog);
    catalog.service = (name: string) => {
      if (name === 'locked') throw errors.forbidden('no');
      if (name === 'broken') throw new Error('bug');
      return original(name);
    };
    expect(ask({ name: 'locked.service.consul', type: 'A' }).msg.rcode).toBe('REFUSED');
    expect(ask({ name: 'broken.service.consul', type: 'A' }).msg.rcode).toBe('SERVFAIL');
    expect(engine.stats().failures).toBe(2);
  });

  it('answers BADVERS to EDNS versions above 0', () => {
    const { ask, engine } = setup();
    const raw = packet.encode({
      type: 'query',
      id: 1,
      questions: [{ name: 'consul', type: 'SOA' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, ednsVersion: 1 } as unknown as packet.Answer],
    });
    const out = engine.handle(raw, 'udp') as Buffer;
    const m = decode(out);
    const opt = m.additionals!.find((a) => a.type === 'OPT') as unknown as { extendedRcode: number };
    expect(opt.extendedRcode).toBe(1);
    expect(ask({ name: 'consul', type: 'SOA' }).msg.rcode).toBe('NOERROR');
  });

  it('counts each answer by transport, query type and rcode, and drops nothing into the counts', () => {
    const { ask, engine, catalog } = setup();
    catalog.set('web', [{ address: '10.0.0.1', port: 80 }]);
    ask({ name: 'web.service.consul', type: 'A' });
    ask({ name: 'web.service.consul', type: 'A' }, { transport: 'tcp' });
    ask({ name: 'nope.service.consul', type: 'SRV' });
    ask({ name: 'web.service.consul', type: 'MX' });
    const badVersion = packet.encode({
      type: 'query',
      id: 1,
      questions: [{ name: 'consul', type: 'SOA' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, ednsVersion: 1 } as unknown as packet.Answer],
    });
    engine.handle(badVersion, 'udp');
    // Two questions: FORMERR, before the type is known.
    const twoQuestions = packet.encode({ type: 'query', id: 2, questions: [{ name: 'a.consul', type: 'A' }, { name: 'b.consul', type: 'A' }] });
    expect(decode(engine.handle(twoQuestions, 'udp') as Buffer).rcode).toBe('FORMERR');
    // Too short to answer: dropped, not counted.
    expect(engine.handle(Buffer.alloc(5), 'udp')).toBeUndefined();

    const counted = [...querySeries(engine.counts.snapshot())].filter((x) => x.value > 0).map((x) => `${x.proto} ${x.type} ${x.rcode} ${x.value}`);
    expect(counted.sort()).toEqual(['tcp A NOERROR 1', 'udp A NOERROR 1', 'udp SOA BADVERS 1', 'udp SRV NXDOMAIN 1', 'udp other FORMERR 1', 'udp other NOERROR 1'].sort());
    // One answer in LATENCY_SAMPLE is timed, the first one included.
    expect(engine.counts.snapshot().latency.reduce((a, b) => a + b, 0)).toBe(1);
  });
});
