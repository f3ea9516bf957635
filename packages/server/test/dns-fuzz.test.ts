/**
 * Hostile packets against the real UDP socket: random bytes, mutated queries, compression
 * loops, huge counts, wrong opcodes, several questions. Every packet gets FORMERR / NOTIMP /
 * an answer with its ID, or is dropped (too short, or a response); the server never crashes,
 * and a well-behaved client asking at the same time is answered correctly throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import fc from 'fast-check';
import * as packet from 'dns-packet';
import { seededRandom, systemClock } from '@beacon/core';
import { createDnsServer, type DnsServer } from '../src/dns/server.js';
import { parseDnsConfig } from '../src/dns/config.js';
import { decode, FakeCatalog } from './dns-fixtures.js';

const RUNS = 3000;

/** One client socket; replies are matched to the sender by the ID we put in. */
class Client {
  private readonly socket = dgram.createSocket('udp4');
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  readonly stray: Buffer[] = [];

  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      const id = m.length >= 2 ? m.readUInt16BE(0) : -1;
      const w = this.waiting.get(id);
      if (w) {
        this.waiting.delete(id);
        w(m);
      } else this.stray.push(m);
    });
  }

  ask(bytes: Uint8Array, id: number, timeoutMs = 3000): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, (b) => {
        clearTimeout(t);
        resolve(b);
      });
      this.socket.send(bytes, this.port, '127.0.0.1');
    });
  }

  send(bytes: Uint8Array): void {
    this.socket.send(bytes, this.port, '127.0.0.1');
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

const name = (labels: string[]) => Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);

const header = (id: number, flags: number, qd: number, an: number, ns: number, ar: number) => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
};

const validQuery = fc
  .record({
    labels: fc.array(fc.constantFrom('web', 'WEB', 'service', 'consul', 'node', 'addr', '_web', '_tcp', 'dc1', 'x', '0a000001'), { minLength: 0, maxLength: 6 }),
    qtype: fc.oneof(fc.constantFrom(1, 2, 5, 6, 16, 28, 33, 255, 252), fc.integer({ min: 0, max: 65535 })),
    qclass: fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 65535 })),
    edns: fc.option(fc.record({ size: fc.integer({ min: 0, max: 65535 }), version: fc.constantFrom(0, 0, 1, 255), do: fc.boolean() })),
  })
  .map(({ labels, qtype, qclass, edns }) => {
    const q = Buffer.concat([name(labels), Buffer.from([qtype >> 8, qtype & 255, qclass >> 8, qclass & 255])]);
    const opt = edns ? Buffer.from([0, 0, 41, edns.size >> 8, edns.size & 255, 0, edns.version, edns.do ? 0x80 : 0, 0, 0, 0]) : Buffer.alloc(0);
    return Buffer.concat([header(0, 0x0100, 1, 0, 0, edns ? 1 : 0), q, opt]);
  });

/** Packets built to hurt: pointer loops, counts far past the data, opcodes, QR set, many questions. */
const hostile = fc.oneof(
  // A compression pointer to itself in the question, and in an additional record.
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 0, 0, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])])),
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 0, 0, 1), name(['a']), Buffer.from([0, 1, 0, 1]), Buffer.from([0xc0, 19, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])])),
  // Two pointers at each other.
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 1, 0, 0), name(['a']), Buffer.from([0, 1, 0, 1]), Buffer.from([0xc0, 21, 0xc0, 19]), Buffer.alloc(10)])),
  // Huge counts.
  fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 })).map(([qd, an, ar]) =>
    Buffer.concat([header(0, 0x0100, qd, an, 0, ar), name(['web', 'service', 'consul']), Buffer.from([0, 1, 0, 1])]),
  ),
  // Other opcodes, responses, and every flag bit.
  fc.integer({ min: 0, max: 0xffff }).map((flags) => Buffer.concat([header(0, flags, 1, 0, 0, 0), name(['web', 'service', 'consul']), Buffer.from([0, 1, 0, 1])])),
  // A name of maximal and over-maximal length, and labels with every byte.
  fc.integer({ min: 1, max: 70 }).map((n) => Buffer.concat([header(0, 0x0100, 1, 0, 0, 0), name(Array.from({ length: n }, () => 'abc')), Buffer.from([0, 1, 0, 1])])),
  fc.uint8Array({ minLength: 1, maxLength: 63 }).map((bytes) => Buffer.concat([header(0, 0x0100, 1, 0, 0, 0), Buffer.from([bytes.length]), bytes, Buffer.from([7, 0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6c, 0, 0, 1, 0, 1])])),
  // Two OPT records, an OPT with a non-root owner, an OPT in the answer section.
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 0, 0, 2), name(['consul']), Buffer.from([0, 6, 0, 1]), Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])])),
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 0, 0, 1), name(['consul']), Buffer.from([0, 6, 0, 1]), name(['x']), Buffer.from([0, 41, 4, 0, 0, 0, 0, 0, 0, 0])])),
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 1, 0, 0), name(['consul']), Buffer.from([0, 6, 0, 1]), Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])])),
  // An RDLENGTH running past the end.
  fc.constant(Buffer.concat([header(0, 0x0100, 1, 0, 0, 1), name(['consul']), Buffer.from([0, 6, 0, 1]), Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0xff, 0xff])])),
);

