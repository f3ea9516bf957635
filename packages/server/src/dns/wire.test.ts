import { describe, expect, it } from 'vitest';
import { isIP } from 'node:net';
import fc from 'fast-check';
import * as packet from 'dns-packet';
import { ipBytes, ipText, parseQuery, questionLabels, RCODE } from './wire.js';

const q = (name: string, type: packet.RecordType = 'A', extra: Partial<packet.Packet> = {}) =>
  packet.encode({ type: 'query', id: 0xbeef, flags: packet.RECURSION_DESIRED, questions: [{ name, type }], ...extra });

describe('parseQuery', () => {
  it('reads the header, the question and EDNS', () => {
    const r = parseQuery(q('Web.Service.consul', 'SRV', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: packet.DNSSEC_OK } as packet.Answer] }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.query.id).toBe(0xbeef);
    expect(r.query.qtype).toBe(33);
    expect(r.query.qclass).toBe(1);
    expect(r.query.edns).toEqual({ udpSize: 4096, version: 0, dnssecOk: true });
    expect(r.query.key).toBe(parseQueryKey(q('web.service.CONSUL', 'SRV')));
  });

  it('drops what is not a query and rejects what is malformed', () => {
    expect(parseQuery(Buffer.alloc(11))).toMatchObject({ ok: false, action: 'drop' });
    const resp = Buffer.from(q('a.consul'));
    resp[2]! |= 0x80;
    expect(parseQuery(resp)).toMatchObject({ ok: false, action: 'drop' });
    const notify = Buffer.from(q('a.consul'));
    notify[2] = 4 << 3;
    expect(parseQuery(notify)).toMatchObject({ action: 'reply', rcode: RCODE.NOTIMP });
    const two = packet.encode({ type: 'query', id: 1, questions: [{ name: 'a', type: 'A' }, { name: 'b', type: 'A' }] });
    expect(parseQuery(two)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR });
    const loop = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseQuery(loop)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR, questionEnd: undefined });
    const huge = Buffer.from(q('a.consul'));
    huge.writeUInt16BE(65535, 10);
    expect(parseQuery(huge)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR, reason: 'record counts larger than the packet' });
    const long = Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...Array.from({ length: 64 }, () => Buffer.from([3, 97, 98, 99])), Buffer.from([0, 0, 1, 0, 1])]);
    expect(parseQuery(long)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR, reason: 'question name longer than 255 bytes' });
    const cut = q('web.service.consul').subarray(0, 20);
    expect(parseQuery(cut)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR });
    const twoOpt = q('consul', 'SOA', {
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 512 } as packet.Answer, { type: 'OPT', name: '.', udpPayloadSize: 512 } as packet.Answer],
    });
    expect(parseQuery(twoOpt)).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR, reason: 'more than one OPT record' });
    expect(parseQuery(q('consul', 'OPT' as packet.RecordType))).toMatchObject({ action: 'reply', rcode: RCODE.FORMERR });
  });

  it('agrees with dns-packet on any query it encodes, and never throws on any bytes', () => {
    const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 8 }), fc.constantFrom('A', 'AAAA', 'SRV', 'TXT', 'ANY', 'SOA') as fc.Arbitrary<packet.RecordType>, (labels, type) => {
        const raw = q(labels.join('.'), type);
        const r = parseQuery(raw);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.query.qtype).toBe({ A: 1, AAAA: 28, SRV: 33, TXT: 16, ANY: 255, SOA: 6 }[type as string]);
        expect(r.query.questionEnd).toBe(raw.length);
        expect(questionLabels(raw, r.query.nameEnd)).toEqual(labels.map((l) => l.toLowerCase()));
      }),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (u) => void parseQuery(u)), { numRuns: 5000 });
  });

  it('reads a label holding a dot or a control byte as a name that matches nothing', () => {
    const raw = Buffer.concat([Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2e, 0x62, 6]), Buffer.from('consul'), Buffer.from([0, 0, 1, 0, 1])]);
    const r = parseQuery(raw);
    expect(r.ok && questionLabels(raw, r.query.nameEnd)).toEqual(['\0', 'consul']);
  });
});

function parseQueryKey(raw: Uint8Array): string {
  const r = parseQuery(raw);
  if (!r.ok) throw new Error('not ok');
  return r.query.key;
}

describe('addresses', () => {
  it('converts IPv4 and IPv6 text to bytes and back like net does', () => {
    for (const a of ['10.0.0.1', '255.255.255.255', '::1', '::', '2001:db8::3', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::ffff:10.1.2.3', '2001:db8:0:0:1::1']) {
      const b = ipBytes(a);
      expect(b, a).toBeDefined();
      expect(isIP(ipText(b!))).toBe(b!.length === 4 ? 4 : 6);
      expect(ipBytes(ipText(b!))).toEqual(b);
    }
    expect(ipText(ipBytes('2001:0db8:0000:0000:0000:0000:0000:0003')!)).toBe('2001:db8::3');
    for (const bad of ['', 'host.example', '1.2.3', '1.2.3.256', '01.2.3.4', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '12345::1']) expect(ipBytes(bad), bad).toBeUndefined();
  });
});