/** A valid or hostile packet, then cut, bit-flipped or padded; or plain noise. */
const packets = fc.oneof(
  { weight: 3, arbitrary: validQuery },
  { weight: 3, arbitrary: hostile },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 600 }).map((u) => Buffer.from(u)) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.oneof(validQuery, hostile), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.constantFrom('cut', 'flip', 'pad'))
      .map(([p, a, b, bit, how]) => {
        const buf = Buffer.from(p);
        if (how === 'cut') return buf.subarray(0, a % (buf.length + 1));
        if (how === 'flip' && buf.length > 12) buf[12 + (a % (buf.length - 12))] ^= 1 << bit;
        if (how === 'flip' && buf.length > 2) buf[2 + (b % Math.min(10, buf.length - 2))] ^= 1 << bit;
        if (how === 'pad') return Buffer.concat([buf, Buffer.alloc(b % 300, a & 255)]);
        return buf;
      }),
  },
);

describe('DNS fuzzing over the real UDP socket', () => {
  let dns: DnsServer;
  let port: number;
  const catalog = new FakeCatalog();

  beforeAll(async () => {
    catalog.set('web', [{ address: '10.0.0.1', meta: { a: 'b' } }, { address: '10.0.0.2' }, { address: 'fd00::1' }]);
    catalog.set('big', Array.from({ length: 120 }, (_, i) => ({ address: `10.3.0.${i}`, port: i + 1 })));
    dns = createDnsServer({ catalog, config: parseDnsConfig({ addr: '127.0.0.1:0' }), random: seededRandom(1), clock: systemClock });
    port = (await dns.listen()).udp.port;
  });

  afterAll(async () => {
    await dns?.close();
  });

  it(`answers or drops ${RUNS} generated packets without crashing, while a good client keeps getting answers`, async () => {
    const fuzzer = new Client(port);
    const good = new Client(port);
    let goodAnswers = 0;
    let stop = false;
    // A well-behaved client asking all along.
    const goodLoop = (async () => {
      for (let id = 1; !stop; id = (id % 60000) + 1) {
        const r = await good.ask(packet.encode({ type: 'query', id, questions: [{ name: 'web.service.consul', type: 'A' }] }), id);
        expect(r, 'the good client was not answered').toBeDefined();
        const m = decode(r!);
        expect(m.rcode).toBe('NOERROR');
        expect(m.answers).toHaveLength(2);
        goodAnswers++;
      }
    })();

    let seq = 0;
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(packets, async (raw) => {
        seq = (seq % 65000) + 1;
        const buf = Buffer.from(raw);
        if (buf.length >= 2) buf.writeUInt16BE(seq, 0);
        const expectDrop = buf.length < 12 || (buf[2]! & 0x80) !== 0;
        if (expectDrop) {
          fuzzer.send(buf);
          // Whatever it did with that packet, the server still answers the next one.
          const probe = await fuzzer.ask(packet.encode({ type: 'query', id: seq, questions: [{ name: 'consul', type: 'SOA' }] }), seq);
          expect(probe).toBeDefined();
          outcomes.dropped = (outcomes.dropped ?? 0) + 1;
          return;
        }
        const reply = await fuzzer.ask(buf, seq);
        expect(reply, `no reply to ${buf.toString('hex')}`).toBeDefined();
        const r = reply!;
        expect(r.length).toBeGreaterThanOrEqual(12);
        expect(r.length).toBeLessThanOrEqual(1232);
        expect(r[2]! & 0x80).toBe(0x80);
        // Our own replies must always decode.
        const m = decode(r);
        const rcode = m.rcode ?? '?';
        expect(['NOERROR', 'FORMERR', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'SERVFAIL']).toContain(rcode);
        expect(rcode).not.toBe('SERVFAIL');
        if (m.flag_tc) outcomes.tc = (outcomes.tc ?? 0) + 1;
        outcomes[rcode] = (outcomes[rcode] ?? 0) + 1;
      }),
      { numRuns: RUNS, seed: 20261121 },
    );
    stop = true;
    await goodLoop;
    const stats = dns.stats();
    console.log('fuzz outcomes', outcomes, 'good answers', goodAnswers, 'server', { ...stats, cache: undefined });
    expect(goodAnswers).toBeGreaterThan(0);
    expect(stats.failures).toBe(0);
    expect(outcomes.FORMERR).toBeGreaterThan(100);
    expect(outcomes.NOERROR).toBeGreaterThan(100);
    expect(outcomes.dropped).toBeGreaterThan(50);
    await fuzzer.close();
    await good.close();
  });
});
